import { describe, expect, it } from 'vitest';
import { HOSTILE_SIPREC_BODIES } from '../../test/support/hostile-siprec.js';
import { WhisperlineError } from '../errors.js';
import { responseForError } from './errors.js';
import { parseMultipart, parseSiprecOffer, recordingBodyFromParts, SIPREC_MAX_BODY_BYTES, type SiprecInput, type SiprecOffer } from './siprec.js';

const crlf = (lines: readonly string[]): string => `${lines.join('\r\n')}\r\n`;

const ALICE = 'srfBElmCRp2QB23b7Mpk0w==';
const BOB = 'zSfPoSvdSDCmU3A3TRDxAw==';

// The SDP of the RFC 7866 / RFC 7865 example: audio and video of each party, labels 96..99.
const RFC_SDP = crlf([
  'v=0',
  'o=SRC 2890844526 2890844526 IN IP4 198.51.100.1',
  's=-',
  'c=IN IP4 198.51.100.1',
  't=0 0',
  'm=audio 49170 RTP/AVP 0',
  'a=rtpmap:0 PCMU/8000',
  'a=label:96',
  'a=sendonly',
  'm=video 49174 RTP/AVPF 96',
  'a=rtpmap:96 H.264/90000',
  'a=label:97',
  'a=sendonly',
  'm=audio 51372 RTP/AVP 0',
  'a=rtpmap:0 PCMU/8000',
  'a=label:98',
  'a=sendonly',
  'm=video 49176 RTP/AVPF 96',
  'a=rtpmap:96 H.264/90000',
  'a=label:99',
  'a=sendonly',
]);

function rfcMetadata(aliceName = 'Alice', nameTag = 'name'): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <datamode>complete</datamode>
  <group group_id="7+OTCyoxTmqmqyA/1weDAg==">
    <associate-time>2010-12-16T23:41:07Z</associate-time>
    <!-- Standardized extension -->
    <call-center xmlns='urn:ietf:params:xml:ns:callcenter'>
      <supervisor>sip:alice@atlanta.com</supervisor>
    </call-center>
  </group>
  <session session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <sipSessionID>ab30317f1a784dc48ff824d0d3715d86;
                  remote=47755a9de7794ba387653f2099600ef2</sipSessionID>
    <group-ref>7+OTCyoxTmqmqyA/1weDAg==</group-ref>
  </session>
  <participant
        participant_id="${ALICE}">
    <nameID aor="sip:alice@atlanta.com">
      <${nameTag} xml:lang="it">${aliceName}</name>
    </nameID>
    <mydata xmlns='http://example.com/my'>
      <structure>FOO!</structure>
    </mydata>
  </participant>
  <participant participant_id="${BOB}">
    <nameID aor="sip:bob@biloxy.com">
      <name xml:lang="it">Bob</name>
    </nameID>
  </participant>
  <stream stream_id="UAAMm5GRQKSCMVvLyl4rFw=="
         session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <label>96</label>
  </stream>
  <stream stream_id="i1Pz3to5hGk8fuXl+PbwCw==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <label>97</label>
  </stream>
  <stream stream_id="8zc6e0lYTlWIINA6GR+3ag==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <label>98</label>
  </stream>
  <stream stream_id="EiXGlc+4TruqqoDaNE76ag==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <label>99</label>
  </stream>
  <sessionrecordingassoc session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <associate-time>2010-12-16T23:41:07Z</associate-time>
  </sessionrecordingassoc>
  <participantsessionassoc participant_id="${ALICE}" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <associate-time>2010-12-16T23:41:07Z</associate-time>
  </participantsessionassoc>
  <participantstreamassoc
        participant_id="${ALICE}">
    <send>i1Pz3to5hGk8fuXl+PbwCw==</send>
    <send>UAAMm5GRQKSCMVvLyl4rFw==</send>
    <recv>8zc6e0lYTlWIINA6GR+3ag==</recv>
    <recv>EiXGlc+4TruqqoDaNE76ag==</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="${BOB}">
    <send>8zc6e0lYTlWIINA6GR+3ag==</send>
    <send>EiXGlc+4TruqqoDaNE76ag==</send>
    <recv>UAAMm5GRQKSCMVvLyl4rFw==</recv>
    <recv>i1Pz3to5hGk8fuXl+PbwCw==</recv>
  </participantstreamassoc>
