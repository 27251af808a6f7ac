/**
 * SIPREC bodies built to be expensive to parse (1 MB of nesting, entities, boundary look-alikes...):
 * the parser must refuse or read each in a few ms. The unit test checks what each yields; the
 * `siprec` benchmark times them (no test asserts elapsed time).
 */
import type { SiprecInput } from '../../src/sip/siprec.js';

const MB = 1024 * 1024;
const crlf = (lines: readonly string[]): string => `${lines.join('\r\n')}\r\n`;

/** The RFC 7866 example's SDP: audio and video of each party, labels 96..99. */
const SDP = crlf([
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

const withMetadata = (xml: string): SiprecInput => ({
  contentType: 'multipart/mixed;boundary=foobar',
  body: ['--foobar', 'Content-Type: application/sdp', '', SDP.replace(/\r\n$/, ''), '--foobar', 'Content-Type: application/rs-metadata+xml', '', xml, '--foobar--', ''].join('\r\n'),
});

export interface HostileBody {
  readonly name: string;
  readonly input: () => SiprecInput;
  /** What the parser must say: its error, or the offer's metadataError. */
  readonly outcome: RegExp;
}

export const HOSTILE_SIPREC_BODIES: readonly HostileBody[] = [
  { name: "1 MB of '<'", input: () => withMetadata('<'.repeat(MB)), outcome: /malformed tag/ },
  { name: '1 MB of nested tags', input: () => withMetadata('<a>'.repeat(MB / 3)), outcome: /nested deeper/ },
  { name: '1 MB of sibling elements', input: () => withMetadata(`<recording>${'<a/>'.repeat(MB / 4 - 8)}</recording>`), outcome: /more than 10000 elements/ },
  { name: 'an unterminated attribute value', input: () => withMetadata(`<recording a="${'x'.repeat(MB - 64)}`), outcome: /unterminated attribute/ },
  { name: '1 MB of unterminated comments', input: () => withMetadata('<!--'.repeat(MB / 4)), outcome: /unterminated comment/ },
  { name: '1 MB of entities', input: () => withMetadata(`<recording>${'&#x41;&'.repeat(Math.floor((MB - 64) / 7))}</recording>`), outcome: /associates no participant/ },
  { name: 'a 1 MB name', input: () => withMetadata(`<recording><participant participant_id="p"><nameID><name>${'x '.repeat(MB / 2 - 64)}</name></nameID></participant></recording>`), outcome: /associates no participant/ },
  { name: 'metadata over 1 MiB', input: () => withMetadata(' '.repeat(MB + 1)), outcome: /too large/ },
  { name: 'a boundary look-alike on every line', input: () => ({ contentType: 'multipart/mixed;boundary=b', body: `--b\r\n\r\n${'--bx\r\n'.repeat(MB / 5)}` }), outcome: /unterminated/ },
  { name: 'a boundary look-alike inside every line', input: () => ({ contentType: 'multipart/mixed;boundary=b', body: `--b\r\n\r\n${'x--b'.repeat(MB / 4)}` }), outcome: /unterminated/ },
  { name: '1 MB of m= lines', input: () => ({ contentType: 'application/sdp', body: `v=0\n${'m=audio 1 RTP/AVP 0\n'.repeat(MB / 20)}` }), outcome: /more than 64 m= lines/ },
  { name: '1 MB header line in a part', input: () => ({ contentType: 'multipart/mixed;boundary=b', body: `--b\r\nX-A: ${' '.repeat(MB)}a\r\n\r\nv=0\r\n--b--` }), outcome: /no application\/sdp part/ },
];
