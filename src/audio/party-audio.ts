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
  /** Gaps in RTP time up to this long are filled (concealment, comfort noise); longer ones move the clock. */
  readonly maxGapFillMs?: number;
  /**
   * Returns the call-clock time (ms) of a wall-clock arrival time (performance.now() ms): the
   * wall clock less a fixed zero, so it runs at the wall clock's rate (`advance` relies on it).
   */
  readonly callClock: (arrivalMs: number) => number;
}

const DEFAULT_MAX_GAP_FILL_MS = 1000;
/** Codec concealment continues a stream this long after its last audio; beyond it, silence. */
const CONCEAL_MS = 60;
/**
 * A packet whose RTP time and arrival time disagree by more than this (a sender that restarted
 * its timestamps, a clock that drifted) is placed by its arrival instead: the call clock wins.
 */
const RESYNC_MS = 1500;
const SAMPLES_PER_MS = SAMPLE_RATE / 1000;

/**
 * Turns one party's ordered RTP payloads into 20 ms 16 kHz `AudioFrame`s on the call clock.
 *
 * Each packet is placed by its RTP timestamp (in its own codec's clock rate) on the call clock,
 * anchored to the arrival of the stream's first packet: a gap in RTP time becomes concealment
 * (after loss) or comfort noise / silence (after silence suppression), so frames stay contiguous.
 *
 * `advance(due)` is the playout clock: whatever the party has not sent up to `due` is filled now
 * (concealment for a short loss, then silence or the comfort-noise level), so frames keep coming
 * in real time while the party sends nothing (DTX, a phone's VAD, hold). Audio that arrives for a
 * place already filled is late: it is not written twice, and `audio()` says so.
 */
export class PartyAudio {
  private framer: Framer | undefined;
  private decoder: AudioDecoder | undefined;
  /** The format `decoder` was made for (compared field by field: this runs for every packet). */
  private decoderFormat: AudioFormat | undefined;
  /** Where RTP time meets the call clock for the current stream: this timestamp (at this rate) is at `atMs`. */
  private anchor: { ts: number; rate: number; atMs: number } | undefined;
  private lastPacketSamples = 320;
  /** Call-clock end of the last decoded audio (for concealment after it). */
  private lastAudioEndMs = -Infinity;
  private noiseRms = 0;
  private noiseSeed = 0x1234567;
  private readonly maxGapFillSamples: number;
  framesOut = 0;
  concealedSamples = 0;
  filledSamples = 0;
  clockJumps = 0;
  /** Samples of packets that came after their place had been filled (dropped). */
  lateSamples = 0;

  constructor(
    readonly party: string,
    private readonly onFrame: (frame: AudioFrame) => void,
    private readonly options: PartyAudioOptions,
  ) {
    this.maxGapFillSamples = ((options.maxGapFillMs ?? DEFAULT_MAX_GAP_FILL_MS) * SAMPLE_RATE) / 1000;
  }

  /**
   * One packet's payload, in order. Returns false when it came too late: its place on the call
   * clock had already been filled, and nothing of it was used.
   */
  audio(format: AudioFormat, timestamp: number, payload: Uint8Array, lostBefore: number, arrivalMs: number): boolean {
    const arrivalAt = this.options.callClock(arrivalMs);
    const framer = this.framerAt(arrivalAt);
    const decoder = this.decoderFor(format);
    let at = this.placeOf(timestamp, format.clockRate, arrivalAt, framer);
    // Decoded even when late, so a stateful codec (Opus) stays in step with the stream.
    let samples = decoder.decode(payload);
    const behindMs = framer.clockMs - at;
    if (behindMs > 0.5 / SAMPLES_PER_MS) {
      const skip = Math.round(behindMs * SAMPLES_PER_MS);
      if (skip >= samples.length) {
        this.lateSamples += samples.length;
        return false;
      }
      this.lateSamples += skip;
      samples = samples.subarray(skip);
      at = framer.clockMs;
    } else if (at > framer.clockMs) {
      this.fillGap(framer, decoder, Math.round((at - framer.clockMs) * SAMPLES_PER_MS), lostBefore);
    }
    if (samples.length > 0) this.lastPacketSamples = samples.length;
    framer.write(samples);
    this.lastAudioEndMs = framer.clockMs;
    this.noiseRms = 0;
    return true;
  }

