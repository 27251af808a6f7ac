/**
 * SIPREC recording INVITE bodies in the styles real session recording clients send them, with
 * each recorded stream's media at a test endpoint. They are written from the vendors' published
 * examples and from captures' shapes (not copied from any capture): what differs between them is
 * what breaks recording servers: the boundary's form, part headers, codec lists, where `a=label`
 * sits, the metadata's namespace and era, names or only AORs, extension data, and metadata that
 * comes only later.
 */
import type { RtpEndpoint } from './rtp-endpoint.js';

export interface VendorRecording {
  /** e.g. "Cisco CUBE". */
  readonly style: string;
  readonly contentType: string;
  readonly body: string;
  /** The parties the gateway should name the streams, in m= line order. */
  readonly parties: readonly string[];
  /** The labels each m= line carries (undefined: none). */
  readonly labels: readonly (string | undefined)[];
}

const crlf = (lines: readonly string[]): string => lines.join('\r\n') + '\r\n';

function multipart(boundary: string, parts: readonly { headers: readonly string[]; body: string }[], eol = '\r\n'): string {
  const out: string[] = [];
  for (const p of parts) out.push(`--${boundary}`, ...p.headers, '', p.body.replace(/\r?\n$/, ''));
  out.push(`--${boundary}--`, '');
  return out.join(eol);
}

/**
 * Cisco CUBE (IOS XE): the forked streams offered with the dial-peer's whole codec list (three
 * payload types plus telephone-event), `a=label` after the direction, participants named by AOR
 * only, base64 ids, Cisco extension data.
 */
export function cubeStyle(a: RtpEndpoint, b: RtpEndpoint): VendorRecording {
  const stream = (ep: RtpEndpoint, label: string): string[] => [
    `m=audio ${ep.port} RTP/AVP 0 8 18 101`,
    'c=IN IP4 127.0.0.1',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:18 G729/8000',
    'a=fmtp:18 annexb=no',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=ptime:20',
    'a=sendonly',
    `a=label:${label}`,
  ];
  const sdp = crlf(['v=0', 'o=CiscoSystemsSIP-GW-UserAgent 7016 6424 IN IP4 127.0.0.1', 's=SIP Call', 'c=IN IP4 127.0.0.1', 't=0 0', ...stream(a, '1'), ...stream(b, '2')]);
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
<datamode>complete</datamode>
<session session_id="5rYp2sNSEeOdNfFRMv2qTQ==">
<sipSessionID>b8dc1d6700105000a000d0c2820c46f5;remote=00000000000000000000000000000000</sipSessionID>
<start-time>2026-12-01T10:00:00.000Z</start-time>
</session>
<participant participant_id="5rYp2sNSEeOdNvFRMv2qTQ==">
<nameID aor="sip:808808@127.0.0.1">
</nameID>
</participant>
<participantsessionassoc participant_id="5rYp2sNSEeOdNvFRMv2qTQ==" session_id="5rYp2sNSEeOdNfFRMv2qTQ==">
<associate-time>2026-12-01T10:00:00.000Z</associate-time>
</participantsessionassoc>
<participant participant_id="5rYp2sNSEeOdNPFRMv2qTQ==">
<nameID aor="sip:909909@127.0.0.1">
</nameID>
</participant>
<participantsessionassoc participant_id="5rYp2sNSEeOdNPFRMv2qTQ==" session_id="5rYp2sNSEeOdNfFRMv2qTQ==">
<associate-time>2026-12-01T10:00:00.000Z</associate-time>
</participantsessionassoc>
<stream stream_id="5rYp2sNSEeOdN/FRMv2qTQ==" session_id="5rYp2sNSEeOdNfFRMv2qTQ==">
<label>1</label>
</stream>
<stream stream_id="5rYp2sNSEeOdOPFRMv2qTQ==" session_id="5rYp2sNSEeOdNfFRMv2qTQ==">
<label>2</label>
</stream>
<participantstreamassoc participant_id="5rYp2sNSEeOdNvFRMv2qTQ==">
<send>5rYp2sNSEeOdN/FRMv2qTQ==</send>
<recv>5rYp2sNSEeOdOPFRMv2qTQ==</recv>
</participantstreamassoc>
<participantstreamassoc participant_id="5rYp2sNSEeOdNPFRMv2qTQ==">
<send>5rYp2sNSEeOdOPFRMv2qTQ==</send>
<recv>5rYp2sNSEeOdN/FRMv2qTQ==</recv>
</participantstreamassoc>
<extensiondata xmlns:ext="http://cisco.com/sipRecording"><ext:callData><ext:callingNumber>808808</ext:callingNumber></ext:callData></extensiondata>
</recording>`;
  return {
    style: 'Cisco CUBE',
    contentType: 'multipart/mixed;boundary=uniqueBoundary',
    body: multipart('uniqueBoundary', [
      { headers: ['Content-Type: application/sdp'], body: sdp },
      { headers: ['Content-Type: application/rs-metadata+xml', 'Content-Disposition: recording-session'], body: xml },
    ]),
    parties: ['808808', '909909'],
    labels: ['1', '2'],
  };
}

/**
 * Avaya SBCE: a space after the `;` of the content type, `handling=required` on the metadata's
 * disposition, telephone-event on 120, `a=rtcp` lines, display names with `xml:lang`.
 */
export function avayaStyle(a: RtpEndpoint, b: RtpEndpoint): VendorRecording {
  const stream = (ep: RtpEndpoint, label: string): string[] => [
    `m=audio ${ep.port} RTP/AVP 0 120`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:120 telephone-event/8000',
    'a=fmtp:120 0-15',
    `a=rtcp:${ep.port + 1}`,
    `a=label:${label}`,
    'a=sendonly',
  ];
  const sdp = crlf(['v=0', 'o=- 1764583200 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 'b=AS:64', 't=0 0', ...stream(a, '1'), ...stream(b, '2')]);
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <datamode>complete</datamode>
  <session session_id="QVZBWUEtU0VTU0lPTi0x">
    <sipSessionID>00A1B2C3D4E5F60718293A4B5C6D7E8F;remote=0000000000000000000000000000000</sipSessionID>
  </session>
  <participant participant_id="QVZBWUEtUDE=">
    <nameID aor="sip:+15551230001@avaya.example.com"><name xml:lang="en">John Smith</name></nameID>
  </participant>
  <participant participant_id="QVZBWUEtUDI=">
    <nameID aor="sip:4711@avaya.example.com"><name xml:lang="en">Agent 4711</name></nameID>
  </participant>
  <stream stream_id="QVZBWUEtUzE=" session_id="QVZBWUEtU0VTU0lPTi0x"><label>1</label></stream>
  <stream stream_id="QVZBWUEtUzI=" session_id="QVZBWUEtU0VTU0lPTi0x"><label>2</label></stream>
  <participantstreamassoc participant_id="QVZBWUEtUDE="><send>QVZBWUEtUzE=</send><recv>QVZBWUEtUzI=</recv></participantstreamassoc>
  <participantstreamassoc participant_id="QVZBWUEtUDI="><send>QVZBWUEtUzI=</send><recv>QVZBWUEtUzE=</recv></participantstreamassoc>
  <extensiondata xmlns:avaya="http://www.avaya.com/siprec"><avaya:ucid>00001234561764583200</avaya:ucid></extensiondata>
</recording>`;
  return {
    style: 'Avaya',
    contentType: 'multipart/mixed; boundary=avaya-siprec-boundary',
    body: multipart('avaya-siprec-boundary', [
      { headers: ['Content-Type: application/sdp'], body: sdp },
      { headers: ['Content-Type: application/rs-metadata+xml', 'Content-Disposition: recording-session;handling=required'], body: xml },
    ]),
    parties: ['John Smith', 'Agent 4711'],
    labels: ['1', '2'],
  };
}

