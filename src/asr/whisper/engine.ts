/**
 * The Whisper engine: a supervised pool of long-lived whisper-server processes (or remote
 * servers) behind one bounded priority queue.
 *
 * Contracts:
 * - one request per server at a time; finals always go before partials;
 * - queue overflow (`queueSize` waiting requests): a new partial is rejected (ASR_QUEUE_FULL); a
 *   new final evicts the oldest waiting partial, or, with none to evict, waits over capacity up to
 *   4 × queueSize (counted in `finalsOverCapacity`); past that it is rejected and logged as an
 *   error (`droppedFinals`). Every drop is counted;
 * - a server that dies or does not answer within `timeoutMs` is killed and restarted (with
 *   backoff); its request is retried once on a healthy server, then rejected ASR_FAILED;
 * - abort: a waiting request leaves the queue at once; an in-flight one rejects ASR_ABORTED and the
 *   server (which notices the closed connection and stops decoding) stays up;
 * - `close()` rejects everything pending with ASR_CLOSED and stops the processes. Idempotent.
 */
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { WhisperlineError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { RecognitionRequest, RecognitionResult, RecognizerCapabilities, SpeechRecognizer } from '../recognizer.js';
import { ensureWhisperServer } from './whisper-build.js';
import { audioContextFor, LocalWhisperServer, RemoteWhisperServer, WhisperServerDown, type WhisperBackend } from './whisper-server.js';

/** How requests are made, whatever serves them. */
export interface WhisperRequestSettings {
  readonly queueSize: number;
  readonly timeoutMs: number;
  readonly beamSize: number;
  readonly audioContext: 'auto' | number;
}

/** whisper-server processes this engine starts and supervises. */
export interface LocalWhisperPool {
  readonly kind: 'local';
  /** The ggml model file each server loads. */
  readonly modelPath: string;
  readonly poolSize: number;
  readonly threads: number;
  /** A prebuilt whisper-server; otherwise it is built (once) into `buildDir` (CUDA when `cuda`). */
  readonly binary?: string;
  readonly buildDir: string;
  readonly cuda: boolean;
}

/** whisper-server instances elsewhere, one request at a time each. */
export interface RemoteWhisperServers {
  readonly kind: 'remote';
  readonly servers: readonly string[];
}

export type WhisperEngineConfig = WhisperRequestSettings & (LocalWhisperPool | RemoteWhisperServers);

export interface WhisperEngineStats {
  readonly queued: number;
  readonly inFlight: number;
  /** Servers up and accepting work (idle or busy). */
  readonly servers: number;
  readonly restarts: number;
  readonly droppedPartials: number;
  readonly droppedFinals: number;
  readonly finalsOverCapacity: number;
  readonly timeouts: number;
  readonly completed: number;
  /** Rejected ASR_FAILED (after the retry, or refused by the server). */
  readonly failed: number;
  readonly aborted: number;
  /** Queue + processing time of recent completed requests (last 512), ms; NaN before any. */
  readonly latencyP50Ms: number;
  readonly latencyP95Ms: number;
}

export interface ServerInfo {
  readonly id: string;
  readonly pid: number | undefined;
  readonly state: SlotState;
}

/** Creates (or re-creates after a failure) the backend of pool slot `index`. */
export type BackendFactory = (index: number) => Promise<WhisperBackend>;

export interface EngineOptions {
  readonly poolSize: number;
  readonly queueSize: number;
  readonly timeoutMs: number;
  readonly beamSize: number;
  /** Encoder window per request: 'auto' (sized to the utterance) or a fixed `audio_ctx` (0 = full). */
  readonly audioContext?: 'auto' | number;
  readonly logger: Logger;
  readonly capabilities?: RecognizerCapabilities;
  /** Restart backoff: first delay and cap (ms). */
  readonly restartBackoffMs?: { readonly initial: number; readonly max: number };
}

type SlotState = 'starting' | 'idle' | 'busy' | 'restarting' | 'closed';

interface Slot {
  readonly index: number;
  backend: WhisperBackend | undefined;
  state: SlotState;
  job: Job | undefined;
  /** Restarts since the last successful request: drives the backoff. */
  failures: number;
  timer: NodeJS.Timeout | undefined;
}

interface Job {
  readonly request: RecognitionRequest;
  readonly resolve: (result: RecognitionResult) => void;
  readonly reject: (err: Error) => void;
  enqueuedAt: number;
  queuedMs: number;
  attempts: number;
  settled: boolean;
  /** Aborts the in-flight HTTP request (caller abort, or close). */
  controller: AbortController | undefined;
  onAbort: (() => void) | undefined;
}

const LATENCY_WINDOW = 512;
/** A final waits over capacity up to this many times `queueSize` before it is refused. */
const FINAL_OVERFLOW_FACTOR = 4;

export class WhisperEngine implements SpeechRecognizer {
  readonly capabilities: RecognizerCapabilities;
  private readonly options: EngineOptions;
  private readonly factory: BackendFactory;
  private readonly log: Logger;
  private readonly slots: Slot[] = [];
  private readonly finals: Job[] = [];
  private readonly partials: Job[] = [];
  private readonly latencies: number[] = [];
  private closing: Promise<void> | undefined;
  /** Replacement servers being started: close() waits for them (and kills what they started). */
  private readonly pendingStarts = new Set<Promise<void>>();
  private counters = { restarts: 0, droppedPartials: 0, droppedFinals: 0, finalsOverCapacity: 0, timeouts: 0, completed: 0, failed: 0, aborted: 0 };

  /** Use `start()` (local or remote servers from the configuration) or `create()` (any backends). */
  private constructor(factory: BackendFactory, options: EngineOptions) {
    this.factory = factory;
    this.options = options;
    this.log = options.logger;
    this.capabilities = options.capabilities ?? { translate: true, wordTimestamps: true, languageDetection: true };
  }

  /**
   * Builds whisper-server if needed and starts `poolSize` local servers on `modelPath`, or
   * connects to the remote `servers`. Fails (and stops whatever started) if any server cannot start.
   */
  static async start(config: WhisperEngineConfig, logger: Logger): Promise<WhisperEngine> {
    const log = logger.child({ component: 'asr' });
    const common = { queueSize: config.queueSize, timeoutMs: config.timeoutMs, beamSize: config.beamSize, audioContext: config.audioContext, logger: log };
    if (config.kind === 'remote') {
      const urls = config.servers;
      if (urls.length === 0) throw new WhisperlineError('ASR_FAILED', 'no remote whisper-server URL given');
      return WhisperEngine.create((i) => RemoteWhisperServer.connect(urls[i]!, Math.max(config.timeoutMs, 10_000)), { ...common, poolSize: urls.length });
    }
    if (!existsSync(config.modelPath)) throw new WhisperlineError('MODEL_MISSING', `Whisper model file not found: ${config.modelPath}`);
    const binary = config.binary ?? (await ensureWhisperServer({ buildDir: config.buildDir, cuda: config.cuda, logger: log }));
    const factory: BackendFactory = () => LocalWhisperServer.start({ binary, model: config.modelPath, threads: config.threads, logger: log });
    return WhisperEngine.create(factory, { ...common, poolSize: config.poolSize });
  }

  /** A pool over any backends (tests use this with fakes); resolves once every slot is up. */
  static async create(factory: BackendFactory, options: EngineOptions): Promise<WhisperEngine> {
    const engine = new WhisperEngine(factory, options);
    for (let index = 0; index < options.poolSize; index++) {
      engine.slots.push({ index, backend: undefined, state: 'starting', job: undefined, failures: 0, timer: undefined });
    }
    const started = await Promise.allSettled(engine.slots.map(async (slot) => engine.attach(slot, await factory(slot.index))));
    const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) {
      await engine.close();
      throw failure.reason instanceof WhisperlineError
        ? failure.reason
        : new WhisperlineError('ASR_FAILED', 'whisper-server failed to start', { cause: failure.reason });
    }
    engine.log.info({ servers: options.poolSize }, 'whisper engine started');
    return engine;
  }

  recognize(request: RecognitionRequest): Promise<RecognitionResult> {
    return new Promise<RecognitionResult>((resolve, reject) => {
      if (this.closing) {
        reject(new WhisperlineError('ASR_CLOSED', 'the whisper engine is closed'));
        return;
      }
      if (request.signal?.aborted) {
        this.counters.aborted++;
        reject(new WhisperlineError('ASR_ABORTED', 'recognition aborted'));
        return;
      }
      const job: Job = { request, resolve, reject, enqueuedAt: performance.now(), queuedMs: 0, attempts: 0, settled: false, controller: undefined, onAbort: undefined };
      if (!this.admit(job)) return;
      if (request.signal) {
        job.onAbort = () => this.abortJob(job);
        request.signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.pump();
    });
  }

  hasSpareCapacity(): boolean {
    return this.finals.length === 0 && this.slots.some((s) => s.state === 'idle');
  }

  stats(): WhisperEngineStats {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const pct = (p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : Number.NaN);
    return {
      ...this.counters,
      queued: this.finals.length + this.partials.length,
      inFlight: this.slots.filter((s) => s.state === 'busy').length,
      servers: this.slots.filter((s) => s.state === 'idle' || s.state === 'busy').length,
      latencyP50Ms: pct(0.5),
      latencyP95Ms: pct(0.95),
    };
  }

  /** The pool's servers (ids, pids, states), e.g. for diagnostics. */
  servers(): ServerInfo[] {
    return this.slots.map((s) => ({ id: s.backend?.id ?? `slot:${s.index}`, pid: s.backend?.pid, state: s.state }));
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const closed = (): WhisperlineError => new WhisperlineError('ASR_CLOSED', 'the whisper engine is closed');
    for (const job of [...this.finals.splice(0), ...this.partials.splice(0)]) this.settle(job, closed());
    const kills: Promise<void>[] = [];
    for (const slot of this.slots) {
      if (slot.timer) clearTimeout(slot.timer);
      if (slot.job) {
        const job = slot.job;
        this.settle(job, closed());
        job.controller?.abort();
      }
      slot.job = undefined;
      slot.state = 'closed';
      if (slot.backend) kills.push(slot.backend.kill());
    }
    await Promise.allSettled([...kills, ...this.pendingStarts]);
    this.log.info(this.stats(), 'whisper engine closed');
  }

  /** Applies the overflow policy; false when the job was refused (and rejected). */
  private admit(job: Job): boolean {
    const { queueSize } = this.options;
    const queued = this.finals.length + this.partials.length;
    if (job.request.priority === 'partial') {
      if (queued >= queueSize) {
        this.counters.droppedPartials++;
        job.settled = true;
        job.reject(new WhisperlineError('ASR_QUEUE_FULL', 'recognition queue full: partial dropped', { retryable: true }));
        return false;
      }
      this.partials.push(job);
      return true;
    }
    if (queued >= queueSize) {
      const evicted = this.partials.shift();
      if (evicted) {
        this.counters.droppedPartials++;
        this.settle(evicted, new WhisperlineError('ASR_QUEUE_FULL', 'recognition queue full: partial evicted by a final', { retryable: true }));
      } else if (queued < FINAL_OVERFLOW_FACTOR * queueSize) {
        this.counters.finalsOverCapacity++;
        if (this.counters.finalsOverCapacity === 1 || this.counters.finalsOverCapacity % 100 === 0) {
          this.log.warn({ queued, queueSize, finalsOverCapacity: this.counters.finalsOverCapacity }, 'recognition queue over capacity: final delayed');
        }
      } else {
        this.counters.droppedFinals++;
        this.log.error({ queued, queueSize, droppedFinals: this.counters.droppedFinals }, 'recognition queue full: final dropped');
        job.settled = true;
        job.reject(new WhisperlineError('ASR_QUEUE_FULL', 'recognition queue full: final dropped', { retryable: true }));
        return false;
      }
    }
    this.finals.push(job);
    return true;
  }

  private abortJob(job: Job): void {
    if (job.settled) return;
    const queue = job.request.priority === 'final' ? this.finals : this.partials;
    const at = queue.indexOf(job);
    if (at >= 0) {
      queue.splice(at, 1);
      this.counters.aborted++;
      this.settle(job, new WhisperlineError('ASR_ABORTED', 'recognition aborted'));
      return;
    }
    // In flight: the HTTP request is cancelled and its failure handler settles the job.
    job.controller?.abort();
  }

  private settle(job: Job, outcome: Error | RecognitionResult): void {
    if (job.settled) return;
    job.settled = true;
    if (job.onAbort) job.request.signal?.removeEventListener('abort', job.onAbort);
    if (outcome instanceof Error) job.reject(outcome);
    else job.resolve(outcome);
  }

  private pump(): void {
    if (this.closing) return;
    for (const slot of this.slots) {
      if (slot.state !== 'idle') continue;
      const job = this.finals.shift() ?? this.partials.shift();
      if (!job) return;
      void this.run(slot, job);
    }
  }

  private async run(slot: Slot, job: Job): Promise<void> {
    const backend = slot.backend!;
    slot.state = 'busy';
    slot.job = job;
    job.attempts++;
    job.queuedMs += performance.now() - job.enqueuedAt;
    const controller = new AbortController();
    job.controller = controller;
    const { samples, language, task, prompt } = job.request;
    try {
      const result = await backend.transcribe(
        { samples, language, task, ...(prompt ? { prompt } : {}) },
        {
          timeoutMs: this.options.timeoutMs,
          beamSize: this.options.beamSize,
          audioContext: audioContextFor(samples.length, this.options.audioContext ?? 0),
          signal: controller.signal,
        },
      );
      if (slot.job !== job) return; // closed meanwhile
      slot.job = undefined;
      slot.state = 'idle';
      slot.failures = 0;
      if (!job.settled) {
        this.counters.completed++;
        this.latencies.push(job.queuedMs + result.processingMs);
        if (this.latencies.length > LATENCY_WINDOW) this.latencies.shift();
        this.settle(job, { ...result, queuedMs: job.queuedMs });
      }
    } catch (err) {
      if (slot.job !== job) return; // closed meanwhile
      slot.job = undefined;
      this.onFailure(slot, backend, job, err as Error);
    } finally {
      job.controller = undefined;
      this.pump();
    }
  }

  private onFailure(slot: Slot, backend: WhisperBackend, job: Job, err: Error): void {
    const code = err instanceof WhisperlineError ? err.code : 'ASR_FAILED';
    if (code === 'ASR_ABORTED') {
      // The caller gave up; the server is fine (it stops decoding when the connection closes).
      slot.state = 'idle';
      this.counters.aborted++;
      this.settle(job, err);
      return;
    }
    const serverDown = err instanceof WhisperServerDown;
    if (serverDown) {
      if (code === 'ASR_TIMEOUT') this.counters.timeouts++;
      this.restart(slot, backend, err.message);
    } else {
      slot.state = 'idle';
    }
    const retryable = err instanceof WhisperlineError ? err.retryable : true;
    if (retryable && job.attempts < 2 && !job.settled) {
      this.log.warn({ server: backend.id, code, attempt: job.attempts, err: err.message }, 'recognition failed: retrying once');
      job.enqueuedAt = performance.now();
      (job.request.priority === 'final' ? this.finals : this.partials).unshift(job);
      return;
    }
    this.counters.failed++;
    this.log.error({ server: backend.id, code, attempts: job.attempts, priority: job.request.priority, err: err.message }, 'recognition failed');
    this.settle(job, new WhisperlineError('ASR_FAILED', `recognition failed after ${job.attempts} attempt(s): ${err.message}`, { cause: err }));
  }

  /** Watches a started backend: an exit nobody asked for triggers a restart. */
  private attach(slot: Slot, backend: WhisperBackend): void {
    if (this.closing || slot.state === 'closed') {
      void backend.kill(true);
      return;
    }
    slot.backend = backend;
    slot.state = 'idle';
    void backend.exited.then((exit) => {
      if (slot.backend !== backend || this.closing) return;
      if (slot.state === 'idle') this.restart(slot, backend, `exited (${exit.signal ?? `code ${exit.code}`})`);
      // A busy slot learns of the exit through its failed request.
    });
    this.pump();
  }

  private restart(slot: Slot, backend: WhisperBackend, reason: string): void {
    if (this.closing || slot.state === 'restarting') return;
    slot.state = 'restarting';
    slot.backend = undefined;
    this.counters.restarts++;
    this.log.warn({ server: backend.id, reason, restarts: this.counters.restarts, output: backend.outputTail().slice(-2000) }, 'restarting whisper-server');
    this.scheduleStart(slot, backend.kill(true));
  }

  /** Starts a replacement after a backoff that doubles with each consecutive failure of the slot. */
  private scheduleStart(slot: Slot, after: Promise<unknown>): void {
    const { initial, max } = this.options.restartBackoffMs ?? { initial: 200, max: 10_000 };
    const delay = slot.failures === 0 ? 0 : Math.min(max, initial * 2 ** (slot.failures - 1));
    slot.failures++;
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      const attempt = (async () => {
        await after.catch(() => undefined);
        if (this.closing) return;
        try {
          const next = await this.factory(slot.index);
          slot.state = 'starting';
          this.attach(slot, next);
          if (!this.closing) this.log.info({ server: next.id, delayMs: delay }, 'whisper-server restarted');
        } catch (err) {
          if (this.closing) return;
          this.log.error({ slot: slot.index, err: (err as Error).message }, 'whisper-server restart failed');
          this.failQueuedIfNoServer(err as Error);
          this.scheduleStart(slot, Promise.resolve());
        }
      })();
      this.pendingStarts.add(attempt);
      void attempt.finally(() => this.pendingStarts.delete(attempt));
    }, delay);
  }

  /** With every server down, waiting work cannot be served soon: fail it loudly rather than hang. */
  private failQueuedIfNoServer(cause: Error): void {
    if (this.slots.some((s) => s.state === 'idle' || s.state === 'busy' || s.state === 'starting')) return;
    const jobs = [...this.finals.splice(0), ...this.partials.splice(0)];
    if (jobs.length === 0) return;
    this.counters.failed += jobs.length;
    this.log.error({ jobs: jobs.length, err: cause.message }, 'no whisper-server is running: failing queued recognitions');
    for (const job of jobs) this.settle(job, new WhisperlineError('ASR_FAILED', 'no whisper-server is running', { retryable: true, cause }));
  }
}
