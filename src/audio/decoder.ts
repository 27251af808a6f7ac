/**
 * Per-stream decoders behind the `AudioDecoder` interface: RTP payload in, 16 kHz mono Int16 out.
 */
import { WhisperlineError } from '../errors.js';
import type { AudioDecoder, CodecName } from './codec.js';
import { SAMPLE_RATE } from './frame.js';
import { ALAW_TO_LINEAR, ULAW_TO_LINEAR } from './g711.js';
import { OpusStreamDecoder } from './opus.js';
import { Resampler } from './resampler.js';

/** RFC 7587: Opus is always signalled at 48000 in SDP, whatever rate the sender codes at. */
const OPUS_RTP_CLOCK_RATE = 48_000;
const G711_CLOCK_RATE = 8_000;

/**
 * Creates the decoder for one stream. Throws CODEC_UNSUPPORTED for combinations we cannot decode
 * (G.711 at a clock rate other than 8000, Opus not at 48000, more than 2 channels).
 */
export function createDecoder(codec: CodecName, clockRate: number, channels = 1): AudioDecoder {
  switch (codec) {
    case 'PCMU':
    case 'PCMA':
      if (clockRate !== G711_CLOCK_RATE || channels !== 1) {
        throw new WhisperlineError('CODEC_UNSUPPORTED', `${codec}/${clockRate}/${channels} is not supported (only ${codec}/8000 mono)`);
      }
      return new G711Decoder(codec);
    case 'opus':
      if (clockRate !== OPUS_RTP_CLOCK_RATE || (channels !== 1 && channels !== 2)) {
        throw new WhisperlineError('CODEC_UNSUPPORTED', `opus/${clockRate}/${channels} is not supported (opus/48000 with 1 or 2 channels)`);
      }
      return new OpusDecoder();
    default: {
      const unknown: never = codec;
      throw new WhisperlineError('CODEC_UNSUPPORTED', `codec ${String(unknown)} is not supported`);
    }
  }
}

/** G.711 table expansion, then 8 kHz → 16 kHz through the stream's own resampler state. */
export class G711Decoder implements AudioDecoder {
  readonly clockRate = G711_CLOCK_RATE;
  private readonly table: Int16Array;
  private readonly resampler = new Resampler(G711_CLOCK_RATE, SAMPLE_RATE);
  /** Narrowband scratch, reused across packets (grown for unusually long ones). */
  private narrowband = new Int16Array(160);
  /** 16 kHz output, reused across packets. */
  private wideband = new Int16Array(320);
  private closed = false;

  constructor(readonly codec: 'PCMU' | 'PCMA') {
    this.table = codec === 'PCMU' ? ULAW_TO_LINEAR : ALAW_TO_LINEAR;
  }

  decode(payload: Uint8Array): Int16Array {
    this.checkOpen();
    const direct = this.resampler.processG711(payload, this.codec);
    if (direct !== undefined) return direct;
    const narrowband = this.scratch(payload.length);
    const table = this.table;
    for (let i = 0; i < payload.length; i++) narrowband[i] = table[payload[i]!]!;
    // Decoded into a reused buffer: this runs for every packet of every leg (see AudioDecoder).
    const needed = this.resampler.outputLength(narrowband.length);
    if (this.wideband.length < needed) this.wideband = new Int16Array(needed);
    const written = this.resampler.processInto(narrowband, this.wideband);
    return this.wideband.subarray(0, written);
  }

  /**
   * G.711 has no PLC of its own: the gap is silence, but it goes through the resampler so the
   * filter rings down from the last real samples instead of stepping to zero.
   */
  conceal(samples16k: number): Int16Array {
    this.checkOpen();
    // Two output samples per input sample, always (see Resampler's half-band path).
    const inputSamples = Math.ceil(Math.max(0, samples16k) / 2);
    const narrowband = this.scratch(inputSamples);
    narrowband.fill(0);
    const out = this.resampler.process(narrowband);
    // An odd request: the surplus sample is dropped (it would be the filter's ring-down, ≈ 0).
    return out.length === samples16k ? out : out.subarray(0, Math.max(0, samples16k));
  }

  close(): void {
    this.closed = true;
  }

  private scratch(length: number): Int16Array {
    if (this.narrowband.length < length) this.narrowband = new Int16Array(length);
    return this.narrowband.length === length ? this.narrowband : this.narrowband.subarray(0, length);
  }

  private checkOpen(): void {
    if (this.closed) throw new WhisperlineError('AUDIO_INVALID', `${this.codec} decoder used after close()`);
  }
}

/** Opus at 16 kHz (libopus downmixes stereo senders to our mono decoder). */
export class OpusDecoder implements AudioDecoder {
  readonly codec = 'opus' as const;
  readonly clockRate = OPUS_RTP_CLOCK_RATE;
  private readonly opus = new OpusStreamDecoder(SAMPLE_RATE);

  /** Payloads libopus rejected, each replaced by concealment. */
  get malformedPackets(): number {
    return this.opus.malformedPackets;
  }

  decode(payload: Uint8Array): Int16Array {
    return this.opus.decode(payload);
  }

  conceal(samples16k: number): Int16Array {
    return this.opus.conceal(samples16k);
  }

  close(): void {
    this.opus.close();
  }
}