</recording>
`;
}

function multipart(boundary: string, parts: readonly { headers: readonly string[]; body: string }[], eol = '\r\n'): string {
  const out: string[] = ['This is a preamble that must be ignored.'];
  for (const p of parts) out.push(`--${boundary}`, ...p.headers, '', p.body.replace(/\r?\n$/, ''));
  out.push(`--${boundary}--`, 'epilogue, ignored too', '');
  return out.join('\r\n').replace(/\r\n/g, eol);
}

function rfcInvite(metadata = rfcMetadata(), metadataType = 'application/rs-metadata+xml'): { contentType: string; body: string } {
  return {
    contentType: 'multipart/mixed;boundary=foobar',
    body: multipart('foobar', [
      { headers: ['Content-Type: application/sdp'], body: RFC_SDP },
      { headers: [`Content-Type: ${metadataType}`, 'Content-Disposition: recording-session'], body: metadata },
    ]),
  };
}

function expectSiprecError(fn: () => unknown, message: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(WhisperlineError);
  expect((thrown as WhisperlineError).code).toBe('SIPREC_INVALID');
  expect((thrown as WhisperlineError).message).toMatch(message);
}

describe('parseSiprecOffer: RFC 7866 example', () => {
  it('finds the two audio streams and who sends each', () => {
    const offer = parseSiprecOffer(rfcInvite());
    expect(offer.metadataError).toBeUndefined();
    expect(offer.sdp).toBe(RFC_SDP.replace(/\r\n$/, ''));
    expect(offer.streams).toEqual([
      {
        mediaIndex: 0,
        label: '96',
        port: 49170,
        direction: 'sendonly',
        inactive: false,
        participant: { id: ALICE, name: 'Alice', aor: 'sip:alice@atlanta.com' },
        partyLabel: 'Alice',
      },
      {
        mediaIndex: 2,
        label: '98',
        port: 51372,
        direction: 'sendonly',
        inactive: false,
        participant: { id: BOB, name: 'Bob', aor: 'sip:bob@biloxy.com' },
        partyLabel: 'Bob',
      },
    ]);
    expect(offer.metadata?.dataMode).toBe('complete');
    expect(offer.metadata?.participants).toHaveLength(2);
    expect(offer.metadata?.streams.map((s) => s.label)).toEqual(['96', '97', '98', '99']);
    expect(offer.metadata?.associations.map((a) => a.send.length)).toEqual([2, 2]);
  });

  it('accepts the draft-era application/rs-metadata type', () => {
    const offer = parseSiprecOffer(rfcInvite(rfcMetadata(), 'application/rs-metadata'));
    expect(offer.streams.map((s) => s.partyLabel)).toEqual(['Alice', 'Bob']);
  });

  it('falls back to positional labels when the metadata does not parse (the RFC erratum <naSRCme>)', () => {
    const offer = parseSiprecOffer(rfcInvite(rfcMetadata('Alice', 'naSRCme')));
    expect(offer.metadataError).toMatch(/rs-metadata unusable: end tag <\/name> does not match <naSRCme>/);
    expect(offer.metadata).toBeUndefined();
    expect(offer.streams.map((s) => [s.partyLabel, s.participant])).toEqual([
      ['caller', { role: 'caller' }],
      ['callee', { role: 'callee' }],
    ]);
  });
});

describe('parseSiprecOffer: field variants', () => {
  const twoAudioSdp = (labels: readonly (string | undefined)[], directions: readonly string[] = ['sendonly', 'sendonly']): string =>
    crlf([
      'v=0',
      'o=- 1 1 IN IP4 203.0.113.5',
      's=-',
      'c=IN IP4 203.0.113.5',
      't=0 0',
      ...labels.flatMap((label, n) => [
        `m=audio ${20000 + 2 * n} RTP/AVP 0 8 101`,
        'a=rtpmap:101 telephone-event/8000',
        'a=fmtp:101 0-16',
        ...(label === undefined ? [] : [`a=label:${label}`]),
        `a=${directions[n] ?? 'sendonly'}`,
      ]),
    ]);

  it('BroadWorks-style: quoted boundary, tel/sip+phone AORs without names, extension data', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="c2Vzc2lvbg=="><sipSessionID>4f2a;remote=0000</sipSessionID></session>
  <participant participant_id="cA==">
    <nameID aor="tel:+15551230001;phone-context=example.com"/>
  </participant>
  <participant participant_id="cQ==">
    <nameID aor="sip:+15551232001@as.example.com;user=phone"></nameID>
  </participant>
  <participantsessionassoc participant_id="cA==" session_id="c2Vzc2lvbg=="/>
  <stream stream_id="czE=" session_id="c2Vzc2lvbg=="><label>1</label></stream>
  <stream stream_id="czI=" session_id="c2Vzc2lvbg=="><label>2</label></stream>
  <participantstreamassoc participant_id="cA=="><send>czE=</send><recv>czI=</recv></participantstreamassoc>
  <participantstreamassoc participant_id="cQ=="><send>czI=</send><recv>czE=</recv></participantstreamassoc>
  <extensiondata xmlns:bsft="http://schema.broadsoft.com/recording">
    <bsft:participant participant_id="nobody"><bsft:role>ignored</bsft:role></bsft:participant>
  </extensiondata>
</recording>`;
    const boundary = 'UniqueBroadWorksBoundary';
    const offer = parseSiprecOffer({
      contentType: `multipart/mixed; boundary="${boundary}"`,
      body: multipart(boundary, [
        { headers: ['Content-Type: application/sdp', 'Content-Length: 999'], body: twoAudioSdp(['1', '2']) },
        { headers: ['Content-Type: application/rs-metadata+xml', 'Content-Disposition: recording-session'], body: xml },
      ]),
    });
    expect(offer.metadataError).toBeUndefined();
    expect(offer.metadata?.participants.map((p) => p.id)).toEqual(['cA==', 'cQ==']);
    expect(offer.streams.map((s) => [s.label, s.partyLabel, s.participant?.aor])).toEqual([
      ['1', '+15551230001', 'tel:+15551230001;phone-context=example.com'],
      ['2', '+15551232001', 'sip:+15551232001@as.example.com;user=phone'],
    ]);
  });

  it('draft-era names: id attributes, <aor>/<name> under <participant>, <send> in <participant>, nameId, participantstreamassociation', () => {
    const xml = `<recording xmlns='urn:ietf:params:xml:ns:recording'>
  <participant id="p1" session="s"><aor>sip:agent7@cc.example.com</aor><name>Agent &amp; Co</name><send>st1</send></participant>
  <participant id="p2"><nameId><aor>sip:4155550100@carrier.example</aor></nameId></participant>
  <stream id="st1" session="s"><label>a</label></stream>
  <stream id="st2" session="s" label="b"/>
  <participantstreamassociation participant_id="p2"><send>st2</send></participantstreamassociation>
</recording>`;
    const offer = parseSiprecOffer({ parts: [{ type: 'application/sdp', content: twoAudioSdp(['a', 'b']) }, { type: 'application/rs-metadata+xml', content: xml }] });
    expect(offer.metadataError).toBeUndefined();
    expect(offer.streams.map((s) => [s.partyLabel, s.participant])).toEqual([
      ['Agent & Co', { id: 'p1', name: 'Agent & Co', aor: 'sip:agent7@cc.example.com' }],
      ['4155550100', { id: 'p2', aor: 'sip:4155550100@carrier.example' }],
    ]);
  });

  it('namespace prefixes, CDATA and a <send> naming the label instead of the stream_id', () => {
    const xml = `<rs:recording xmlns:rs="urn:ietf:params:xml:ns:recording:1">
  <rs:participant rs:participant_id="x"><rs:nameID aor="sip:x@h"><rs:name><![CDATA[Zoë <ops>]]></rs:name></rs:nameID></rs:participant>
  <rs:participantstreamassoc participant_id="x"><rs:send>L1</rs:send></rs:participantstreamassoc>
</rs:recording>`;
    const offer = parseSiprecOffer({ parts: [{ type: 'application/sdp', content: twoAudioSdp(['L1', 'L2']) }, { type: 'application/rs-metadata+xml', content: xml }] });
    expect(offer.metadataError).toBeUndefined();
    // The second stream has no sender in the metadata: positional label, no participant.
    expect(offer.streams.map((s) => [s.partyLabel, s.participant?.name])).toEqual([
      ['Zoë <ops>', 'Zoë <ops>'],
      ['callee', undefined],
    ]);
  });

  it('keeps party labels unique when two participants share a name', () => {
    const xml = `<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <participant participant_id="a"><nameID aor="sip:bob@one"><name>Bob</name></nameID></participant>
  <participant participant_id="b"><nameID aor="sip:bob@two"><name>Bob</name></nameID></participant>
  <stream stream_id="s1"><label>1</label></stream><stream stream_id="s2"><label>2</label></stream>
  <participantstreamassoc participant_id="a"><send>s1</send></participantstreamassoc>
  <participantstreamassoc participant_id="b"><send>s2</send></participantstreamassoc>
</recording>`;
    const offer = parseSiprecOffer({ parts: [{ type: 'application/sdp', content: twoAudioSdp(['1', '2']) }, { type: 'application/rs-metadata+xml', content: xml }] });
    expect(offer.streams.map((s) => s.partyLabel)).toEqual(['Bob', 'Bob-2']);
  });

  it('Cisco CUBE-style metadata-less SDP: parties by m= line order, no labels', () => {
    const sdp = twoAudioSdp([undefined, undefined]);
    const offer = parseSiprecOffer({ contentType: 'application/sdp', body: sdp });
    expect(offer.metadata).toBeUndefined();
    expect(offer.metadataError).toBeUndefined();
    expect(offer.streams).toEqual([
      { mediaIndex: 0, port: 20000, direction: 'sendonly', inactive: false, participant: { role: 'caller' }, partyLabel: 'caller' },
      { mediaIndex: 1, port: 20002, direction: 'sendonly', inactive: false, participant: { role: 'callee' }, partyLabel: 'callee' },
    ]);

  });

  it('names a third metadata-less stream party3', () => {
    const offer = parseSiprecOffer({ contentType: 'application/sdp', body: twoAudioSdp(['1', '2', '3']) });
    expect(offer.streams.map((s) => s.partyLabel)).toEqual(['caller', 'callee', 'party3']);
  });

  it('reports a=inactive (hold) on one stream', () => {
    const offer = parseSiprecOffer({ contentType: 'application/sdp', body: twoAudioSdp(['1', '2'], ['sendonly', 'inactive']) });
    expect(offer.streams.map((s) => [s.direction, s.inactive])).toEqual([
      ['sendonly', false],
      ['inactive', true],
    ]);
  });

  it('takes the direction from the session level when the m= line has none', () => {
    const sdp = crlf(['v=0', 'o=- 1 1 IN IP4 192.0.2.9', 's=-', 'c=IN IP4 192.0.2.9', 't=0 0', 'a=sendonly', 'm=audio 5000 RTP/AVP 0']);
    expect(parseSiprecOffer({ contentType: 'application/sdp', body: sdp }).streams[0]?.direction).toBe('sendonly');
  });

  it('LF-only line ends in the multipart body and in the SDP', () => {
    const input = rfcInvite();
    const offer = parseSiprecOffer({ contentType: input.contentType, body: input.body.replace(/\r\n/g, '\n') });
    expect(offer.metadataError).toBeUndefined();
    expect(offer.streams.map((s) => [s.label, s.partyLabel])).toEqual([
      ['96', 'Alice'],
      ['98', 'Bob'],
    ]);
  });

  it('a Buffer body, a quoted boundary with ; and spaces, and transport padding after delimiters', () => {
    const boundary = 'b1; with space=x';
    const body = multipart(boundary, [
      { headers: ['content-type: Application/SDP'], body: RFC_SDP },
      { headers: ['CONTENT-TYPE: application/rs-metadata+xml;charset=utf-8', 'Content-Disposition: recording-session;handling=required'], body: rfcMetadata() },
    ]).replace(`--${boundary}\r\n`, `--${boundary}  \t\r\n`);
    const offer = parseSiprecOffer({ contentType: `multipart/mixed;boundary="${boundary}"`, body: Buffer.from(body) });
    expect(offer.streams.map((s) => s.partyLabel)).toEqual(['Alice', 'Bob']);
  });

  it("drachtio's pre-split parts", () => {
    const parts = [
      { type: 'application/sdp', content: RFC_SDP },
      { type: 'application/rs-metadata+xml', content: rfcMetadata() },
    ];
    expect(recordingBodyFromParts(parts)).toEqual({ sdp: RFC_SDP, metadata: rfcMetadata() });
    expect(parseSiprecOffer({ parts }).streams.map((s) => s.partyLabel)).toEqual(['Alice', 'Bob']);
    expect(recordingBodyFromParts([{ type: 'application/sdp', content: RFC_SDP }])).toEqual({ sdp: RFC_SDP });
  });

  it('a nested multipart part and a base64 part', () => {
    const inner = multipart('inner', [{ headers: ['Content-Type: application/sdp', 'Content-Transfer-Encoding: base64'], body: Buffer.from(RFC_SDP).toString('base64').replace(/.{60}/g, '$&\r\n') }]);
    const body = multipart('outer', [
      { headers: ['Content-Type: multipart/alternative; boundary=inner'], body: inner },
      { headers: ['Content-Type: application/rs-metadata+xml'], body: rfcMetadata() },
    ]);
    const offer = parseSiprecOffer({ contentType: 'multipart/mixed; boundary=outer', body });
    expect(offer.streams.map((s) => s.partyLabel)).toEqual(['Alice', 'Bob']);
  });
});

