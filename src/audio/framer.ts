import { FRAME_MS, FRAME_SAMPLES, type AudioFrame } from './frame.js';

/**
 * Frames are cut from slabs of this many: a 640-byte Int16Array of its own is a separate backing
 * store (malloc, external-memory accounting, a finaliser at GC) for every 20 ms of every party,
 * while a view into a slab is only an object. A consumer that keeps one frame keeps its slab
 * (10 KB) alive; consumers keep runs of consecutive frames (an utterance), so little is pinned.
 */
const FRAMES_PER_SLAB = 16;

/**
 * Cuts a party's continuous 16 kHz sample stream into 20 ms `AudioFrame`s. The frame clock only
 * moves by the samples written (or by an explicit `jumpTo`), so `startMs` of consecutive frames
 * never has a gap the audio does not have.
 */
export class Framer {
  private slab = new ArrayBuffer(FRAMES_PER_SLAB * FRAME_SAMPLES * 2);
  private slabNext = 0;
  private buf = this.nextBuffer();
  private fill = 0;
  /** startMs of the frame being filled. */
  private frameStartMs: number;

  constructor(
    private readonly party: string,
    startMs: number,
    private readonly emit: (frame: AudioFrame) => void,
  ) {
    this.frameStartMs = startMs;
  }

  /** The call-clock time of the next sample to be written. */
  get clockMs(): number {
    return this.frameStartMs + (this.fill * FRAME_MS) / FRAME_SAMPLES;
  }

  write(samples: Int16Array): void {
    let offset = 0;
    while (offset < samples.length) {
      const n = Math.min(FRAME_SAMPLES - this.fill, samples.length - offset);
      this.buf.set(n === samples.length && offset === 0 ? samples : samples.subarray(offset, offset + n), this.fill);
      this.fill += n;
      offset += n;
      if (this.fill === FRAME_SAMPLES) this.complete();
    }
  }

  /** Writes `count` samples produced by `fill` (silence or comfort noise) without an intermediate array. */
  writeGenerated(count: number, fill: (out: Int16Array, from: number, to: number) => void): void {
    while (count > 0) {
      const n = Math.min(FRAME_SAMPLES - this.fill, count);
      fill(this.buf, this.fill, this.fill + n);
      this.fill += n;
      count -= n;
      if (this.fill === FRAME_SAMPLES) this.complete();
    }
  }

  /**
   * Moves the clock forward to `ms` without audio (a stream paused longer than is worth filling):
   * the partial frame is completed with silence first.
   */
  jumpTo(ms: number): void {
    if (this.fill > 0) this.padAndEmit();
    if (ms > this.frameStartMs) this.frameStartMs = ms;
  }

  /** The stream ended: a partial frame is completed with silence so its last words are kept. */
  end(): void {
    if (this.fill > 0) this.padAndEmit();
  }

  private padAndEmit(): void {
    this.buf.fill(0, this.fill);
    this.fill = FRAME_SAMPLES;
    this.complete();
  }

  private complete(): void {
    this.emit({ party: this.party, startMs: this.frameStartMs, samples: this.buf });
    this.buf = this.nextBuffer();
    this.fill = 0;
    this.frameStartMs += FRAME_MS;
  }

  private nextBuffer(): Int16Array {
    if (this.slabNext === FRAMES_PER_SLAB) {
      this.slab = new ArrayBuffer(FRAMES_PER_SLAB * FRAME_SAMPLES * 2);
      this.slabNext = 0;
    }
    return new Int16Array(this.slab, FRAME_SAMPLES * 2 * this.slabNext++, FRAME_SAMPLES);
  }
}
