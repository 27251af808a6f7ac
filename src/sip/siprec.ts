import type { RecordingOffer } from '../call/recording.js';
import { WhisperlineError } from '../errors.js';

/**
 * SIPREC INVITE bodies (RFC 7866 protocol, RFC 7865 metadata): the multipart body, the recorded
 * streams of its SDP, and which participant sends each of them.
 *
 * Contracts:
 * - Only `WhisperlineError` is thrown (code `SIPREC_INVALID`, or `CODEC_UNSUPPORTED` from
 *   `buildSiprecAnswer`). A body without a usable SDP fails; broken or unhelpful metadata never
 *   fails the call: the streams fall back to positional labels and `metadataError` says why.
 * - Every parser here is a linear scan with size, depth and count limits, so hostile bodies are
 *   rejected quickly instead of hanging the event loop. No regular expression can backtrack.
 */

export class SiprecError extends WhisperlineError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('SIPREC_INVALID', message, options);
  }
}

export type MediaDirection = 'sendonly' | 'recvonly' | 'sendrecv' | 'inactive';

/** A recorded party, from the metadata, or only a positional `role` when there is no metadata. */
export interface SiprecParticipant {
  /** `participant_id` in the metadata. */
  readonly id?: string;
  readonly name?: string;
  readonly aor?: string;
  /** `caller`/`callee`/`partyN` by m= line order when the offer has no usable metadata; a vendor `role` otherwise. */
  readonly role?: string;
}

/** One audio `m=` line of the offer. */
export interface SiprecStream {
  /** Index of the m= line among all m= lines of the SDP (video lines count too). */
  readonly mediaIndex: number;
  /** `a=label`; absent on some metadata-less offers. */
  readonly label?: string;
  readonly port: number;
  readonly direction: MediaDirection;
  /** `a=inactive` (the recorded call is on hold). Reported only; what to do about it is the caller's choice. */
  readonly inactive: boolean;
  /** The participant that sends this stream. */
  readonly participant?: SiprecParticipant;
  /** Stable party label, unique per party within the offer (two streams of one participant share it). */
  readonly partyLabel: string;
}

export interface MetadataParticipant {
  readonly id: string;
  readonly name?: string;
  readonly aor?: string;
  readonly role?: string;
}

export interface MetadataStream {
  readonly id: string;
  readonly label?: string;
  readonly sessionId?: string;
}

export interface MetadataStreamAssoc {
  readonly participantId: string;
  /** stream_ids the participant sends. */
  readonly send: readonly string[];
  readonly recv: readonly string[];
}

/** The parts of RFC 7865 metadata the gateway uses. */
export interface RecordingMetadata {
  readonly dataMode?: 'complete' | 'partial';
  readonly participants: readonly MetadataParticipant[];
  readonly streams: readonly MetadataStream[];
  readonly associations: readonly MetadataStreamAssoc[];
}

export interface SiprecOffer {
  readonly sdp: string;
  /** Audio streams in m= line order. */
  readonly streams: readonly SiprecStream[];
  readonly metadata?: RecordingMetadata;
  /** Why the metadata (present in the body) was not, or not fully, used. */
  readonly metadataError?: string;
}