describe('parseSiprecOffer: re-INVITEs', () => {
  it('updated metadata with a changed name: new name reported; the party label stays with `previous`', () => {
    const first = parseSiprecOffer(rfcInvite());
    const update = rfcInvite(rfcMetadata('Alicia Smith'));

    const fresh = parseSiprecOffer(update);
    expect(fresh.streams.map((s) => s.partyLabel)).toEqual(['Alicia Smith', 'Bob']);

    const updated = parseSiprecOffer(update, { previous: first });
    expect(updated.streams.map((s) => [s.partyLabel, s.participant?.name])).toEqual([
      ['Alice', 'Alicia Smith'],
      ['Bob', 'Bob'],
    ]);
  });

  it('a partial update (RFC 7865 hold example) is merged into the previous metadata', () => {
    const first = parseSiprecOffer(rfcInvite());
    const hold = `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <datamode>partial</datamode>
  <participantstreamassoc participant_id="${ALICE}">
    <recv>8zc6e0lYTlWIINA6GR+3ag==</recv>
    <recv>EiXGlc+4TruqqoDaNE76ag==</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="${BOB}">
    <send>8zc6e0lYTlWIINA6GR+3ag==</send>
    <send>EiXGlc+4TruqqoDaNE76ag==</send>
  </participantstreamassoc>
</recording>`;
    const updated = parseSiprecOffer(rfcInvite(hold), { previous: first });
    expect(updated.metadataError).toBeUndefined();
    expect(updated.metadata?.participants.map((p) => p.name)).toEqual(['Alice', 'Bob']);
    expect(updated.streams.map((s) => [s.partyLabel, s.participant?.name])).toEqual([
      ['Alice', 'Alice'],
      ['Bob', 'Bob'],
    ]);
  });

  it('an SDP-only re-INVITE keeps the previous metadata', () => {
    const first = parseSiprecOffer(rfcInvite());
    const updated = parseSiprecOffer({ contentType: 'application/sdp', body: RFC_SDP.replace('a=sendonly', 'a=inactive') }, { previous: first });
    expect(updated.metadata).toBe(first.metadata);
    expect(updated.streams.map((s) => [s.partyLabel, s.inactive])).toEqual([
      ['Alice', true],
      ['Bob', false],
    ]);
  });

  it('a stream that changed participant (transfer) gets the new participant label', () => {
    const first = parseSiprecOffer(rfcInvite());
    const transferred = rfcMetadata().replaceAll(BOB, 'carol-id').replace('sip:bob@biloxy.com', 'sip:carol@example.com').replace('>Bob<', '>Carol<');
    const updated = parseSiprecOffer(rfcInvite(transferred), { previous: first });
    expect(updated.streams.map((s) => s.partyLabel)).toEqual(['Alice', 'Carol']);
  });
});

