/**
 * One whisper.cpp `whisper-server` (1.9.1): a local child process this module spawns and watches,
 * or a remote instance reached by URL. Both speak the same HTTP API:
 *
 * - `GET /health` → 200 `{"status":"ok"}` once the model is loaded (a local server loads the model
 *   before it binds its port, so until then connections are refused);
 * - `POST /inference` (multipart): `file` (WAV), `response_format=verbose_json`, `language`
 *   (code or `auto`), `translate`, `temperature`, `temperature_inc` (0 = no fallback), `beam_size`,
 *   `best_of`, `prompt`, `no_timestamps`, `no_language_probabilities`… There is no max-tokens field.
 *   verbose_json: `{ task, language (full name), duration, text, segments: [{ id, text, start, end
 *   (s), tokens, words: [{ word (a token), start, end, t_dtw, probability }], temperature,
 *   avg_logprob, no_speech_prob }] }`.
 *
 * The server decodes one request at a time (a mutex); callers send one request per server.
 */
import { type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeWav } from '../../audio/wav.js';
import { spawnBoundToParent } from '../../child-process.js';
import { WhisperlineError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { languageCode } from '../languages.js';
import type { RecognitionTask, RecognizedSegment, RecognizedWord } from '../recognizer.js';

export const SAMPLE_RATE = 16_000;

export interface TranscribeInput {
  /** 16 kHz mono signed 16-bit PCM. */
  readonly samples: Int16Array;
  /** ISO 639-1 code or 'auto'. */
  readonly language: string;
  readonly task: RecognitionTask;
  readonly prompt?: string;
}

export interface TranscribeOptions {
  /** 1 = greedy. */
  readonly beamSize?: number;
  /** The request fails with ASR_TIMEOUT after this long (ms). */
  readonly timeoutMs: number;
  /** Abort → ASR_ABORTED; the server notices the closed connection and stops decoding. */
  readonly signal?: AbortSignal;
  /** whisper's temperature fallback on low-confidence decodes (slower, bounded by nothing). Default off. */
  readonly temperatureFallback?: boolean;
  /** Encoder positions to use (`audio_ctx`); 0 or absent = the model's full 30 s window. */
  readonly audioContext?: number;
}

/** Encoder positions per second of audio (whisper: 100 mel frames/s, halved by the conv stem). */
const AUDIO_CTX_PER_SECOND = 50;
const FULL_AUDIO_CTX = 1500;
/**
 * whisper-server runs flash attention, which pads the cross-attention length to a multiple of
 * 256: a window that is not a multiple reads encoder output a previous request left in the
 * padding, and the same audio decodes differently (measured: different text, repetition loops)
 * depending on what came before. Windows are therefore whole blocks.
 */
const AUDIO_CTX_BLOCK = 256;

/**
 * The encoder window for `samples`: 'auto' covers the audio plus one second (whisper needs some
 * silence after the last word to place its end), rounded up to whole attention blocks; 0 is the
 * full 30 s window. A fixed setting is rounded the same way.
 */
export function audioContextFor(samples: number, setting: 'auto' | number): number {
  const wanted = setting === 'auto' ? Math.ceil((samples / SAMPLE_RATE) * AUDIO_CTX_PER_SECOND) + AUDIO_CTX_PER_SECOND : setting;
  if (wanted <= 0) return 0;
  const ctx = Math.ceil(wanted / AUDIO_CTX_BLOCK) * AUDIO_CTX_BLOCK;
  return ctx >= FULL_AUDIO_CTX ? 0 : ctx;
}

export interface Transcription {
  readonly text: string;
  readonly language: string;
  readonly segments: readonly RecognizedSegment[];
  /** Round trip of the HTTP request (ms). */
  readonly processingMs: number;
}

/** What the engine pool needs of a server, local or remote. */
export interface WhisperBackend {
  /** For logs: `local:<pid>` or the URL. */
  readonly id: string;
  readonly url: string;
  /** The local process id; undefined for a remote server. */
  readonly pid: number | undefined;
  /** Settles when a local process exits (never, for a remote server). */
  readonly exited: Promise<ProcessExit>;
  transcribe(input: TranscribeInput, options: TranscribeOptions): Promise<Transcription>;
  /** Stops a local process (SIGKILL when `force` or after a grace period); no-op for a remote one. */
  kill(force?: boolean): Promise<void>;
  /** The last lines the process printed (diagnostics); empty for a remote server. */
  outputTail(): string;
}

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * A request failure caused by the server itself being gone or unreachable (process exited,
 * connection refused/reset, no answer in time), as opposed to the server rejecting the request.
 * The pool restarts such a server.
 */
export class WhisperServerDown extends WhisperlineError {
  constructor(code: 'ASR_FAILED' | 'ASR_TIMEOUT', message: string, cause?: unknown) {
    super(code, message, { retryable: true, cause });
  }
}


interface VerboseWord {
  word?: string;
  start?: number;
  end?: number;
  probability?: number;
}
interface VerboseSegment {
  text?: string;
  start?: number;
  end?: number;
  words?: VerboseWord[];
  avg_logprob?: number | null;
  no_speech_prob?: number | null;
}
interface VerboseJson {
  language?: string;
  detected_language?: string;
  text?: string;
  segments?: VerboseSegment[];
  error?: string;
}

const finite = (x: unknown, fallback: number): number => (typeof x === 'number' && Number.isFinite(x) ? x : fallback);
const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/**
 * whisper-server's `words` are tokens (sub-word pieces with their own times and probabilities);
 * a token that starts with a space starts a word. Word confidence is the mean token probability.
 */
function wordsOf(tokens: readonly VerboseWord[], durationMs: number): RecognizedWord[] {
  const words: RecognizedWord[] = [];
  let text = '';
  let startMs = 0;
  let endMs = 0;
  let probSum = 0;
  let n = 0;
  const flush = (): void => {
    const trimmed = text.trim();
    if (trimmed && n > 0) words.push({ text: trimmed, startMs, endMs: Math.max(startMs, endMs), confidence: probSum / n });
    text = '';
    probSum = 0;
    n = 0;
  };
  for (const token of tokens) {
    const piece = token.word ?? '';
    if (!piece) continue;
    const t0 = clamp(Math.round(finite(token.start, 0) * 1000), 0, durationMs);
    const t1 = clamp(Math.round(finite(token.end, token.start ?? 0) * 1000), 0, durationMs);
    if (n === 0 || piece.startsWith(' ')) {
      flush();
      startMs = t0;
    }
    text += piece;
    endMs = t1;
    probSum += clamp(finite(token.probability, 0), 0, 1);
    n++;
  }
  flush();
  return words;
}

/**
 * verbose_json → segments. Times are clamped to the audio's length (whisper may place a final
 * timestamp past the end of a short clip).
 */
export function mapVerboseJson(json: VerboseJson, requestedLanguage: string, durationMs: number): Omit<Transcription, 'processingMs'> {
  const segments: RecognizedSegment[] = [];
  for (const s of json.segments ?? []) {
    const text = (s.text ?? '').trim();
    const startMs = clamp(Math.round(finite(s.start, 0) * 1000), 0, durationMs);
    const endMs = clamp(Math.round(finite(s.end, durationMs / 1000) * 1000), startMs, durationMs);
    const avg = finite(s.avg_logprob, Number.NEGATIVE_INFINITY);
    const words = s.words ? wordsOf(s.words, durationMs) : undefined;
    segments.push({
      text,
      startMs,
      endMs,
      noSpeechProb: clamp(finite(s.no_speech_prob, 0), 0, 1),
      confidence: clamp(Math.exp(avg), 0, 1),
      ...(words ? { words } : {}),
    });
  }
  const language =
    requestedLanguage !== 'auto' ? requestedLanguage : (languageCode(json.language) ?? languageCode(json.detected_language) ?? 'und');
  const text = segments
    .map((s) => s.text)
    .filter(Boolean)
    .join(' ');
  return { text, language, segments };
}

function isStaleConnection(err: unknown): boolean {
  const code = ((err as { cause?: { code?: unknown } }).cause?.code ?? '') as string;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
}

/** HTTP client for one whisper-server (local or remote). */
export class WhisperHttpClient {
  readonly url: string;

  constructor(url: string) {
    this.url = url.replace(/\/+$/, '');
  }

  /** True when the server answers /health with 200 (model loaded). */
  async healthy(timeoutMs = 2000): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }

  /**
   * One inference. `died` (optional) settles when the server is known to be gone, failing the
   * request at once instead of at its timeout.
   */
  async transcribe(input: TranscribeInput, options: TranscribeOptions, died?: Promise<Error>): Promise<Transcription> {
    if (options.signal?.aborted) throw new WhisperlineError('ASR_ABORTED', 'recognition aborted');
    const durationMs = Math.round((input.samples.length * 1000) / SAMPLE_RATE);
    const beam = Math.max(1, options.beamSize ?? 1);
    const form = new FormData();
    form.append('file', new Blob([encodeWav(input.samples, SAMPLE_RATE)], { type: 'audio/wav' }), 'audio.wav');
    form.append('response_format', 'verbose_json');
    form.append('language', input.language || 'auto');
    form.append('translate', input.task === 'translate' ? 'true' : 'false');
    form.append('temperature', '0');
    form.append('temperature_inc', options.temperatureFallback ? '0.2' : '0');
    form.append('beam_size', String(beam));
    form.append('best_of', String(beam));
    form.append('no_timestamps', 'false');
    // Language probabilities cost a second encoder pass; whisper_full already detects the language.
    form.append('no_language_probabilities', 'true');
    // Always sent: whisper-server keeps the last request's value otherwise.
    form.append('audio_ctx', String(options.audioContext ?? 0));
    if (input.prompt) form.append('prompt', input.prompt);

    const controller = new AbortController();
    let why: 'timeout' | 'aborted' | undefined;
    const timer = setTimeout(() => {
      why = 'timeout';
      controller.abort();
    }, options.timeoutMs);
    const onAbort = (): void => {
      why ??= 'aborted';
      controller.abort();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const started = performance.now();
    const post = async (): Promise<{ res: Response; body: string }> => {
      const res = await fetch(`${this.url}/inference`, { method: 'POST', body: form, signal: controller.signal });
      return { res, body: await res.text() };
    };
    const request = (async () => {
      try {
        return await post();
      } catch (err) {
        // A kept-alive connection the server closed just as it was reused fails before the server saw
        // the request: send it once more on a new connection. A server that is really gone fails
        // again (connection refused), or `died` settles first.
        if (why || !isStaleConnection(err)) throw err;
        return post();
      }
    })();
    try {
      const { res, body } = died
        ? await Promise.race([
            request,
            died.then((err) => {
              throw err;
            }),
          ])
        : await request;
      if (!res.ok) {
        throw new WhisperlineError('ASR_FAILED', `whisper-server answered ${res.status}: ${body.slice(0, 200)}`, {
          retryable: res.status >= 500,
        });
      }
      let json: VerboseJson;
      try {
        json = JSON.parse(body) as VerboseJson;
      } catch (cause) {
        throw new WhisperlineError('ASR_FAILED', 'whisper-server sent a body that is not JSON', { retryable: true, cause });
      }
      return { ...mapVerboseJson(json, input.language || 'auto', durationMs), processingMs: performance.now() - started };
    } catch (err) {
      if (why === 'timeout') throw new WhisperServerDown('ASR_TIMEOUT', `whisper-server did not answer within ${options.timeoutMs} ms`, err);
      if (why === 'aborted') throw new WhisperlineError('ASR_ABORTED', 'recognition aborted', { cause: err });
      if (err instanceof WhisperlineError) throw err;
      throw new WhisperServerDown('ASR_FAILED', `whisper-server request failed: ${(err as Error).message}`, err);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      // The losing side of the race must not surface as an unhandled rejection.
      request.catch(() => undefined);
    }
  }
}

/** A whisper-server on another host (e.g. a GPU machine): no process to supervise. */
export class RemoteWhisperServer implements WhisperBackend {
  readonly id: string;
  readonly pid = undefined;
  readonly exited = new Promise<ProcessExit>(() => undefined);
  private readonly client: WhisperHttpClient;

  constructor(url: string) {
    this.client = new WhisperHttpClient(url);
    this.id = this.client.url;
  }

  get url(): string {
    return this.client.url;
  }

  /** Waits until the server's model is loaded. */
  static async connect(url: string, timeoutMs = 60_000): Promise<RemoteWhisperServer> {
    const server = new RemoteWhisperServer(url);
    const deadline = Date.now() + timeoutMs;
    while (!(await server.client.healthy())) {
      if (Date.now() > deadline) throw new WhisperlineError('ASR_FAILED', `whisper-server at ${url} is not healthy`, { retryable: true });
      await sleep(500);
    }
    return server;
  }

  transcribe(input: TranscribeInput, options: TranscribeOptions): Promise<Transcription> {
    return this.client.transcribe(input, options);
  }

  async kill(): Promise<void> {}

  outputTail(): string {
    return '';
  }
}

export interface LocalServerOptions {
  readonly binary: string;
  readonly model: string;
  readonly threads: number;
  /** Extra command-line flags (e.g. `-ng`, `-nfa`). */
  readonly extraArgs?: readonly string[];
  /** Longest wait for the model to load (ms). */
  readonly startTimeoutMs?: number;
  readonly logger?: Logger;
}

/** A free TCP port on loopback (the kernel's choice; the server binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const TAIL_LINES = 60;

/**
 * Children still running when this process exits (a crash included) are killed, so a gateway that
 * dies does not leave model-sized whisper-servers behind. (A SIGKILLed gateway cannot do this.)
 */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of liveChildren) c.kill('SIGKILL');
  });
}