export interface MultipartPart {
  /** Media type of the part in lower case, without parameters (those stay in `headers`). */
  readonly contentType: string;
  /** Part headers, names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** drachtio-srf's pre-split form of a multipart body (`req.payload`). */
export interface PayloadPart {
  readonly type: string;
  readonly content: string;
}

export interface RecordingBody {
  readonly sdp: string;
  /** The rs-metadata XML, when the body has it. */
  readonly metadata?: string;
}

export type SiprecInput =
  | { readonly contentType: string; readonly body: string | Buffer }
  | { readonly parts: readonly PayloadPart[] };

export interface ParseSiprecOptions {
  /**
   * The offer this one updates (re-INVITE). Streams that keep their label and participant keep
   * their `partyLabel` even when the participant's name changed, and `partial` metadata is merged
   * into the previous metadata.
   */
  readonly previous?: SiprecOffer;
}

/**
 * The largest SIPREC body and rs-metadata read. Real recording clients send an SDP of 1-2 KB and
 * metadata of 2-10 KB; these caps are ten times that, and keep the worst hostile body a parse of a
 * few ms (npm run bench -- siprec), where 1 MB of metadata took 100-400 ms of the event loop
 * that every call's media and feeds share.
 */
export const SIPREC_MAX_BODY_BYTES = 128 * 1024;
export const SIPREC_MAX_METADATA_CHARS = 32 * 1024;
const MAX_BODY_CHARS = SIPREC_MAX_BODY_BYTES;
const MAX_METADATA_CHARS = SIPREC_MAX_METADATA_CHARS;
const MAX_BOUNDARY_CHARS = 200;
const MAX_PARTS = 16;
const MAX_MULTIPART_NESTING = 3;
const MAX_MEDIA_LINES = 64;
const MAX_XML_DEPTH = 32;
/** Real metadata has well under 200 elements (a few participants and streams); each costs ~2 µs to build. */
const MAX_XML_ELEMENTS = 1000;
const MAX_PARTY_LABEL_CHARS = 64;

const METADATA_TYPES = new Set(['application/rs-metadata+xml', 'application/rs-metadata']);
const XML_TYPES = new Set(['application/xml', 'text/xml']);

// ---------------------------------------------------------------------------------------------
// Content-Type and multipart

interface MediaType {
  readonly type: string;
  readonly params: ReadonlyMap<string, string>;
}

function isTokenChar(c: number): boolean {
  // RFC 7230 tchar.
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    (c > 0x20 && c < 0x7f && "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)))
  );
}

function isToken(s: string): boolean {
  if (s === '') return false;
  for (let i = 0; i < s.length; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  return true;
}

function isMediaType(s: string): boolean {
  const slash = s.indexOf('/');
  return slash > 0 && isToken(s.slice(0, slash)) && isToken(s.slice(slash + 1));
}

function isWs(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}

/** Parses `type/subtype; name=value; name="quoted \" value"`. Throws SiprecError when malformed. */
function parseMediaType(value: string, what: string): MediaType {
  const semi = value.indexOf(';');
  const type = (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase();
  if (!isMediaType(type)) throw new SiprecError(`${what} is not a media type: "${clip(value)}"`);
  const params = new Map<string, string>();
  let i = semi === -1 ? value.length : semi + 1;
  while (i < value.length) {
    while (i < value.length && (isWs(value[i]) || value[i] === ';')) i++;
    if (i >= value.length) break;
    const nameStart = i;
    while (i < value.length && value[i] !== '=' && value[i] !== ';') i++;
    const name = value.slice(nameStart, i).trim().toLowerCase();
    let paramValue = '';
    if (value[i] === '=') {
      i++;
      while (i < value.length && isWs(value[i])) i++;
      if (value[i] === '"') {
        i++;
        let closed = false;
        while (i < value.length) {
          const c = value[i];
          if (c === '\\' && i + 1 < value.length) {
            paramValue += value[i + 1];
            i += 2;
          } else if (c === '"') {
            i++;
            closed = true;
            break;
          } else {
            paramValue += c;
            i++;
          }
        }
        if (!closed) throw new SiprecError(`${what} has an unterminated quoted parameter "${name}"`);
        while (i < value.length && value[i] !== ';') i++;
      } else {
        const start = i;
        while (i < value.length && value[i] !== ';') i++;
        paramValue = value.slice(start, i).trim();
      }
    }
    if (name !== '' && !params.has(name)) params.set(name, paramValue);
  }
  return { type, params };
}

/**
 * Splits a `multipart/*` body (RFC 2046) into its parts. Accepts CRLF or bare LF line ends, a
 * quoted boundary, transport padding after boundaries, and ignores preamble and epilogue.
 * A missing boundary parameter, a missing opening or closing delimiter, or a part without a
 * header/body separator is an error.
 */
export function parseMultipart(contentType: string, body: string | Buffer): MultipartPart[] {
  return guard(() => parseMultipartAt(contentType, body, 0));
}

function parseMultipartAt(contentType: string, body: string | Buffer, depth: number): MultipartPart[] {
  if (typeof contentType !== 'string') throw new SiprecError('multipart Content-Type is missing');
  const mt = parseMediaType(contentType, 'Content-Type');
  if (!mt.type.startsWith('multipart/')) throw new SiprecError(`Content-Type ${mt.type} is not multipart`);
  const boundary = mt.params.get('boundary');
  if (boundary === undefined || boundary === '') throw new SiprecError('multipart Content-Type has no boundary parameter');
  if (boundary.length > MAX_BOUNDARY_CHARS) throw new SiprecError('multipart boundary is too long');
  const text = bodyText(body);

  const delimiter = `--${boundary}`;
  const parts: MultipartPart[] = [];
  let contentStart = -1; // start of the current part's content, -1 before the opening delimiter
  let search = 0;
  let closed = false;
  for (;;) {
    const at = text.indexOf(delimiter, search);
    if (at === -1) break;
    search = at + 1;
    // A delimiter starts a line and is followed only by "--" (close), padding, and a line end.
    if (at > 0 && text[at - 1] !== '\n') continue;
    let j = at + delimiter.length;
    const isClose = text.startsWith('--', j);
    if (isClose) j += 2;
    while (j < text.length && (text[j] === ' ' || text[j] === '\t')) j++;
    let next: number;
    if (j === text.length) next = j;
    else if (text[j] === '\n') next = j + 1;
    else if (text[j] === '\r' && text[j + 1] === '\n') next = j + 2;
    else if (text[j] === '\r' && j + 1 === text.length) next = j + 1;
    else continue;

    if (contentStart !== -1) {
      // The line break before the delimiter belongs to the delimiter, not to the part.
      let end = at;
      if (end > contentStart && text[end - 1] === '\n') end--;
      if (end > contentStart && text[end - 1] === '\r') end--;
      if (parts.length >= MAX_PARTS) throw new SiprecError(`multipart body has more than ${MAX_PARTS} parts`);
      parts.push(parsePart(text.slice(contentStart, end), parts.length + 1, depth));
    } else if (isClose) {
      throw new SiprecError('multipart body has no parts');
    }
    if (isClose) {
      closed = true;
      break;
    }
    contentStart = next;
    search = next;
  }
  if (contentStart === -1) throw new SiprecError('multipart body has no opening boundary delimiter');
  if (!closed) throw new SiprecError('multipart body is unterminated (no closing boundary delimiter)');
  return parts;
}

function parsePart(raw: string, n: number, depth: number): MultipartPart {
  const headers: Record<string, string> = {};
  let lastName: string | undefined;
  let i = 0;
  let bodyStart = raw.length;
  while (i < raw.length) {
    const nl = raw.indexOf('\n', i);
    const lineEnd = nl === -1 ? raw.length : nl;
    const line = raw.slice(i, lineEnd > i && raw[lineEnd - 1] === '\r' ? lineEnd - 1 : lineEnd);
    const next = nl === -1 ? raw.length : nl + 1;
    if (line === '') {
      bodyStart = next;
      break;
    }
    if (line[0] === ' ' || line[0] === '\t') {
      if (lastName === undefined) throw new SiprecError(`multipart part ${n} starts with a continuation line`);
      headers[lastName] = `${headers[lastName]} ${line.trim()}`;
    } else {
      const colon = line.indexOf(':');
      const name = colon === -1 ? '' : line.slice(0, colon).trim().toLowerCase();
      if (!isToken(name)) throw new SiprecError(`multipart part ${n} has a malformed header line (no blank line before its body?)`);
      if (!(name in headers)) headers[name] = line.slice(colon + 1).trim();
      lastName = name;
    }
    i = next;
    bodyStart = raw.length;
  }
  let body = raw.slice(bodyStart);
  const contentType = parseMediaType(headers['content-type'] ?? 'text/plain', `multipart part ${n} Content-Type`).type;
  const encoding = (headers['content-transfer-encoding'] ?? '').toLowerCase();
  if (encoding === 'base64') body = Buffer.from(removeWhitespace(body), 'base64').toString('utf8');
  if (contentType.startsWith('multipart/') && depth >= MAX_MULTIPART_NESTING) {
    throw new SiprecError('multipart bodies are nested too deeply');
  }
  return { contentType, headers, body };
}

function removeWhitespace(s: string): string {
  let out = '';
  for (const c of s) if (!isWs(c)) out += c;
  return out;
}

function bodyText(body: string | Buffer): string {
  let text: string;
  if (typeof body === 'string') text = body;
  else if (Buffer.isBuffer(body)) {
    if (body.length > MAX_BODY_CHARS) throw tooLarge(body.length);
    text = body.toString('utf8');
  } else throw new SiprecError('SIPREC body is not text');
  if (text.length > MAX_BODY_CHARS) throw tooLarge(Buffer.byteLength(text));
  return text;
}

/** Refused before any parsing: the SIP edge answers 413 with this message in a Warning. */
function tooLarge(bytes: number): WhisperlineError {
  return new WhisperlineError('BODY_TOO_LARGE', `SIPREC body is too large: ${bytes} bytes, at most ${MAX_BODY_CHARS} are read`);
}

// ---------------------------------------------------------------------------------------------
// Picking the SDP and the metadata out of the parts

interface CandidatePart {
  readonly type: string; // full Content-Type value
  readonly content: string;
  readonly disposition?: string;
}

/**
 * Picks the SDP and the rs-metadata out of drachtio-srf's pre-split multipart body
 * (`req.payload`: `[{ type, content }]`). Nested multipart parts are opened.
 */
export function recordingBodyFromParts(parts: readonly PayloadPart[]): RecordingBody {
  return guard(() => {
    if (!Array.isArray(parts)) throw new SiprecError('SIPREC parts are not a list');
    return pickRecordingParts(
      parts.map((p, n) => {
        if (typeof p !== 'object' || p === null || typeof p.type !== 'string' || typeof p.content !== 'string') {
          throw new SiprecError(`SIPREC part ${n + 1} has no string type and content`);
        }
        return { type: p.type, content: p.content };
      }),
      0,
    );
  });
}

function pickRecordingParts(parts: readonly CandidatePart[], depth: number): RecordingBody {
  if (parts.length > MAX_PARTS) throw new SiprecError(`SIPREC body has more than ${MAX_PARTS} parts`);
  let sdp: string | undefined;
  let metadata: string | undefined;
  for (const part of parts) {
    const semi = part.type.indexOf(';');
    const type = (semi === -1 ? part.type : part.type.slice(0, semi)).trim().toLowerCase();
    const disposition = (part.disposition ?? '').split(';')[0]?.trim().toLowerCase();
    if (type === 'application/sdp') {
      sdp ??= part.content;
    } else if (METADATA_TYPES.has(type) || (disposition === 'recording-session' && XML_TYPES.has(type))) {
      metadata ??= part.content;
    } else if (type.startsWith('multipart/')) {
      if (depth >= MAX_MULTIPART_NESTING) throw new SiprecError('multipart bodies are nested too deeply');
      const inner = pickRecordingParts(candidatesOf(parseMultipartAt(part.type, part.content, depth + 1)), depth + 1);
      sdp ??= inner.sdp;
      if (inner.metadata !== undefined) metadata ??= inner.metadata;
    }
  }
  if (sdp === undefined) throw new SiprecError('SIPREC body has no application/sdp part');
  return metadata === undefined ? { sdp } : { sdp, metadata };
}

function candidatesOf(parts: readonly MultipartPart[]): CandidatePart[] {
  return parts.map((p) => {
    const type = p.headers['content-type'] ?? p.contentType;
    const disposition = p.headers['content-disposition'];
    return disposition === undefined ? { type, content: p.body } : { type, content: p.body, disposition };
  });
}

function recordingBodyOf(input: SiprecInput): RecordingBody {
  if (typeof input !== 'object' || input === null) throw new SiprecError('SIPREC input is missing');
  if ('parts' in input) return recordingBodyFromParts(input.parts);
  const text = bodyText(input.body);
  const contentType = typeof input.contentType === 'string' ? input.contentType.trim() : '';
  if (contentType === '') {
    if (text.trimStart().startsWith('v=')) return { sdp: text };
    throw new SiprecError('SIPREC body has no Content-Type');
  }
  const mt = parseMediaType(contentType, 'Content-Type');
  if (mt.type === 'application/sdp') return { sdp: text };
  if (mt.type.startsWith('multipart/')) return pickRecordingParts(candidatesOf(parseMultipartAt(contentType, text, 0)), 0);
  throw new SiprecError(`SIPREC body of type ${mt.type} has no SDP`);
}

// ---------------------------------------------------------------------------------------------
// SDP (only what SIPREC needs: m= lines, labels, directions, payload types)

interface SdpMedia {
  readonly index: number;
  readonly type: string;
  readonly port: number;
  readonly proto: string;
  readonly formats: readonly string[];
  /** `a=` values of this media section, without the `a=`. */
  readonly attributes: readonly string[];
}

interface ParsedSdp {
  readonly sessionAttributes: readonly string[];
  readonly media: readonly SdpMedia[];
}

function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n' || c === '\r') {
      lines.push(text.slice(start, i));
      if (c === '\r' && text[i + 1] === '\n') i++;
      start = i + 1;
    }
  }
  lines.push(text.slice(start));
  return lines;
}

