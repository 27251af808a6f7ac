import { FRAME_MS, FRAME_SAMPLES, type AudioFrame } from './frame.js';

/**
 * Cuts a party's continuous 16 kHz sample stream into 20 ms `AudioFrame`s. The frame clock only
 * moves by the samples written (or by an explicit `jumpTo`), so `startMs` of consecutive frames
 * never has a gap the audio does not have.
 */
export class Framer {
  private buf = new Int16Array(FRAME_SAMPLES);
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
    this.buf = new Int16Array(FRAME_SAMPLES);
    this.fill = 0;
    this.frameStartMs += FRAME_MS;
  }
}
