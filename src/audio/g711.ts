/**
 * ITU-T G.711 µ-law (PCMU) and A-law (PCMA), bit-exact with the ITU-T G.191 reference
 * implementation (which Sun's g711.c and sox's tables agree with).
 *
 * Decoding is one table lookup per byte; the tables are built once at module load from the
 * reference expansion formulas rather than pasted as literals, so they can be audited against the
 * standard. Encoding (only needed by test endpoints that generate RTP) uses the reference
 * compression formulas directly.
 */

/** µ-law code → 16-bit linear sample (range ±32124). */
export const ULAW_TO_LINEAR: Int16Array = buildUlawTable();
/** A-law code → 16-bit linear sample (range ±32256). */
export const ALAW_TO_LINEAR: Int16Array = buildAlawTable();

/** The code µ-law encoding gives 0 (0x7F, "negative zero", also decodes to 0 but is never produced). */
export const ULAW_SILENCE = 0xff;
/** The code A-law encoding gives 0 (the smallest positive step, decodes to +8). */
export const ALAW_SILENCE = 0xd5;

function buildUlawTable(): Int16Array {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) {
    // G.191 ulaw_expand: codes are stored inverted; the segment sets the step size and the
    // mantissa the position inside the segment, reconstructing at the middle of the step.
    const inverted = ~code & 0xff;
    const exponent = (inverted >> 4) & 0x07;
    const mantissa = inverted & 0x0f;
    const step = 4 << (exponent + 1);
    const magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    table[code] = code < 0x80 ? -magnitude : magnitude;
  }
  return table;
}

function buildAlawTable(): Int16Array {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) {
    // G.191 alaw_expand: even bits are inverted on the wire (XOR 0x55) to keep line density up.
    const folded = (code ^ 0x55) & 0x7f;
    const exponent = folded >> 4;
    let mantissa = folded & 0x0f;
    if (exponent > 0) mantissa += 16;
    mantissa = (mantissa << 4) + 8;
    if (exponent > 1) mantissa <<= exponent - 1;
    table[code] = code > 0x7f ? mantissa : -mantissa;
  }
  return table;
}

function checkedOut(out: Int16Array | undefined, length: number): Int16Array {
  if (out === undefined) return new Int16Array(length);
  if (out.length < length) {
    throw new RangeError(`output buffer holds ${out.length} samples, payload needs ${length}`);
  }
  return out;
}

/**
 * Expands a PCMU payload. Writes into `out` when given (must hold `payload.length` samples) and
 * returns the written view, so a per-stream scratch buffer avoids an allocation per packet.
 */
export function decodeUlaw(payload: Uint8Array, out?: Int16Array): Int16Array {
  const length = payload.length;
  const pcm = checkedOut(out, length);
  for (let i = 0; i < length; i++) pcm[i] = ULAW_TO_LINEAR[payload[i]!]!;
  return pcm.length === length ? pcm : pcm.subarray(0, length);
}

/** Expands a PCMA payload; see {@link decodeUlaw} for `out`. */
export function decodeAlaw(payload: Uint8Array, out?: Int16Array): Int16Array {
  const length = payload.length;
  const pcm = checkedOut(out, length);
  for (let i = 0; i < length; i++) pcm[i] = ALAW_TO_LINEAR[payload[i]!]!;
  return pcm.length === length ? pcm : pcm.subarray(0, length);
}

/**
 * Compresses one 16-bit sample to µ-law (G.191 ulaw_compress). Negative samples use the one's
 * complement, so -1 falls in the same step as 0 — that is what the reference does, and what keeps
 * encode(decode(code)) === code.
 */
export function encodeUlaw(sample: number): number {
  const s = clampInt16(sample);
  let magnitude = (s < 0 ? ~s >> 2 : s >> 2) + 33;
  if (magnitude > 0x1fff) magnitude = 0x1fff;
  let segment = 1;
  for (let i = magnitude >> 6; i !== 0; i >>= 1) segment++;
  const highNibble = 0x08 - segment;
  const lowNibble = 0x0f - ((magnitude >> segment) & 0x0f);
  const code = (highNibble << 4) | lowNibble;
  return s >= 0 ? code | 0x80 : code;
}

/** Compresses one 16-bit sample to A-law (G.191 alaw_compress). */
export function encodeAlaw(sample: number): number {
  const s = clampInt16(sample);
  let ix = s < 0 ? ~s >> 4 : s >> 4;
  if (ix > 15) {
    let exponent = 1;
    while (ix > 16 + 15) {
      ix >>= 1;
      exponent++;
    }
    ix -= 16;
    ix += exponent << 4;
  }
  if (s >= 0) ix |= 0x80;
  return ix ^ 0x55;
}

/** Compresses a block of samples to a PCMU payload. */
export function encodeUlawBuffer(pcm: Int16Array, out?: Uint8Array): Uint8Array {
  const payload = out ?? new Uint8Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) payload[i] = encodeUlaw(pcm[i]!);
  return payload;
}

/** Compresses a block of samples to a PCMA payload. */
export function encodeAlawBuffer(pcm: Int16Array, out?: Uint8Array): Uint8Array {
  const payload = out ?? new Uint8Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) payload[i] = encodeAlaw(pcm[i]!);
  return payload;
}

function clampInt16(sample: number): number {
  const s = Math.trunc(sample);
  return s > 32767 ? 32767 : s < -32768 ? -32768 : s;
}