function parseSdp(sdp: string): ParsedSdp {
  const lines = splitLines(sdp);
  const first = lines.find((l) => l.trim() !== '');
  if (first === undefined || !first.startsWith('v=')) throw new SiprecError('SDP does not start with a v= line');
  const sessionAttributes: string[] = [];
  const media: { index: number; type: string; port: number; proto: string; formats: string[]; attributes: string[] }[] = [];
  for (const line of lines) {
    if (line.length < 2 || line[1] !== '=') continue;
    const value = line.slice(2).trim();
    if (line[0] === 'm') {
      if (media.length >= MAX_MEDIA_LINES) throw new SiprecError(`SDP has more than ${MAX_MEDIA_LINES} m= lines`);
      const index = media.length;
      const fields = value.split(' ').filter((f) => f !== '');
      const [type, portField, proto, ...formats] = fields;
      if (type === undefined || portField === undefined || proto === undefined) {
        throw new SiprecError(`SDP m= line ${index} is malformed`);
      }
      const portText = portField.split('/')[0] ?? '';
      const port = portText.length <= 5 && /^[0-9]+$/.test(portText) ? Number(portText) : NaN;
      if (!(port >= 0 && port <= 65535)) throw new SiprecError(`SDP m= line ${index} has a bad port "${clip(portField)}"`);
      media.push({ index, type: type.toLowerCase(), port, proto, formats, attributes: [] });
    } else if (line[0] === 'a') {
      (media.at(-1)?.attributes ?? sessionAttributes).push(value);
    }
  }
  return { sessionAttributes, media };
}