/**
 * Genesys SIP Server: a JavaMail-style quoted boundary full of `=` and `.`, part headers with
 * Content-Length, the draft-era `application/rs-metadata` type, `<group>` elements, its own
 * labels, a namespace prefix on every element.
 */
export function genesysStyle(a: RtpEndpoint, b: RtpEndpoint): VendorRecording {
  const stream = (ep: RtpEndpoint, label: string): string[] => [`m=audio ${ep.port} RTP/AVP 8 0 101`, 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=sendonly', `a=label:${label}`];
  const sdp = crlf(['v=0', 'o=GSIPServer 31337 1 IN IP4 127.0.0.1', 's=Genesys Recording', 'c=IN IP4 127.0.0.1', 't=0 0', ...stream(a, '0001'), ...stream(b, '0002')]);
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<rs:recording xmlns:rs="urn:ietf:params:xml:ns:recording:1" xmlns:gen="http://www.genesys.com/recording">
  <rs:datamode>complete</rs:datamode>
  <rs:group group_id="R0VOLUdST1VQ"><rs:associate-time>2026-12-01T10:00:00Z</rs:associate-time></rs:group>
  <rs:session session_id="R0VOLVNFU1M="><rs:group-ref>R0VOLUdST1VQ</rs:group-ref></rs:session>
  <rs:participant participant_id="R0VOLVAx"><rs:nameID aor="sip:customer@carrier.example"><rs:name>Customer</rs:name></rs:nameID></rs:participant>
  <rs:participant participant_id="R0VOLVAy"><rs:nameID aor="sip:agent.7002@genesys.example"><rs:name>Maria Lopez</rs:name></rs:nameID></rs:participant>
  <rs:stream stream_id="R0VOLVMx" session_id="R0VOLVNFU1M="><rs:label>0001</rs:label></rs:stream>
  <rs:stream stream_id="R0VOLVMy" session_id="R0VOLVNFU1M="><rs:label>0002</rs:label></rs:stream>
  <rs:participantstreamassoc participant_id="R0VOLVAx"><rs:send>R0VOLVMx</rs:send></rs:participantstreamassoc>
  <rs:participantstreamassoc participant_id="R0VOLVAy"><rs:send>R0VOLVMy</rs:send></rs:participantstreamassoc>
  <gen:extensiondata><gen:connid>006e02a1b2c3d4e5</gen:connid></gen:extensiondata>
</rs:recording>`;
  const boundary = '----=_Part_1084_1234567.1764583200000';
  return {
    style: 'Genesys',
    contentType: `multipart/mixed; boundary="${boundary}"`,
    body: multipart(boundary, [
      { headers: ['Content-Type: application/sdp', `Content-Length: ${Buffer.byteLength(sdp)}`], body: sdp },
      { headers: ['Content-Type: application/rs-metadata', 'Content-Disposition: recording-session'], body: xml },
    ]),
    parties: ['Customer', 'Maria Lopez'],
    labels: ['0001', '0002'],
  };
}

/**
 * Oracle/Acme Packet SBC: the first INVITE is SDP only (labels, no metadata); the metadata comes
 * in a re-INVITE, in the draft-era form (`id` attributes, `<send>` inside `<participant>`, the
 * namespace without `:1`).
 */
export function acmeStyle(a: RtpEndpoint, b: RtpEndpoint): VendorRecording & { readonly reinvite: { readonly contentType: string; readonly body: string }; readonly names: readonly string[] } {
  const sdp = (version: number): string => {
    const stream = (ep: RtpEndpoint, label: string): string[] => [`m=audio ${ep.port} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15', 'a=maxptime:150', `a=label:${label}`, 'a=sendonly'];
    return crlf(['v=0', `o=acmeSRC 2906 ${version} IN IP4 127.0.0.1`, 's=SIP Call', 'c=IN IP4 127.0.0.1', 't=0 0', ...stream(a, '11'), ...stream(b, '12')]);
  };
  const xml = `<?xml version='1.0' encoding='UTF-8'?>
<recording xmlns='urn:ietf:params:xml:ns:recording'>
  <datamode>complete</datamode>
  <session id="SSBSZWNvcmQ=">
    <associate-time>2026-12-01T10:00:01</associate-time>
  </session>
  <participant id="YWxpY2U=" session="SSBSZWNvcmQ=">
    <nameID aor="sip:alice@acme.example"><name>Alice</name></nameID>
    <send>c3RyZWFtMTE=</send>
    <recv>c3RyZWFtMTI=</recv>
    <associate-time>2026-12-01T10:00:01</associate-time>
  </participant>
  <participant id="Ym9i" session="SSBSZWNvcmQ=">
    <nameID aor="sip:bob@acme.example"><name>Bob</name></nameID>
    <send>c3RyZWFtMTI=</send>
    <recv>c3RyZWFtMTE=</recv>
    <associate-time>2026-12-01T10:00:01</associate-time>
  </participant>
  <stream id="c3RyZWFtMTE=" session="SSBSZWNvcmQ="><label>11</label><mode>separate</mode></stream>
  <stream id="c3RyZWFtMTI=" session="SSBSZWNvcmQ="><label>12</label><mode>separate</mode></stream>
</recording>`;
  return {
    style: 'Oracle/Acme',
    contentType: 'application/sdp',
    body: sdp(1),
    parties: ['caller', 'callee'],
    labels: ['11', '12'],
    names: ['Alice', 'Bob'],
    reinvite: {
      contentType: 'multipart/mixed;boundary=unique-boundary-1',
      body: multipart('unique-boundary-1', [
        { headers: ['Content-Type: application/sdp'], body: sdp(2) },
        { headers: ['Content-Type: application/rs-metadata+xml', 'Content-Disposition: recording-session'], body: xml },
      ]),
    },
  };
}