describe('errors', () => {
  it('a body with no SDP', () => {
    expectSiprecError(() => parseSiprecOffer({ contentType: 'application/rs-metadata+xml', body: rfcMetadata() }), /no SDP/);
    expectSiprecError(
      () => parseSiprecOffer({ contentType: 'multipart/mixed;boundary=foobar', body: multipart('foobar', [{ headers: ['Content-Type: application/rs-metadata+xml'], body: rfcMetadata() }]) }),
      /no application\/sdp part/,
    );
    expectSiprecError(() => parseSiprecOffer({ parts: [] }), /no application\/sdp part/);
    expectSiprecError(() => parseSiprecOffer({ contentType: '', body: 'hello' }), /no Content-Type/);
  });

  it('an SDP without an audio m= line, or not SDP at all', () => {
    const video = crlf(['v=0', 'o=- 1 1 IN IP4 192.0.2.9', 's=-', 't=0 0', 'm=video 5000 RTP/AVP 96']);
    expectSiprecError(() => parseSiprecOffer({ contentType: 'application/sdp', body: video }), /no audio m= line/);
    expectSiprecError(() => parseSiprecOffer({ contentType: 'application/sdp', body: '<html>' }), /v= line/);
    expectSiprecError(() => parseSiprecOffer({ contentType: 'application/sdp', body: 'v=0\r\nm=audio 99999 RTP/AVP 0\r\n' }), /bad port/);
    expectSiprecError(() => parseSiprecOffer({ contentType: 'application/sdp', body: 'v=0\r\nm=audio\r\n' }), /m= line 0 is malformed/);
  });

  it('malformed multipart bodies', () => {
    const body = multipart('foobar', [{ headers: ['Content-Type: application/sdp'], body: RFC_SDP }]);
    expectSiprecError(() => parseMultipart('multipart/mixed', body), /no boundary parameter/);
    expectSiprecError(() => parseMultipart('multipart/mixed; boundary=""', body), /no boundary parameter/);
    expectSiprecError(() => parseMultipart('multipart/mixed; boundary="foo', body), /unterminated quoted parameter/);
    expectSiprecError(() => parseMultipart('multipart/mixed; boundary=other', body), /no opening boundary/);
    expectSiprecError(() => parseMultipart('multipart/mixed; boundary=foobar', body.replace('--foobar--', '--foobar-')), /unterminated/);
    expectSiprecError(() => parseMultipart('multipart/mixed; boundary=foobar', body.slice(0, body.indexOf('--foobar--'))), /unterminated/);
    expectSiprecError(() => parseMultipart('multipart/mixed; boundary=foobar', '--foobar--\r\n'), /no parts/);
    expectSiprecError(() => parseMultipart('multipart/mixed; boundary=foobar', '--foobar\r\nv=0\r\n--foobar--\r\n'), /malformed header line/);
    expectSiprecError(() => parseMultipart('text/plain', body), /not multipart/);
    expectSiprecError(() => parseMultipart('garbage', body), /not a media type/);
  });

  it('parseMultipart returns media types, headers and exact bodies', () => {
    const parts = parseMultipart('Multipart/Mixed; Boundary=foobar', rfcInvite().body);
    expect(parts.map((p) => p.contentType)).toEqual(['application/sdp', 'application/rs-metadata+xml']);
    expect(parts[1]?.headers).toEqual({ 'content-type': 'application/rs-metadata+xml', 'content-disposition': 'recording-session' });
    expect(parts[0]?.body).toBe(RFC_SDP.replace(/\r\n$/, ''));
    // A line that starts with the delimiter but goes on is content, not a delimiter.
    const tricky = '--b\r\n\r\n--bx\r\n--b--';
    expect(parseMultipart('multipart/mixed;boundary=b', tricky)).toEqual([{ contentType: 'text/plain', headers: {}, body: '--bx' }]);
  });

  it('metadata problems never fail the call', () => {
    const cases: [string, RegExp][] = [
      ['<!DOCTYPE x [<!ENTITY a "aaaa">]><recording/>', /DOCTYPE/],
      ['<other xmlns="urn:x"/>', /not <recording>/],
      ['<recording><participant participant_id="a">', /unclosed element/],
      ['<recording a="1" a="2"/>', /duplicate attribute/],
      ['<recording/><recording/>', /more than one root/],
      ['', /no root element/],
      ['<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode></recording>', /associates no participant/],
    ];
    for (const [xml, why] of cases) {
      const offer = parseSiprecOffer({ parts: [{ type: 'application/sdp', content: RFC_SDP }, { type: 'application/rs-metadata+xml', content: xml }] });
      expect(offer.metadataError, xml).toMatch(why);
      expect(offer.streams.map((s) => s.partyLabel)).toEqual(['caller', 'callee']);
    }
  });

  it('only WhisperlineError escapes, whatever the body is cut or mangled to', () => {
    const input = rfcInvite();
    const body = input.body;
    const inputs: SiprecInput[] = [];
    for (let cut = 0; cut < body.length; cut += 13) {
      inputs.push({ contentType: input.contentType, body: body.slice(0, cut) });
      inputs.push({ contentType: input.contentType, body: body.slice(0, cut) + body.slice(cut + 40) });
    }
    inputs.push({ parts: [{ type: 'application/sdp', content: undefined as unknown as string }] });
    inputs.push({ parts: 'nope' as unknown as [] });
    inputs.push(null as unknown as SiprecInput);
    inputs.push({ contentType: 'application/sdp', body: 42 as unknown as string });
    for (const i of inputs) {
      try {
        parseSiprecOffer(i);
      } catch (err) {
        expect(err).toBeInstanceOf(WhisperlineError);
      }
    }
  });
});