const DIRECTIONS: ReadonlySet<string> = new Set<MediaDirection>(['sendonly', 'recvonly', 'sendrecv', 'inactive']);

function directionOf(attributes: readonly string[]): MediaDirection | undefined {
  return attributes.find((a) => DIRECTIONS.has(a)) as MediaDirection | undefined;
}

function attributeValue(attributes: readonly string[], name: string): string | undefined {
  const prefix = `${name}:`;
  const found = attributes.find((a) => a.startsWith(prefix));
  return found === undefined ? undefined : found.slice(prefix.length).trim();
}

// ---------------------------------------------------------------------------------------------
// rs-metadata XML: a small non-validating parser. No DTDs (so no entity expansion), no external
// anything; element and attribute names lose their namespace prefixes.

class XmlError extends Error {}

interface XmlElement {
  /** Local name as written. */
  readonly name: string;
  readonly qname: string;
  /** Attributes by local name. */
  readonly attrs: Map<string, string>;
  readonly children: XmlElement[];
  text: string;
}

function isXmlNameChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x5f || // _
    c === 0x2d || // -
    c === 0x2e || // .
    c === 0x3a || // :
    c >= 0x80
  );
}

function localName(qname: string): string {
  const colon = qname.lastIndexOf(':');
  return colon === -1 ? qname : qname.slice(colon + 1);
}

