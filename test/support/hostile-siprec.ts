/**
 * SIPREC bodies built to be expensive to parse (nesting, entities, boundary look-alikes... as large
 * as the parser reads, and one of 1 MB): the parser must refuse or read each in a few ms. The unit test checks what each yields; the
 * `siprec` benchmark times them (no test asserts elapsed time).
 */
import { SIPREC_MAX_BODY_BYTES, SIPREC_MAX_METADATA_CHARS, type SiprecInput } from '../../src/sip/siprec.js';

const MB = 1024 * 1024;
const META = SIPREC_MAX_METADATA_CHARS;
/** Room for the SDP part and the multipart framing inside the body cap. */
const BODY = SIPREC_MAX_BODY_BYTES;
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
  // Metadata as large as is read, each built to be expensive.
  { name: "metadata of '<'", input: () => withMetadata('<'.repeat(META)), outcome: /malformed tag/ },
  { name: 'metadata of nested tags', input: () => withMetadata('<a>'.repeat(META / 3)), outcome: /nested deeper/ },
  { name: 'metadata of sibling elements', input: () => withMetadata(`<recording>${'<a/>'.repeat(META / 4 - 8)}</recording>`), outcome: /more than 1000 elements/ },
  { name: 'an unterminated attribute value', input: () => withMetadata(`<recording a="${'x'.repeat(META - 64)}`), outcome: /unterminated attribute/ },
  { name: 'metadata of unterminated comments', input: () => withMetadata('<!--'.repeat(META / 4)), outcome: /unterminated comment/ },
  { name: 'metadata of entities', input: () => withMetadata(`<recording>${'&#x41;&'.repeat(Math.floor((META - 64) / 7))}</recording>`), outcome: /associates no participant/ },
  { name: 'a name as long as the metadata', input: () => withMetadata(`<recording><participant participant_id="p"><nameID><name>${'x '.repeat(META / 2 - 64)}</name></nameID></participant></recording>`), outcome: /associates no participant/ },
  { name: 'metadata over the cap', input: () => withMetadata(' '.repeat(META + 1)), outcome: /rs-metadata is too large/ },
  // Bodies as large as is read.
  { name: 'a boundary look-alike on every line', input: () => ({ contentType: 'multipart/mixed;boundary=b', body: `--b\r\n\r\n${'--bx\r\n'.repeat((BODY - 16) / 6)}` }), outcome: /unterminated/ },
  { name: 'a boundary look-alike inside every line', input: () => ({ contentType: 'multipart/mixed;boundary=b', body: `--b\r\n\r\n${'x--b'.repeat((BODY - 16) / 4)}` }), outcome: /unterminated/ },
  { name: 'a body of m= lines', input: () => ({ contentType: 'application/sdp', body: `v=0\n${'m=audio 1 RTP/AVP 0\n'.repeat((BODY - 16) / 20)}` }), outcome: /more than 64 m= lines/ },
  { name: 'a header line as long as the body', input: () => ({ contentType: 'multipart/mixed;boundary=b', body: `--b\r\nX-A: ${' '.repeat(BODY - 64)}a\r\n\r\nv=0\r\n--b--` }), outcome: /no application\/sdp part/ },
  // 1 MB, as an attacker sends it: refused by its size before anything is parsed.
  { name: 'a 1 MB body', input: () => withMetadata('&#x41;&'.repeat(MB / 7)), outcome: /SIPREC body is too large: \d+ bytes, at most 131072/ },
];
