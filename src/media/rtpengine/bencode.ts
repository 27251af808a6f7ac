/**
 * Bencode, the dictionary encoding of rtpengine's ng control protocol.
 *
 * Encoding builds a Buffer from chunks, so binary values (a `blob` for `play media`) travel
 * byte-exact; joining the message as a JS string is what corrupts them in the npm client.
 *
 * Decoding is strict about syntax (integers without leading zeros, byte-string lengths inside the
 * buffer, no trailing bytes) and lenient about dictionary key order: rtpengine does not sort the
 * keys of its replies, although the bencode specification requires it. Every malformed input
 * ends in a WhisperlineError with code 'RTPENGINE_PROTOCOL'; nothing loops or overflows the stack.
 */
import { WhisperlineError } from '../../errors.js';

/** What `encodeBencode` accepts. `undefined` dictionary values are skipped (optional ng keys). */
export type BencodeInput =
  | string
  | number
  | boolean
  | Uint8Array
  | readonly BencodeInput[]
  | { readonly [key: string]: BencodeInput | undefined };

/** What `decodeBencode` returns. Byte strings are `string` unless kept binary (see options). */
export type BencodeValue = string | number | Buffer | BencodeValue[] | BencodeDict;
export interface BencodeDict {
  [key: string]: BencodeValue;
}

export interface BencodeDecodeOptions {
  /**
   * How byte strings come back. 'utf8' (default) decodes them as UTF-8 text, which is what every
   * ng value is except binary blobs; 'buffer' returns every byte string as a Buffer.
   */
  readonly bytes?: 'utf8' | 'buffer';
  /** Dictionary keys whose byte-string values stay Buffers even when `bytes` is 'utf8'. */
  readonly binaryKeys?: ReadonlySet<string>;
}

/** Deeper nesting than this is refused: ng messages are a few levels deep, and recursion is bounded. */
export const MAX_BENCODE_DEPTH = 64;

function protocolError(message: string): WhisperlineError {
  return new WhisperlineError('RTPENGINE_PROTOCOL', message);
}

// ---------------------------------------------------------------------------------------------
// encode

/**
 * Encodes `value` as bencode.
 * - strings are written as their UTF-8 bytes, Buffers/Uint8Arrays byte-exact;
 * - numbers must be safe integers (bencode has no floats);
 * - booleans become the strings 'yes'/'no', the spelling rtpengine uses for on/off keys;
 * - dictionary keys are sorted by their raw bytes, as bencode requires; `undefined` values are left out.
 * Throws 'RTPENGINE_PROTOCOL' for anything else (null, floats, cycles, functions…).
 */
export function encodeBencode(value: BencodeInput): Buffer {
  const chunks: Buffer[] = [];
  encodeInto(value, chunks, 0);
  return Buffer.concat(chunks);
}