/**
 * BroadWorks: a quoted boundary, AORs that are tel: URIs or `user=phone` SIP URIs without names,
 * BroadSoft extension data.
 */
export function broadworksStyle(a: RtpEndpoint, b: RtpEndpoint): VendorRecording {
  const stream = (ep: RtpEndpoint, label: string): string[] => [`m=audio ${ep.port} RTP/AVP 0 8 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16', `a=label:${label}`, 'a=sendonly'];
  const sdp = crlf(['v=0', 'o=BroadWorks 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', ...stream(a, '1'), ...stream(b, '2')]);
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="c2Vzc2lvbg=="><sipSessionID>4f2a;remote=0000</sipSessionID></session>
  <participant participant_id="cA=="><nameID aor="tel:+15551230001;phone-context=example.com"/></participant>
  <participant participant_id="cQ=="><nameID aor="sip:+15551232001@as.example.com;user=phone"></nameID></participant>
  <stream stream_id="czE=" session_id="c2Vzc2lvbg=="><label>1</label></stream>
  <stream stream_id="czI=" session_id="c2Vzc2lvbg=="><label>2</label></stream>
  <participantstreamassoc participant_id="cA=="><send>czE=</send><recv>czI=</recv></participantstreamassoc>
  <participantstreamassoc participant_id="cQ=="><send>czI=</send><recv>czE=</recv></participantstreamassoc>
  <extensiondata xmlns:bsft="http://schema.broadsoft.com/recording"><bsft:callType>Network</bsft:callType></extensiondata>
</recording>`;
  const boundary = 'UniqueBroadWorksBoundary';
  return {
    style: 'BroadWorks',
    contentType: `multipart/mixed;boundary="${boundary}"`,
    body: multipart(boundary, [
      { headers: ['Content-Type: application/sdp', 'Content-Disposition: session;handling=required'], body: sdp },
      { headers: ['Content-Type: application/rs-metadata+xml', 'Content-Disposition: recording-session'], body: xml },
    ]),
    parties: ['+15551230001', '+15551232001'],
    labels: ['1', '2'],
  };
}

/**
 * FreeSWITCH as a recording client: its SDP idioms (`o=FreeSWITCH`, `a=silenceSupp`, ptime),
 * LF-only line ends throughout, single-quoted XML attributes.
 */
export function freeswitchStyle(a: RtpEndpoint, b: RtpEndpoint): VendorRecording {
  const stream = (ep: RtpEndpoint, label: string): string[] => [
    `m=audio ${ep.port} RTP/AVP 0 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=silenceSupp:off - - - -',
    'a=ptime:20',
    'a=sendonly',
    `a=label:${label}`,
  ];
  const sdp = ['v=0', 'o=FreeSWITCH 1764566400 1764566401 IN IP4 127.0.0.1', 's=FreeSWITCH', 'c=IN IP4 127.0.0.1', 't=0 0', ...stream(a, 'leg-a'), ...stream(b, 'leg-b'), ''].join('\n');
  const xml = `<?xml version='1.0' encoding='UTF-8'?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <datamode>complete</datamode>
  <session session_id='ZnMtc2Vzcw=='><sipSessionID>9d3c0b5e-0f1a-4c1e-9a77-5b0e2f6d1c42</sipSessionID></session>
  <participant participant_id='ZnMtYQ=='><nameID aor='sip:1000@fs.example'><name>Extension 1000</name></nameID></participant>
  <participant participant_id='ZnMtYg=='><nameID aor='sip:1001@fs.example'><name>Extension 1001</name></nameID></participant>
  <stream stream_id='ZnMtczE=' session_id='ZnMtc2Vzcw=='><label>leg-a</label></stream>
  <stream stream_id='ZnMtczI=' session_id='ZnMtc2Vzcw=='><label>leg-b</label></stream>
  <participantstreamassoc participant_id='ZnMtYQ=='><send>ZnMtczE=</send></participantstreamassoc>
  <participantstreamassoc participant_id='ZnMtYg=='><send>ZnMtczI=</send></participantstreamassoc>
</recording>`;
  return {
    style: 'FreeSWITCH',
    contentType: 'multipart/mixed;boundary=fs-siprec',
    body: multipart(
      'fs-siprec',
      [
        { headers: ['Content-Type: application/sdp'], body: sdp },
        { headers: ['Content-Type: application/rs-metadata+xml', 'Content-Disposition: recording-session'], body: xml },
      ],
      '\n',
    ),
    parties: ['Extension 1000', 'Extension 1001'],
    labels: ['leg-a', 'leg-b'],
  };
}

/** An SRC that sends no metadata and no labels: an SDP body with two sendonly streams. */
export function metadataLessStyle(a: RtpEndpoint, b: RtpEndpoint): VendorRecording {
  const stream = (ep: RtpEndpoint): string[] => [`m=audio ${ep.port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=sendonly'];
  return {
    style: 'metadata-less',
    contentType: 'application/sdp',
    body: crlf(['v=0', 'o=- 7 7 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', ...stream(a), ...stream(b)]),
    parties: ['caller', 'callee'],
    labels: [undefined, undefined],
  };
}

/** Every style whose first INVITE names its parties (or names none), for suites that go through them all. */
export const VENDOR_STYLES = [cubeStyle, avayaStyle, genesysStyle, acmeStyle, broadworksStyle, freeswitchStyle, metadataLessStyle] as const;