describe('hostile input', () => {
  const MB = 1024 * 1024;

  // Each is parsed in a few ms (npm run bench -- siprec times them); here, what each yields.
  it.each(HOSTILE_SIPREC_BODIES.map((h) => [h.name, h] as const))('%s is refused or read with a clear reason', (_name, h) => {
    let result: unknown;
    try {
      result = parseSiprecOffer(h.input());
    } catch (err) {
      result = err;
    }
    if (result instanceof Error) {
      expect(result).toBeInstanceOf(WhisperlineError);
      expect(result.message).toMatch(h.outcome);
    } else {
      expect((result as SiprecOffer).streams).toHaveLength(2);
      expect((result as SiprecOffer).metadataError).toMatch(h.outcome);
    }
  });

  it('rejects a body over the size limit before parsing it, as BODY_TOO_LARGE (413 at the SIP edge) naming the sizes', () => {
    for (const body of ['v'.repeat(SIPREC_MAX_BODY_BYTES + 1), Buffer.alloc(5 * MB, 0x76)]) {
      let thrown: unknown;
      try {
        parseSiprecOffer({ contentType: 'application/sdp', body });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toMatchObject({ code: 'BODY_TOO_LARGE', message: expect.stringMatching(/SIPREC body is too large: \d+ bytes, at most 131072 are read/) });
      const refusal = responseForError(thrown as WhisperlineError);
      expect(refusal).toMatchObject({ status: 413, reason: 'Request Entity Too Large', headers: { Warning: expect.stringMatching(/^399 whisperline "SIPREC body is too large: \d+ bytes/) } });
    }
    // At the cap it is parsed (and refused for what it is, not its size).
    expectSiprecError(() => parseSiprecOffer({ contentType: 'application/sdp', body: 'v'.repeat(SIPREC_MAX_BODY_BYTES) }), /./);
  });

  it('caps party labels and strips control characters', () => {
    const xml = `<recording><participant participant_id="p"><nameID><name>\u0007Bad\r\n   ${'x'.repeat(500)}</name></nameID></participant><stream stream_id="s"><label>96</label></stream><participantstreamassoc participant_id="p"><send>s</send></participantstreamassoc></recording>`;
    const offer = parseSiprecOffer({ parts: [{ type: 'application/sdp', content: RFC_SDP }, { type: 'application/rs-metadata+xml', content: xml }] });
    const label = offer.streams[0]?.partyLabel ?? '';
    expect(label.startsWith('Bad xxx')).toBe(true);
    expect(label.length).toBeLessThanOrEqual(64);
  });
});
