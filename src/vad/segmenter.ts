/**
 * Cuts one party's scored windows into utterances.
 *
 * - Hysteresis: speech starts at a window with probability ≥ `threshold`; once in speech, a window
 *   counts as speech while ≥ `negativeThreshold`. The first window below it starts the hang-over;
 *   a window ≥ `threshold` ends the hang-over (between the two thresholds it goes on), as in
 *   silero-vad's own `get_speech_timestamps`.
 * - Speech ends once `hangoverMs` have passed since the end of the last speech window. The
 *   utterance then ends {@link UTTERANCE_TAIL_MS} after that window (a short tail keeps word
 *   endings; the hang-over's silence is not part of it).
 * - Pre-roll: the last `preRollMs` before the first speech window are prepended (never reaching
 *   back into the previous utterance), so `startMs` is the speech start minus the pre-roll.
 * - Speech shorter than `minSpeechMs` (first speech window start to last speech window end) is
 *   dropped without an utterance.
 * - An utterance reaching `maxUtteranceMs` is cut at the quietest 32 ms stretch (lowest RMS) of its
 *   last {@link MAX_CUT_SEARCH_MS}, rather than mid-word; it goes out with reason 'max-length' and the
 *   rest carries on as the next utterance.
 *
 * Memory is bounded: the pre-roll ring and the open utterance buffer (at most maxUtteranceMs plus
 * one window). Times are ms on the call clock; a gap in the windows' times counts as silence.
 */
import { SAMPLE_RATE } from '../audio/frame.js';
import type { VadConfig } from '../config/schema.js';
import type { Utterance } from './utterance.js';

const SAMPLES_PER_MS = SAMPLE_RATE / 1000;
/** Audio kept after the end of the last speech window (ms), bounded by the hang-over. */
export const UTTERANCE_TAIL_MS = 150;
/** How far back from the maximum length the cut point is searched for (ms). */
export const MAX_CUT_SEARCH_MS = 1500;
/** RMS window and hop used to find the quietest cut point (samples: 32 ms, 8 ms). */
const CUT_WINDOW = 512;
const CUT_HOP = 128;
const INITIAL_CAPACITY = 2 * SAMPLE_RATE;

export interface SegmenterWindow {
  readonly startMs: number;
  readonly samples: Int16Array;
  readonly probability: number;
}

export class SpeechSegmenter {
  readonly party: string;
  private readonly threshold: number;
  private readonly negativeThreshold: number;
  private readonly hangoverMs: number;
  private readonly minSpeechMs: number;
  private readonly maxSamples: number;
  private readonly tailMs: number;
  private readonly onUtterance: (u: Utterance) => void;
  private readonly onSpeechStart: ((startMs: number) => void) | undefined;

  /** Ring of the newest audio while idle (pre-roll). */
  private readonly preRoll: Int16Array;
  private preRollWrite = 0;
  private preRollCount = 0;

  /** End of the last window seen (ms); NaN before the first. */
  private lastEndMs = Number.NaN;
  /** End of the last utterance emitted: pre-roll never reaches before it. */
  private lastUtteranceEndMs = Number.NEGATIVE_INFINITY;

  private inSpeech = false;
  /** Open utterance: samples from `bufStartMs`. */
  private buf = new Int16Array(0);
  private bufLength = 0;
  private bufStartMs = 0;
  /** Start of the first speech window of the open utterance. */
  private speechStartMs = 0;
  /** End of the last speech window. */
  private speechEndMs = 0;
  /** In the hang-over (a window fell below negativeThreshold since the last speech window). */
  private silent = false;
  private announced = false;

  constructor(party: string, config: VadConfig, onUtterance: (u: Utterance) => void, onSpeechStart?: (startMs: number) => void) {
    this.party = party;
    this.threshold = config.threshold;
    this.negativeThreshold = config.negativeThreshold;
    this.hangoverMs = config.hangoverMs;
    this.minSpeechMs = config.minSpeechMs;
    this.maxSamples = Math.round(config.maxUtteranceMs * SAMPLES_PER_MS);
    this.tailMs = Math.min(UTTERANCE_TAIL_MS, config.hangoverMs);
    this.preRoll = new Int16Array(Math.round(config.preRollMs * SAMPLES_PER_MS));
    this.onUtterance = onUtterance;
    this.onSpeechStart = onSpeechStart;
  }