const ENTITY = /&(?:#([0-9]{1,7})|#x([0-9a-fA-F]{1,6})|(lt|gt|amp|quot|apos));/g;
const NAMED_ENTITIES: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(ENTITY, (whole, dec: string | undefined, hex: string | undefined, named: string | undefined) => {
    if (named !== undefined) return NAMED_ENTITIES[named] ?? whole;
    const code = dec !== undefined ? Number(dec) : parseInt(hex ?? '', 16);
    return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : whole;
  });
}

function parseXml(src: string): XmlElement {
  const n = src.length;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let elements = 0;
  let i = 0;

  const addText = (text: string): void => {
    const top = stack.at(-1);
    if (top) top.text += text;
    else if (text.trim() !== '') throw new XmlError('text outside the root element');
  };

  while (i < n) {
    const lt = src.indexOf('<', i);
    if (lt === -1) {
      addText(decodeEntities(src.slice(i)));
      break;
    }
    if (lt > i) addText(decodeEntities(src.slice(i, lt)));
    i = lt;
    if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i + 4);
      if (end === -1) throw new XmlError('unterminated comment');
      i = end + 3;
    } else if (src.startsWith('<![CDATA[', i)) {
      const end = src.indexOf(']]>', i + 9);
      if (end === -1) throw new XmlError('unterminated CDATA section');
      addText(src.slice(i + 9, end));
      i = end + 3;
    } else if (src.startsWith('<?', i)) {
      const end = src.indexOf('?>', i + 2);
      if (end === -1) throw new XmlError('unterminated processing instruction');
      i = end + 2;
    } else if (src.startsWith('<!', i)) {
      throw new XmlError('DOCTYPE and other declarations are not accepted');
    } else if (src.startsWith('</', i)) {
      const end = src.indexOf('>', i + 2);
      if (end === -1) throw new XmlError('unterminated end tag');
      const qname = src.slice(i + 2, end).trim();
      const top = stack.pop();
      if (!top) throw new XmlError(`end tag </${clip(qname)}> without a start tag`);
      if (top.qname !== qname) throw new XmlError(`end tag </${clip(qname)}> does not match <${top.qname}>`);
      i = end + 1;
    } else {
      // Start tag.
      let p = i + 1;
      while (p < n && isXmlNameChar(src.charCodeAt(p))) p++;
      const qname = src.slice(i + 1, p);
      if (qname === '') throw new XmlError(`malformed tag at offset ${i}`);
      if (stack.length === 0 && root) throw new XmlError('more than one root element');
      if (stack.length >= MAX_XML_DEPTH) throw new XmlError(`elements nested deeper than ${MAX_XML_DEPTH}`);
      if (++elements > MAX_XML_ELEMENTS) throw new XmlError(`more than ${MAX_XML_ELEMENTS} elements`);
      const element: XmlElement = { name: localName(qname), qname, attrs: new Map(), children: [], text: '' };
      const seen = new Set<string>();
      let selfClosing = false;
      for (;;) {
        const before = p;
        while (p < n && isWs(src[p])) p++;
        if (p >= n) throw new XmlError(`unterminated start tag <${clip(qname)}>`);
        if (src[p] === '>') {
          p++;
          break;
        }
        if (src[p] === '/' && src[p + 1] === '>') {
          p += 2;
          selfClosing = true;
          break;
        }
        if (p === before) throw new XmlError(`malformed start tag <${clip(qname)}>`);
        const nameStart = p;
        while (p < n && isXmlNameChar(src.charCodeAt(p))) p++;
        const attrName = src.slice(nameStart, p);
        if (attrName === '') throw new XmlError(`malformed attribute in <${clip(qname)}>`);
        while (p < n && isWs(src[p])) p++;
        if (src[p] !== '=') throw new XmlError(`attribute ${clip(attrName)} has no value`);
        p++;
        while (p < n && isWs(src[p])) p++;
        const quote = src[p];
        if (quote !== '"' && quote !== "'") throw new XmlError(`attribute ${clip(attrName)} value is not quoted`);
        const end = src.indexOf(quote, p + 1);
        if (end === -1) throw new XmlError(`unterminated attribute value of ${clip(attrName)}`);
        if (seen.has(attrName)) throw new XmlError(`duplicate attribute ${clip(attrName)}`);
        seen.add(attrName);
        const local = localName(attrName);
        if (!attrName.startsWith('xmlns') && !element.attrs.has(local)) element.attrs.set(local, decodeEntities(src.slice(p + 1, end)));
        p = end + 1;
      }
      const parent = stack.at(-1);
      if (parent) parent.children.push(element);
      else root = element;
      if (!selfClosing) stack.push(element);
      i = p;
    }
  }
  if (stack.length > 0) throw new XmlError(`unclosed element <${stack.at(-1)?.qname}>`);
  if (!root) throw new XmlError('no root element');
  return root;
}