/** A whisper-server child process this module started and owns. */
export class LocalWhisperServer implements WhisperBackend {
  readonly id: string;
  readonly url: string;
  readonly exited: Promise<ProcessExit>;
  private readonly child: ChildProcess;
  private readonly client: WhisperHttpClient;
  private readonly tail: string[] = [];
  private exit: ProcessExit | undefined;
  private readonly died: Promise<Error>;

  private constructor(child: ChildProcess, port: number) {
    this.child = child;
    this.url = `http://127.0.0.1:${port}`;
    this.id = `local:${child.pid ?? '?'}`;
    this.client = new WhisperHttpClient(this.url);
    const onOutput = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        this.tail.push(line);
        if (this.tail.length > TAIL_LINES) this.tail.shift();
      }
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      child.once('error', () => {
        this.exit ??= { code: null, signal: null };
        resolve(this.exit);
      });
    });
    this.died = this.exited.then(
      (e) =>
        new WhisperServerDown('ASR_FAILED', `whisper-server ${this.id} exited (${e.signal ?? `code ${e.code}`}) during a request`),
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Spawns the server and resolves once it has loaded the model and answers /health. */
  static async start(options: LocalServerOptions): Promise<LocalWhisperServer> {
    if (!existsSync(options.binary)) throw new WhisperlineError('ASR_BUILD', `whisper-server binary not found: ${options.binary}`);
    if (!existsSync(options.model)) throw new WhisperlineError('MODEL_MISSING', `Whisper model file not found: ${options.model}`);
    let lastError: unknown;
    // The free port is chosen before the server binds it; another process may take it meanwhile.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const args = ['-m', options.model, '--host', '127.0.0.1', '--port', String(port), '-t', String(options.threads), '-nlp', ...(options.extraArgs ?? [])];
      const child = spawnBoundToParent(options.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      track(child);
      const server = new LocalWhisperServer(child, port);
      try {
        await server.waitReady(options.startTimeoutMs ?? 120_000);
        options.logger?.debug({ pid: child.pid, port }, 'whisper-server ready');
        return server;
      } catch (err) {
        lastError = err;
        await server.kill(true);
        if (!/couldn't bind/.test(server.outputTail())) throw err;
      }
    }
    throw lastError;
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let delay = 20;
    for (;;) {
      if (this.exit) {
        throw new WhisperlineError('ASR_FAILED', `whisper-server exited while starting (${this.exit.signal ?? `code ${this.exit.code}`}):\n${this.outputTail()}`);
      }
      if (await this.client.healthy(1000)) return;
      if (performance.now() > deadline) {
        throw new WhisperlineError('ASR_TIMEOUT', `whisper-server did not become ready within ${timeoutMs} ms:\n${this.outputTail()}`, { retryable: true });
      }
      await Promise.race([sleep(delay), this.exited]);
      delay = Math.min(250, delay * 2);
    }
  }

  transcribe(input: TranscribeInput, options: TranscribeOptions): Promise<Transcription> {
    if (this.exit) {
      return Promise.reject(new WhisperServerDown('ASR_FAILED', `whisper-server ${this.id} is not running`));
    }
    return this.client.transcribe(input, options, this.died);
  }

  /** SIGTERM, then SIGKILL after 2 s (or SIGKILL at once when `force`). Resolves once exited. */
  async kill(force = false): Promise<void> {
    if (this.exit) return;
    try {
      this.child.kill(force ? 'SIGKILL' : 'SIGTERM');
    } catch {
      // already gone
    }
    if (!force) {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      await this.exited;
      clearTimeout(timer);
    }
    await this.exited;
  }

  outputTail(): string {
    return this.tail.join('\n');
  }
}