  /** Whether an utterance is open (speech started and has not ended yet). */
  get speaking(): boolean {
    return this.inSpeech;
  }

  push(w: SegmenterWindow): void {
    const samples = w.samples;
    const startMs = w.startMs;
    const endMs = startMs + samples.length / SAMPLES_PER_MS;
    if (!Number.isNaN(this.lastEndMs) && startMs > this.lastEndMs + 0.5) this.gap(startMs);
    this.lastEndMs = endMs;

    if (!this.inSpeech) {
      if (w.probability >= this.threshold) {
        this.begin(startMs);
        this.append(samples);
        this.speechEndMs = endMs;
        this.checkAnnounce();
      } else {
        this.addPreRoll(samples);
      }
      return;
    }

    this.append(samples);
    const p = w.probability;
    if (p >= this.threshold || (!this.silent && p >= this.negativeThreshold)) {
      this.silent = false;
      this.speechEndMs = endMs;
      this.checkAnnounce();
    } else {
      if (p < this.negativeThreshold) this.silent = true;
      if (endMs - this.speechEndMs >= this.hangoverMs) {
        this.end('silence');
        return;
      }
    }
    this.checkMaxLength();
  }

  /**
   * The utterance growing now (a copy), once its speech has lasted `minSpeechMs`: for partial
   * transcripts. Undefined while idle.
   */
  openUtterance(): { startMs: number; samples: Int16Array } | undefined {
    if (!this.inSpeech || !this.announced) return undefined;
    return { startMs: this.bufStartMs, samples: this.buf.slice(0, this.bufLength) };
  }

  /** The stream ended: emits the open utterance (reason 'end') if it has enough speech. */
  flush(): void {
    if (this.inSpeech) this.end('end');
    this.preRollCount = 0;
    this.lastEndMs = Number.NaN;
  }

  private gap(nextStartMs: number): void {
    if (this.inSpeech) {
      if (nextStartMs - this.speechEndMs < this.hangoverMs) {
        // A short gap inside speech: silence that keeps the buffer aligned with the clock.
        this.silent = true;
        this.appendSilence(Math.round((nextStartMs - this.lastEndMs) * SAMPLES_PER_MS));
        return;
      }
      this.end('silence');
    }
    // The pre-roll is no longer contiguous with what comes next.
    this.preRollCount = 0;
  }

  private begin(speechStartMs: number): void {
    this.inSpeech = true;
    this.silent = false;
    this.announced = false;
    this.speechStartMs = speechStartMs;
    const available = Math.max(0, Math.floor((speechStartMs - this.lastUtteranceEndMs) * SAMPLES_PER_MS));
    const n = Math.min(this.preRollCount, available);
    this.bufLength = 0;
    this.bufStartMs = speechStartMs - n / SAMPLES_PER_MS;
    // Copy the newest n samples of the pre-roll ring.
    const ring = this.preRoll;
    let from = this.preRollWrite - n;
    if (from < 0) from += ring.length;
    const first = Math.min(n, ring.length - from);
    this.append(ring.subarray(from, from + first));
    if (first < n) this.append(ring.subarray(0, n - first));
    this.preRollCount = 0;
  }

  private checkAnnounce(): void {
    if (this.announced || this.speechEndMs - this.speechStartMs < this.minSpeechMs) return;
    this.announced = true;
    this.onSpeechStart?.(this.speechStartMs);
  }

