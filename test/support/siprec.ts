/**
 * A SIPREC recording INVITE body as an SBC sends it: two sendonly PCMU streams (labels 1 and 2),
 * rs-metadata naming Alice (sip:alice@example.com) as the sender of stream 1 and Bob of stream 2.
 */
import { parseSiprecOffer, type SiprecOffer } from '../../src/sip/siprec.js';
import type { RtpEndpoint } from './rtp-endpoint.js';

export const TWO_PARTY_METADATA = `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="s1"><sipSessionID>abc</sipSessionID></session>
  <participant participant_id="p1"><nameID aor="sip:alice@example.com"><name>Alice</name></nameID></participant>
  <participant participant_id="p2"><nameID aor="sip:bob@example.com"><name>Bob</name></nameID></participant>
  <stream stream_id="st1" session_id="s1"><label>1</label></stream>
  <stream stream_id="st2" session_id="s1"><label>2</label></stream>
  <participantstreamassoc participant_id="p1"><send>st1</send><recv>st2</recv></participantstreamassoc>
  <participantstreamassoc participant_id="p2"><send>st2</send><recv>st1</recv></participantstreamassoc>
</recording>`;

/** The two-stream SDP offer with each stream's media at the given endpoint. */
export function twoStreamSdp(alice: RtpEndpoint, bob: RtpEndpoint): string {
  const mline = (ep: RtpEndpoint, label: number): string[] => [`m=audio ${ep.port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', `a=label:${label}`, 'a=sendonly'];
  return ['v=0', 'o=SRC 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', ...mline(alice, 1), ...mline(bob, 2), ''].join('\r\n');
}

/**
 * The multipart body (SDP + rs-metadata), parsed as the SIP layer parses it; `previous` reads it
 * as a re-INVITE of that recording.
 */
export function twoPartySiprecOffer(alice: RtpEndpoint, bob: RtpEndpoint, options: { metadata?: string; previous?: SiprecOffer } = {}): SiprecOffer {
  const metadata = options.metadata ?? TWO_PARTY_METADATA;
  const body = ['--b1', 'Content-Type: application/sdp', '', twoStreamSdp(alice, bob), '--b1', 'Content-Type: application/rs-metadata+xml', 'Content-Disposition: recording-session', '', metadata, '--b1--', ''].join('\r\n');
  return parseSiprecOffer({ contentType: 'multipart/mixed;boundary=b1', body }, options.previous ? { previous: options.previous } : {});
}