  /**
   * The playout clock: everything the party has not sent up to the wall-clock time `dueArrivalMs`
   * is filled now. Does nothing before the party's first packet. Returns the earliest due time at
   * which it could fill anything again if no audio came meanwhile (undefined before the first
   * packet): the call clock runs at the wall clock's rate, so that is 1 ms past the audio written.
   */
  advance(dueArrivalMs: number): number | undefined {
    const framer = this.framer;
    if (!framer) return undefined;
    const missingMs = this.options.callClock(dueArrivalMs) - framer.clockMs;
    if (missingMs < 1) return dueArrivalMs + 1 - missingMs;
    let samples = Math.round(missingMs * SAMPLES_PER_MS);
    const decoder = this.decoder;
    // Right after audio, a missing packet is a loss to conceal; later it is the sender's silence.
    const concealMs = decoder ? Math.max(0, this.lastAudioEndMs + CONCEAL_MS - framer.clockMs) : 0;
    let conceal = Math.min(samples, Math.round(concealMs * SAMPLES_PER_MS));
    samples -= conceal;
    this.concealedSamples += conceal;
    while (conceal > 0 && decoder) {
      const n = Math.min(conceal, this.lastPacketSamples);
      framer.write(decoder.conceal(n));
      conceal -= n;
    }
    if (samples > 0) {
      this.filledSamples += samples;
      this.writeSilence(framer, samples);
    }
    return dueArrivalMs + 1 - (this.options.callClock(dueArrivalMs) - framer.clockMs);
  }

  comfortNoise(levelDbov: number): void {
    // -127 dBov is digital silence; otherwise white noise at the signalled level.
    this.noiseRms = levelDbov >= 127 ? 0 : 32768 * 10 ** (-levelDbov / 20);
  }

  /** A new SSRC: its timestamps start afresh, so it is placed by its first packet's arrival. */
  streamChange(_ssrc: number, _arrivalMs: number): void {
    this.anchor = undefined;
    this.closeDecoder();
  }

  /** The party's media ended: the partial frame is completed and emitted. */
  end(): void {
    this.framer?.end();
    this.closeDecoder();
  }

  /**
   * Where a packet goes on the call clock. A stream's first packet (and the first after a
   * change of clock rate: a payload-type switch between codecs) anchors RTP time to the call
   * clock at its arrival, never before what has been emitted; later ones follow their timestamps.
   */
  private placeOf(timestamp: number, rate: number, arrivalAt: number, framer: Framer): number {
    const a = this.anchor;
    if (a && a.rate === rate) {
      const at = a.atMs + (((timestamp - a.ts) | 0) * 1000) / rate;
      if (Math.abs(at - arrivalAt) <= RESYNC_MS) return at;
      this.clockJumps++;
    }
    // A codec switch continues where the previous codec's audio ended.
    const atMs = a && a.rate !== rate ? framer.clockMs : Math.max(framer.clockMs, arrivalAt);
    this.anchor = { ts: timestamp, rate, atMs };
    return atMs;
  }

  private framerAt(arrivalAt: number): Framer {
    if (!this.framer) {
      this.framer = new Framer(this.party, Math.max(0, Math.round(arrivalAt)), (f) => {
        this.framesOut++;
        this.onFrame(f);
      });
    }
    return this.framer;
  }

  private decoderFor(format: AudioFormat): AudioDecoder {
    const made = this.decoderFormat;
    if (made === format && this.decoder) return this.decoder;
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
      framer.jumpTo(framer.clockMs + samples / SAMPLES_PER_MS);
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