function encodeInto(value: unknown, chunks: Buffer[], depth: number): void {
  if (depth > MAX_BENCODE_DEPTH) {
    throw protocolError(`bencode: nesting deeper than ${MAX_BENCODE_DEPTH} (cyclic value?)`);
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    chunks.push(Buffer.from(`${bytes.length}:`, 'ascii'), bytes);
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw protocolError(`bencode: only safe integers can be encoded, got ${String(value)}`);
    }
    chunks.push(Buffer.from(`i${value}e`, 'ascii'));
  } else if (typeof value === 'boolean') {
    encodeInto(value ? 'yes' : 'no', chunks, depth);
  } else if (value instanceof Uint8Array) {
    chunks.push(Buffer.from(`${value.length}:`, 'ascii'), Buffer.from(value.buffer, value.byteOffset, value.length));
  } else if (Array.isArray(value)) {
    chunks.push(Buffer.from('l', 'ascii'));
    for (const item of value) encodeInto(item, chunks, depth + 1);
    chunks.push(Buffer.from('e', 'ascii'));
  } else if (isPlainObject(value)) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [Buffer.from(k, 'utf8'), v] as const)
      .sort(([a], [b]) => Buffer.compare(a, b));
    chunks.push(Buffer.from('d', 'ascii'));
    for (const [key, item] of entries) {
      chunks.push(Buffer.from(`${key.length}:`, 'ascii'), key);
      encodeInto(item, chunks, depth + 1);
    }
    chunks.push(Buffer.from('e', 'ascii'));
  } else {
    throw protocolError(`bencode: cannot encode a value of type ${value === null ? 'null' : typeof value}`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------------------------------------
// decode

const CH_D = 0x64; // 'd'
const CH_E = 0x65; // 'e'
const CH_I = 0x69; // 'i'
const CH_L = 0x6c; // 'l'
const CH_COLON = 0x3a; // ':'
const CH_0 = 0x30;
const CH_9 = 0x39;

/**
 * Decodes one complete bencoded value that must fill `input` exactly.
 * Integers outside the safe integer range are refused rather than silently rounded.
 */
export function decodeBencode(input: Uint8Array, options: BencodeDecodeOptions = {}): BencodeValue {
  const decoder = new Decoder(Buffer.from(input.buffer, input.byteOffset, input.length), options);
  const value = decoder.value(0, false);
  if (decoder.pos !== decoder.buf.length) {
    throw protocolError(`bencode: ${decoder.buf.length - decoder.pos} trailing bytes after the value`);
  }
  return value;
}

class Decoder {
  pos = 0;

  constructor(
    readonly buf: Buffer,
    private readonly options: BencodeDecodeOptions,
  ) {}

  value(depth: number, binary: boolean): BencodeValue {
    if (depth > MAX_BENCODE_DEPTH) throw protocolError(`bencode: nesting deeper than ${MAX_BENCODE_DEPTH}`);
    const c = this.peek();
    if (c === CH_I) return this.integer();
    if (c === CH_L) return this.list(depth, binary);
    if (c === CH_D) return this.dict(depth);
    if (c >= CH_0 && c <= CH_9) {
      const bytes = this.byteString();
      return binary || this.options.bytes === 'buffer' ? Buffer.from(bytes) : bytes.toString('utf8');
    }
    throw protocolError(`bencode: unexpected byte 0x${c.toString(16).padStart(2, '0')} at offset ${this.pos}`);
  }

  private peek(): number {
    const c = this.buf[this.pos];
    if (c === undefined) throw protocolError(`bencode: truncated input at offset ${this.pos}`);
    return c;
  }

  private integer(): number {
    const start = ++this.pos; // skip 'i'
    const end = this.buf.indexOf(CH_E, start);
    if (end < 0) throw protocolError(`bencode: unterminated integer at offset ${start - 1}`);
    const text = this.buf.toString('latin1', start, end);
    // i0e, i-5e; not i-0e, i05e, ie, i+5e
    if (!/^(0|-?[1-9][0-9]*)$/.test(text)) {
      throw protocolError(`bencode: malformed integer ${JSON.stringify(text)} at offset ${start - 1}`);
    }
    const n = Number(text);
    if (!Number.isSafeInteger(n)) throw protocolError(`bencode: integer ${text} is outside the safe range`);
    this.pos = end + 1;
    return n;
  }

  /** A byte string as a view into the input; callers copy or decode it. */
  private byteString(): Buffer {
    const start = this.pos;
    const colon = this.buf.indexOf(CH_COLON, start);
    if (colon < 0) throw protocolError(`bencode: byte string without ':' at offset ${start}`);
    const text = this.buf.toString('latin1', start, colon);
    if (!/^(0|[1-9][0-9]*)$/.test(text)) {
      throw protocolError(`bencode: malformed byte-string length ${JSON.stringify(text.slice(0, 20))} at offset ${start}`);
    }
    const length = Number(text);
    const dataStart = colon + 1;
    if (!Number.isSafeInteger(length) || dataStart + length > this.buf.length) {
      throw protocolError(`bencode: byte string of ${text} bytes at offset ${start} runs past the end of the input`);
    }
    this.pos = dataStart + length;
    return this.buf.subarray(dataStart, dataStart + length);
  }

  private list(depth: number, binary: boolean): BencodeValue[] {
    this.pos++; // skip 'l'
    const items: BencodeValue[] = [];
    while (this.peek() !== CH_E) items.push(this.value(depth + 1, binary));
    this.pos++;
    return items;
  }

  private dict(depth: number): BencodeDict {
    this.pos++; // skip 'd'
    const dict: BencodeDict = {};
    while (this.peek() !== CH_E) {
      const c = this.peek();
      if (c < CH_0 || c > CH_9) throw protocolError(`bencode: dictionary key is not a byte string at offset ${this.pos}`);
      const key = this.byteString().toString('utf8');
      const binary = this.options.binaryKeys?.has(key) ?? false;
      // defineProperty: a key named "__proto__" must become data, not replace the prototype.
      Object.defineProperty(dict, key, {
        value: this.value(depth + 1, binary),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    this.pos++;
    return dict;
  }
}

/** Narrowing helper for decoded values: a dictionary (not a list, not a Buffer). */
export function isBencodeDict(value: BencodeValue | undefined): value is BencodeDict {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}