function is(el: XmlElement, ...names: string[]): boolean {
  const lower = el.name.toLowerCase();
  return names.includes(lower);
}

function children(el: XmlElement, ...names: string[]): XmlElement[] {
  return el.children.filter((c) => is(c, ...names));
}

/** Descendants with one of `names` (lower case), not looking inside vendor extension data. */
function descendants(el: XmlElement, ...names: string[]): XmlElement[] {
  const found: XmlElement[] = [];
  const walk = (e: XmlElement): void => {
    for (const c of e.children) {
      if (is(c, 'extensiondata')) continue;
      if (is(c, ...names)) found.push(c);
      else walk(c);
    }
  };
  walk(el);
  return found;
}

function textOf(el: XmlElement | undefined): string | undefined {
  const t = el?.text.trim();
  return t === undefined || t === '' ? undefined : t;
}

function attr(el: XmlElement, ...names: string[]): string | undefined {
  for (const name of names) {
    const v = el.attrs.get(name)?.trim();
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

function withDefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Reads RFC 7865 metadata, also accepting the draft-era and vendor spellings seen in the field:
 * `participant_id`/`id`, `stream_id`/`id`, `nameID`/`nameId`, an `aor` attribute or `<aor>` element,
 * `<name>` directly under `<participant>`, `<send>`/`<recv>` directly under `<participant>`
 * (early drafts), `participantstreamassoc`/`participantstreamassociation`, and `<stream label=…>`.
 */
function parseRecordingMetadata(xml: string): RecordingMetadata {
  if (xml.length > MAX_METADATA_CHARS) throw new XmlError(`rs-metadata is too large (${xml.length} characters, at most ${MAX_METADATA_CHARS} are read)`);
  const root = parseXml(xml);
  if (root.name.toLowerCase() !== 'recording') throw new XmlError(`root element is <${clip(root.qname)}>, not <recording>`);

  const mode = textOf(children(root, 'datamode')[0])?.toLowerCase();
  const participants: MetadataParticipant[] = [];
  const associations: MetadataStreamAssoc[] = [];
  for (const p of descendants(root, 'participant')) {
    const id = attr(p, 'participant_id', 'id');
    if (id === undefined) continue;
    const nameIds = children(p, 'nameid');
    let aor: string | undefined;
    let name: string | undefined;
    for (const nameId of nameIds) {
      aor ??= attr(nameId, 'aor') ?? textOf(children(nameId, 'aor')[0]);
      name ??= textOf(children(nameId, 'name')[0]);
    }
    aor ??= textOf(children(p, 'aor')[0]);
    name ??= textOf(children(p, 'name')[0]);
    const role = attr(p, 'role') ?? textOf(children(p, 'role')[0]);
    participants.push(withDefined({ id, name, aor, role }));
    const send = children(p, 'send').flatMap((e) => textOf(e) ?? []);
    const recv = children(p, 'recv').flatMap((e) => textOf(e) ?? []);
    if (send.length > 0 || recv.length > 0) associations.push({ participantId: id, send, recv });
  }
  const streams: MetadataStream[] = [];
  for (const s of descendants(root, 'stream')) {
    const id = attr(s, 'stream_id', 'id');
    if (id === undefined) continue;
    streams.push(withDefined({ id, label: textOf(children(s, 'label')[0]) ?? attr(s, 'label'), sessionId: attr(s, 'session_id', 'session') }));
  }
  for (const a of descendants(root, 'participantstreamassoc', 'participantstreamassociation')) {
    const participantId = attr(a, 'participant_id', 'id', 'participant');
    if (participantId === undefined) continue;
    associations.push({
      participantId,
      send: children(a, 'send').flatMap((e) => textOf(e) ?? []),
      recv: children(a, 'recv').flatMap((e) => textOf(e) ?? []),
    });
  }
  const dataMode = mode === 'complete' || mode === 'partial' ? mode : undefined;
  return withDefined({ dataMode, participants, streams, associations });
}

/** RFC 7865 partial update: elements replace those with the same id; associations replace per participant. */
function mergeMetadata(previous: RecordingMetadata, update: RecordingMetadata): RecordingMetadata {
  const byId = <T>(old: readonly T[], next: readonly T[], key: (t: T) => string, merge: (a: T, b: T) => T): T[] => {
    const map = new Map<string, T>();
    for (const t of old) map.set(key(t), t);
    for (const t of next) {
      const existing = map.get(key(t));
      map.set(key(t), existing === undefined ? t : merge(existing, t));
    }
    return [...map.values()];
  };
  const overlay = <T extends object>(a: T, b: T): T => ({ ...a, ...withDefined(b) });
  return {
    dataMode: 'partial',
    participants: byId(previous.participants, update.participants, (p) => p.id, overlay),
    streams: byId(previous.streams, update.streams, (s) => s.id, overlay),
    associations: byId(previous.associations, update.associations, (a) => a.participantId, (_a, b) => b),
  };
}

// ---------------------------------------------------------------------------------------------
// The offer

/**
 * Parses a SIPREC INVITE body into its audio streams, each with the participant that sends it
 * and a party label. Throws SiprecError when the body has no usable SDP; metadata problems only
 * set `metadataError`.
 */
export function parseSiprecOffer(input: SiprecInput, options: ParseSiprecOptions = {}): SiprecOffer {
  return guard(() => {
    const body = recordingBodyOf(input);
    const sdp = parseSdp(body.sdp);
    const audio = sdp.media.filter((m) => m.type === 'audio');
    if (audio.length === 0) throw new SiprecError('SIPREC SDP has no audio m= line');
    const sessionDirection = directionOf(sdp.sessionAttributes) ?? 'sendrecv';

    // A re-INVITE may leave the metadata out when it has not changed (RFC 7866 section 6.1.1).
    let metadata: RecordingMetadata | undefined = body.metadata === undefined ? options.previous?.metadata : undefined;
    let metadataError: string | undefined;
    if (body.metadata !== undefined) {
      try {
        metadata = parseRecordingMetadata(body.metadata);
        const previous = options.previous?.metadata;
        if (metadata.dataMode === 'partial' && previous) metadata = mergeMetadata(previous, metadata);
      } catch (err) {
        metadataError = `rs-metadata unusable: ${err instanceof Error ? err.message : String(err)}`;
      }
    }

    const senders = metadata ? sendersByLabel(metadata) : new Map<string, MetadataParticipant>();
    const resolved = audio.map((m): SiprecParticipant | undefined => {
      const label = attributeValue(m.attributes, 'label');
      if (label === undefined) return undefined;
      // A stream nobody sends in an update (the RFC 7865 hold example) still belongs to its party.
      return senders.get(label) ?? options.previous?.streams.find((s) => s.label === label && s.participant?.id !== undefined)?.participant;
    });
    if (metadata && metadataError === undefined && resolved.every((p) => p === undefined)) {
      metadataError = 'rs-metadata associates no participant with any audio stream label';
    }
    const usable = metadata !== undefined && resolved.some((p) => p !== undefined);

    const drafts = audio.map((m, n) => {
      const label = attributeValue(m.attributes, 'label');
      const direction = directionOf(m.attributes) ?? sessionDirection;
      const participant: SiprecParticipant | undefined = usable ? resolved[n] : { role: positionalLabel(n) };
      return withDefined({ mediaIndex: m.index, label, port: m.port, direction, inactive: direction === 'inactive', participant });
    });
    const labels = assignPartyLabels(drafts, options.previous);
    const streams: SiprecStream[] = drafts.map((d, n) => ({ ...d, partyLabel: labels[n] ?? positionalLabel(n) }));
    return withDefined({ sdp: body.sdp, streams, metadata, metadataError });
  });
}

/**
 * The call level's view of a parsed offer: each stream's party and who sends it; why the names
 * are only positional when the metadata was unusable.
 */
export function toRecordingOffer(offer: SiprecOffer): RecordingOffer {
  return {
    sdp: offer.sdp,
    streams: offer.streams.map((s) => ({
      mediaIndex: s.mediaIndex,
      party: s.partyLabel,
      ...(s.participant && (s.participant.name !== undefined || s.participant.aor !== undefined)
        ? { participant: { ...(s.participant.name !== undefined ? { name: s.participant.name } : {}), ...(s.participant.aor !== undefined ? { aor: s.participant.aor } : {}) } }
        : {}),
    })),
    ...(offer.metadataError !== undefined ? { metadataWarning: offer.metadataError } : {}),
  };
}

/** a=label value → the participant that sends the stream with that label. */
function sendersByLabel(metadata: RecordingMetadata): Map<string, MetadataParticipant> {
  const participants = new Map(metadata.participants.map((p) => [p.id, p]));
  const labelById = new Map<string, string>();
  for (const s of metadata.streams) if (s.label !== undefined) labelById.set(s.id, s.label);
  const senders = new Map<string, MetadataParticipant>();
  for (const a of metadata.associations) {
    for (const streamId of a.send) {
      // Some senders put the label itself in <send>; accept it when it names no stream_id.
      const label = labelById.get(streamId) ?? streamId;
      // The first sender wins: a mixed stream sent by several participants keeps its first one.
      if (!senders.has(label)) senders.set(label, participants.get(a.participantId) ?? { id: a.participantId });
    }
  }
  return senders;
}

function positionalLabel(n: number): string {
  return n === 0 ? 'caller' : n === 1 ? 'callee' : `party${n + 1}`;
}

function sanitizeLabel(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  let out = '';
  let space = false;
  for (const c of s) {
    const code = c.codePointAt(0) ?? 0;
    if (code < 0x20 || code === 0x7f || isWs(c)) {
      space = out !== '';
    } else {
      if (out.length + c.length + (space ? 1 : 0) > MAX_PARTY_LABEL_CHARS) break;
      if (space) out += ' ';
      out += c;
      space = false;
    }
  }
  return out === '' ? undefined : out;
}

/** User part of a SIP/tel URI: `sip:alice@example.com` → `alice`, `tel:+15551234567;phone-context=x` → `+15551234567`. */
function userPart(aor: string | undefined): string | undefined {
  if (aor === undefined) return undefined;
  let s = aor.trim();
  if (s.startsWith('<')) s = s.slice(1, s.includes('>') ? s.indexOf('>') : undefined);
  const colon = s.indexOf(':');
  if (colon > 0 && /^[a-zA-Z][a-zA-Z0-9+.-]*$/.test(s.slice(0, colon))) s = s.slice(colon + 1);
  for (const stop of ['@', ';', '?']) {
    const at = s.indexOf(stop);
    if (at !== -1) s = s.slice(0, at);
  }
  return sanitizeLabel(s);
}

interface StreamDraft {
  readonly mediaIndex: number;
  readonly label?: string;
  readonly participant?: SiprecParticipant;
}

function assignPartyLabels(drafts: readonly StreamDraft[], previous: SiprecOffer | undefined): string[] {
  // A party is a participant id; a stream without one is a party of its own.
  const partyKey = (d: StreamDraft): string => (d.participant?.id !== undefined ? `p:${d.participant.id}` : `s:${d.mediaIndex}`);
  const byKey = new Map<string, string>();
  const taken = new Set<string>();
  const take = (key: string, label: string): void => {
    byKey.set(key, label);
    taken.add(label);
  };
  if (previous) {
    for (const d of drafts) {
      const key = partyKey(d);
      if (byKey.has(key)) continue;
      const before = previous.streams.find((s) => (d.label !== undefined ? s.label === d.label : s.label === undefined && s.mediaIndex === d.mediaIndex));
      if (before && before.participant?.id === d.participant?.id && !taken.has(before.partyLabel)) take(key, before.partyLabel);
    }
  }
  drafts.forEach((d, n) => {
    const key = partyKey(d);
    if (byKey.has(key)) return;
    const base = sanitizeLabel(d.participant?.name) ?? userPart(d.participant?.aor) ?? positionalLabel(n);
    let label = base;
    for (let k = 2; taken.has(label); k++) label = `${base}-${k}`;
    take(key, label);
  });
  return drafts.map((d) => byKey.get(partyKey(d)) ?? '');
}

// ---------------------------------------------------------------------------------------------

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/** Runs `fn`, turning anything but a WhisperlineError into a SiprecError. */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof WhisperlineError) throw err;
    throw new SiprecError(`SIPREC body could not be processed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