  private end(reason: Utterance['reason']): void {
    this.inSpeech = false;
    const speechMs = this.speechEndMs - this.speechStartMs;
    if (speechMs >= this.minSpeechMs) {
      const bufEndMs = this.bufStartMs + this.bufLength / SAMPLES_PER_MS;
      const endMs = Math.min(this.speechEndMs + this.tailMs, bufEndMs);
      const n = Math.round((endMs - this.bufStartMs) * SAMPLES_PER_MS);
      this.lastUtteranceEndMs = endMs;
      this.emit(this.bufStartMs, endMs, this.buf.slice(0, n), reason);
    }
    // What followed the end (the hang-over) is the pre-roll of the next start.
    const keepFrom = Math.max(
      0,
      this.bufLength - this.preRoll.length,
      Math.round((this.lastUtteranceEndMs - this.bufStartMs) * SAMPLES_PER_MS),
    );
    this.preRollCount = 0;
    this.preRollWrite = 0;
    if (keepFrom < this.bufLength) this.addPreRoll(this.buf.subarray(keepFrom, this.bufLength));
    this.bufLength = 0;
    this.silent = false;
    this.announced = false;
  }

  private checkMaxLength(): void {
    if (this.bufLength < this.maxSamples) return;
    const cut = this.quietestPoint();
    const cutMs = this.bufStartMs + cut / SAMPLES_PER_MS;
    this.emit(this.bufStartMs, cutMs, this.buf.slice(0, cut), 'max-length');
    this.lastUtteranceEndMs = cutMs;
    // The rest is the start of the next utterance, still in speech.
    this.buf.copyWithin(0, cut, this.bufLength);
    this.bufLength -= cut;
    this.bufStartMs = cutMs;
    if (this.speechStartMs < cutMs) this.speechStartMs = cutMs;
    if (this.speechEndMs < cutMs) this.speechEndMs = cutMs;
    this.announced = false;
    this.checkAnnounce();
  }

  /**
   * Sample index of the centre of the lowest-energy 32 ms stretch that ends within the maximum
   * length and starts within the last MAX_CUT_SEARCH_MS of it: the cut keeps the piece ≤ maxUtteranceMs.
   */
  private quietestPoint(): number {
    const buf = this.buf;
    const end = Math.min(this.bufLength, this.maxSamples);
    const from = Math.max(0, end - Math.round(MAX_CUT_SEARCH_MS * SAMPLES_PER_MS));
    let best = end;
    let bestEnergy = Number.POSITIVE_INFINITY;
    // Later candidates win ties: the piece cut off keeps more.
    for (let s = from; s + CUT_WINDOW <= end; s += CUT_HOP) {
      let e = 0;
      for (let i = s; i < s + CUT_WINDOW; i++) {
        const x = buf[i]!;
        e += x * x;
      }
      if (e <= bestEnergy) {
        bestEnergy = e;
        best = s + CUT_WINDOW / 2;
      }
    }
    return Math.max(1, best);
  }

  private emit(startMs: number, endMs: number, samples: Int16Array, reason: Utterance['reason']): void {
    this.onUtterance({ party: this.party, startMs, endMs, samples, reason });
  }

  private append(samples: Int16Array): void {
    const need = this.bufLength + samples.length;
    if (need > this.buf.length) this.grow(need);
    this.buf.set(samples, this.bufLength);
    this.bufLength = need;
  }

  private appendSilence(n: number): void {
    const need = this.bufLength + n;
    if (need > this.buf.length) this.grow(need);
    this.buf.fill(0, this.bufLength, need);
    this.bufLength = need;
  }

  private grow(need: number): void {
    // Capped near maxUtteranceMs: checkMaxLength cuts before the buffer holds much more.
    const cap = this.maxSamples + this.preRoll.length + 4 * CUT_WINDOW;
    let size = Math.max(this.buf.length * 2, INITIAL_CAPACITY);
    while (size < need) size *= 2;
    size = Math.max(need, Math.min(size, cap));
    const grown = new Int16Array(size);
    grown.set(this.buf.subarray(0, this.bufLength));
    this.buf = grown;
  }

  private addPreRoll(samples: Int16Array): void {
    const ring = this.preRoll;
    const cap = ring.length;
    if (cap === 0) return;
    let src = samples;
    if (src.length > cap) src = src.subarray(src.length - cap);
    const n = src.length;
    const first = Math.min(n, cap - this.preRollWrite);
    ring.set(src.subarray(0, first), this.preRollWrite);
    if (first < n) ring.set(src.subarray(first), 0);
    this.preRollWrite = (this.preRollWrite + n) % cap;
    this.preRollCount = Math.min(cap, this.preRollCount + n);
  }
}
