import type { CodecName, AudioDecoder } from './codec.js';
import { createDecoder } from './decoder.js';
import { SAMPLE_RATE, type AudioFrame } from './frame.js';
import { Framer } from './framer.js';

/** The RTP facts the audio stage needs about one packet's format (a structural subset of media's). */
export interface AudioFormat {
  readonly codec: CodecName;
  readonly clockRate: number;
  readonly channels: number;
}

export interface PartyAudioOptions {
  /** Gaps up to this long are filled (concealment, comfort noise); longer ones move the clock. */
  readonly maxGapFillMs?: number;
  /** Returns the call-clock time (ms) of a wall-clock arrival time (performance.now() ms). */
  readonly callClock: (arrivalMs: number) => number;
}

const DEFAULT_MAX_GAP_FILL_MS = 1000;

/**
 * Turns one party's ordered RTP payloads into 20 ms 16 kHz `AudioFrame`s on the call clock.
 * Timestamps drive the clock: a gap in RTP time becomes concealment (after loss) or comfort
 * noise / silence (after silence suppression), so frames stay contiguous.
 */
export class PartyAudio {
  private framer: Framer | undefined;
  private decoder: AudioDecoder | undefined;
  /** The format `decoder` was made for (compared field by field: this runs for every packet). */
  private decoderFormat: AudioFormat | undefined;
  /** RTP timestamp expected for the next packet of the current SSRC. */
  private nextTs: number | undefined;
  private lastPacketSamples = 320;
  private noiseRms = 0;
  private noiseSeed = 0x1234567;
  private streamStartArrival: number | undefined;
  private readonly maxGapFillSamples: number;
  framesOut = 0;
  concealedSamples = 0;
  filledSamples = 0;
  clockJumps = 0;

  constructor(
    readonly party: string,
    private readonly onFrame: (frame: AudioFrame) => void,
    private readonly options: PartyAudioOptions,
  ) {
    this.maxGapFillSamples = ((options.maxGapFillMs ?? DEFAULT_MAX_GAP_FILL_MS) * SAMPLE_RATE) / 1000;
  }

  audio(format: AudioFormat, timestamp: number, payload: Uint8Array, lostBefore: number, arrivalMs: number): void {
    const framer = this.framerAt(arrivalMs);
    const decoder = this.decoderFor(format);
    if (this.nextTs !== undefined) {
      const gapTicks = (timestamp - this.nextTs) | 0;
      if (gapTicks > 0) this.fillGap(framer, decoder, Math.round((gapTicks * SAMPLE_RATE) / format.clockRate), lostBefore);
    } else if (this.streamStartArrival !== undefined) {
      // First packet of a new SSRC: continue the clock, unless the stream really paused.
      this.alignToArrival(framer, arrivalMs);
    }
    this.streamStartArrival = undefined;
    const samples = decoder.decode(payload);
    if (samples.length > 0) this.lastPacketSamples = samples.length;
    framer.write(samples);
    this.nextTs = (timestamp + Math.round((samples.length * format.clockRate) / SAMPLE_RATE)) >>> 0;
    this.noiseRms = 0;
  }

  comfortNoise(levelDbov: number): void {
    // -127 dBov is digital silence; otherwise white noise at the signalled level.
    this.noiseRms = levelDbov >= 127 ? 0 : 32768 * 10 ** (-levelDbov / 20);
  }

  streamChange(_ssrc: number, arrivalMs: number): void {
    this.nextTs = undefined;
    this.streamStartArrival = arrivalMs;
    this.closeDecoder();
  }

  /** The party's media ended: the partial frame is completed and emitted. */
  end(): void {
    this.framer?.end();
    this.closeDecoder();
  }

  private framerAt(arrivalMs: number): Framer {
    if (!this.framer) {
      this.framer = new Framer(this.party, Math.max(0, Math.round(this.options.callClock(arrivalMs))), (f) => {
        this.framesOut++;
        this.onFrame(f);
      });
    }
    return this.framer;
  }

  private decoderFor(format: AudioFormat): AudioDecoder {
    const made = this.decoderFormat;
    if (this.decoder && made && made.codec === format.codec && made.clockRate === format.clockRate && made.channels === format.channels) {
      return this.decoder;
    }
    this.closeDecoder();
    const decoder = createDecoder(format.codec, format.clockRate, format.channels);
    this.decoder = decoder;
    this.decoderFormat = format;
    return decoder;
  }

  private closeDecoder(): void {
    this.decoder?.close();
    this.decoder = undefined;
    this.decoderFormat = undefined;
  }

  private fillGap(framer: Framer, decoder: AudioDecoder, samples: number, lostBefore: number): void {
    if (samples > this.maxGapFillSamples) {
      this.clockJumps++;
      framer.jumpTo(framer.clockMs + (samples * 1000) / SAMPLE_RATE);
      return;
    }
    // Lost packets get the codec's concealment; the rest of the gap was silence at the sender.
    let concealed = Math.min(samples, lostBefore * this.lastPacketSamples);
    this.concealedSamples += concealed;
    while (concealed > 0) {
      const n = Math.min(concealed, this.lastPacketSamples);
      framer.write(decoder.conceal(n));
      concealed -= n;
    }
    const rest = samples - Math.min(samples, lostBefore * this.lastPacketSamples);
    if (rest > 0) {
      this.filledSamples += rest;
      this.writeSilence(framer, rest);
    }
  }

  private alignToArrival(framer: Framer, arrivalMs: number): void {
    const behindMs = this.options.callClock(arrivalMs) - framer.clockMs;
    // Small differences are network and reorder latency, not a pause.
    if (behindMs <= 100) return;
    const samples = Math.round((behindMs * SAMPLE_RATE) / 1000);
    if (samples > this.maxGapFillSamples) {
      this.clockJumps++;
      framer.jumpTo(framer.clockMs + behindMs);
    } else {
      this.filledSamples += samples;
      this.writeSilence(framer, samples);
    }
  }

  private writeSilence(framer: Framer, samples: number): void {
    const rms = this.noiseRms;
    if (rms === 0) {
      framer.writeGenerated(samples, (out, from, to) => out.fill(0, from, to));
      return;
    }
    // Uniform noise in [-a, a] has RMS a/sqrt(3).
    const a = rms * Math.sqrt(3);
    framer.writeGenerated(samples, (out, from, to) => {
      let seed = this.noiseSeed;
      for (let i = from; i < to; i++) {
        seed = (Math.imul(seed, 1664525) + 1013904223) | 0;
        out[i] = Math.round((seed / 2147483648) * a);
      }
      this.noiseSeed = seed;
    });
  }
}
