/**
 * Byte streams of 16-bit PCM, as HTTP speech servers send them, turned into sample chunks. The
 * network cuts a body wherever it likes: a sample (or a WAV header) may straddle two pieces, so
 * each decoder keeps what it could not use yet and carries it into the next piece.
 */
import { WhisperlineError } from '../errors.js';

/** Samples handed out per chunk at most: about 90 ms at 22 050 Hz, as espeak-ng's provider does. */
export const MAX_CHUNK_SAMPLES = 2048;
/** A WAV header longer than this (chunks before `data`) is not what a speech server writes. */
const MAX_WAV_HEADER_BYTES = 64 * 1024;

export type ByteOrder = 'little' | 'big';

/** Raw s16 mono PCM: the samples of each piece, an odd trailing byte carried into the next. */
export class Pcm16Decoder {
  private carry: Uint8Array | undefined;

  constructor(private readonly order: ByteOrder = 'little') {}

  push(piece: Uint8Array): Int16Array {
    const bytes = this.carry ? concat(this.carry, piece) : piece;
    const whole = bytes.length - (bytes.length % 2);
    this.carry = whole < bytes.length ? bytes.slice(whole) : undefined;
    const view = new DataView(bytes.buffer, bytes.byteOffset, whole);
    const out = new Int16Array(whole >> 1);
    const little = this.order === 'little';
    for (let i = 0; i < out.length; i++) out[i] = view.getInt16(i * 2, little);
    return out;
  }

  /** Bytes that did not make a whole sample (a truncated body). */
  get leftover(): number {
    return this.carry?.length ?? 0;
  }
}

/**
 * A WAV stream: the header is read as it arrives (any chunks before `data`, e.g. LIST), then the
 * PCM. A streamed WAV cannot know its length up front, so servers write 0 or 0xFFFFFFFF (espeak-ng
 * 0x7FFFF000) as the data size: those sizes mean "until the body ends"; an exact size is honoured
 * and anything after it (a trailing chunk) is not audio. 16-bit PCM only; several channels are
 * mixed down to mono.
 */
export class WavDecoder {
  private header: Uint8Array | undefined = new Uint8Array(0);
  private remaining = Infinity;
  private channels = 1;
  private carry: Uint8Array | undefined;
  rate: number | undefined;

  constructor(private readonly what: string) {}

  push(piece: Uint8Array): Int16Array {
    let bytes = piece;
    if (this.header !== undefined) {
      this.header = concat(this.header, bytes);
      const start = this.parseHeader(this.header);
      if (start === undefined) {
        if (this.header.length > MAX_WAV_HEADER_BYTES) throw this.invalid(`no data chunk in its first ${MAX_WAV_HEADER_BYTES} bytes`);
        return new Int16Array(0);
      }
      bytes = this.header.subarray(start);
      this.header = undefined;
    }
    if (this.remaining !== Infinity) {
      bytes = bytes.subarray(0, Math.max(0, Math.min(bytes.length, this.remaining)));
      this.remaining -= bytes.length;
    }
    if (this.carry) bytes = concat(this.carry, bytes);
    const frame = 2 * this.channels;
    const whole = bytes.length - (bytes.length % frame);
    this.carry = whole < bytes.length ? bytes.slice(whole) : undefined;
    const view = new DataView(bytes.buffer, bytes.byteOffset, whole);
    const out = new Int16Array(whole / frame);
    for (let i = 0; i < out.length; i++) {
      let sum = 0;
      for (let c = 0; c < this.channels; c++) sum += view.getInt16(i * frame + c * 2, true);
      out[i] = Math.round(sum / this.channels);
    }
    return out;
  }

  /** The header was read (the body reached its `data` chunk). */
  get started(): boolean {
    return this.header === undefined;
  }

  /** The offset of the PCM in `h` once the header up to `data` is there; undefined while it is not. */
  private parseHeader(h: Uint8Array): number | undefined {
    if (h.length < 12) return undefined;
    const view = new DataView(h.buffer, h.byteOffset, h.length);
    const tag = (at: number): string => String.fromCharCode(h[at]!, h[at + 1]!, h[at + 2]!, h[at + 3]!);
    if (tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw this.invalid('not a RIFF/WAVE stream');
    let at = 12;
    let sawFormat = false;
    while (at + 8 <= h.length) {
      const id = tag(at);
      const size = view.getUint32(at + 4, true);
      if (id === 'data') {
        if (!sawFormat) throw this.invalid('its data chunk comes before the fmt chunk');
        // 0 and 0xFFFFFFFF are what streaming writers put there; 0x7FFFF000 is espeak-ng's.
        this.remaining = size === 0 || size >= 0x7fff0000 ? Infinity : size;
        return at + 8;
      }
      // Chunks are padded to an even length.
      const next = at + 8 + size + (size % 2);
      if (id === 'fmt ') {
        if (at + 8 + 16 > h.length) return undefined;
        const format = view.getUint16(at + 8, true);
        const channels = view.getUint16(at + 10, true);
        const rate = view.getUint32(at + 12, true);
        const bits = view.getUint16(at + 22, true);
        // 0xFFFE is WAVE_FORMAT_EXTENSIBLE, which ffmpeg writes; its sub-format is PCM for s16.
        if ((format !== 1 && format !== 0xfffe) || bits !== 16) throw this.invalid(`format ${format} with ${bits}-bit samples, not 16-bit PCM`);
        if (channels < 1 || channels > 8) throw this.invalid(`${channels} channels`);
        if (rate < 4000 || rate > 192_000) throw this.invalid(`a sample rate of ${rate} Hz`);
        this.channels = channels;
        this.rate = rate;
        sawFormat = true;
      }
      at = next;
    }
    return undefined;
  }

  private invalid(why: string): WhisperlineError {
    return new WhisperlineError('TTS_FAILED', `${this.what} sent a WAV stream it cannot use: ${why}`);
  }
}

/** `samples` in chunks of at most MAX_CHUNK_SAMPLES (views, no copies). */
export function* split(samples: Int16Array, max = MAX_CHUNK_SAMPLES): Generator<Int16Array> {
  for (let at = 0; at < samples.length; at += max) yield samples.subarray(at, Math.min(samples.length, at + max));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
