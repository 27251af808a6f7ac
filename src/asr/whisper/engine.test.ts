import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureTestWhisper, speak, type TestWhisper } from '../../../test/support/whisper.js';
import { WhisperlineError } from '../../errors.js';
import { WhisperEngine, type WhisperEngineConfig, type WhisperRequestSettings } from './engine.js';
import type { RecognitionPriority, RecognitionRequest, RecognitionResult } from '../recognizer.js';
import { LocalWhisperServer, WhisperServerDown, type WhisperBackend } from './whisper-server.js';

const logger = pino({ level: 'silent' });

const SETTINGS: WhisperRequestSettings = { queueSize: 8, timeoutMs: 30_000, beamSize: 1, audioContext: 'auto' };
const LOCAL = { kind: 'local', poolSize: 1, threads: 2, cuda: false, buildDir: '/nonexistent' } as const;

async function until(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('WhisperEngine (real whisper-server pool)', () => {
  let whisper: TestWhisper;
  let speech: Int16Array;
  const engines: WhisperEngine[] = [];

  const start = async (overrides: Partial<WhisperRequestSettings & { poolSize: number; servers: string[] }> = {}): Promise<WhisperEngine> => {
    const { servers, ...rest } = overrides;
    const config: WhisperEngineConfig = servers
      ? { ...SETTINGS, ...rest, kind: 'remote', servers }
      : { ...SETTINGS, ...LOCAL, ...rest, modelPath: whisper.tinyModel, binary: whisper.binary };
    const engine = await WhisperEngine.start(config, logger);
    engines.push(engine);
    return engine;
  };
  const req = (priority: RecognitionPriority, extra: Partial<RecognitionRequest> = {}): RecognitionRequest => ({
    samples: speech,
    language: 'en',
    task: 'transcribe',
    priority,
    ...extra,
  });

  beforeAll(async () => {
    whisper = await ensureTestWhisper();
    speech = speak('Hello, I would like to check my order.');
  }, 600_000);

  afterEach(async () => {
    await Promise.all(engines.splice(0).map((e) => e.close()));
  });

  it('serves finals before partials', async () => {
    const engine = await start({ poolSize: 1 });
    expect(engine.hasSpareCapacity()).toBe(true);
    const order: string[] = [];
    const submit = (name: string, priority: RecognitionPriority): Promise<RecognitionResult> =>
      engine.recognize(req(priority)).then((r) => {
        order.push(name);
        return r;
      });
    const all = [submit('first', 'partial'), submit('p1', 'partial'), submit('p2', 'partial'), submit('f1', 'final'), submit('f2', 'final')];
    expect(engine.stats()).toMatchObject({ queued: 4, inFlight: 1 });
    expect(engine.hasSpareCapacity()).toBe(false);
    const results = await Promise.all(all);
    expect(order).toEqual(['first', 'f1', 'f2', 'p1', 'p2']);
    for (const r of results) {
      expect(r.segments.length).toBeGreaterThan(0);
      expect(r.language).toBe('en');
      expect(r.queuedMs).toBeGreaterThanOrEqual(0);
    }
    // Queued requests waited at least as long as the one before them took.
    expect(results[4]!.queuedMs).toBeGreaterThan(results[3]!.queuedMs);
    expect(engine.stats()).toMatchObject({ queued: 0, inFlight: 0, completed: 5, servers: 1, restarts: 0 });
    expect(engine.stats().latencyP95Ms).toBeGreaterThan(0);
    expect(engine.hasSpareCapacity()).toBe(true);
  });

  it('drops partials first when the queue is full and delays finals over capacity', async () => {
    const engine = await start({ poolSize: 1, queueSize: 2 });
    const outcome = (p: Promise<RecognitionResult>): Promise<string> => p.then(() => 'ok', (e: WhisperlineError) => e.code);
    const inFlight = outcome(engine.recognize(req('final')));
    const p1 = outcome(engine.recognize(req('partial')));
    const p2 = outcome(engine.recognize(req('partial')));
    const p3 = outcome(engine.recognize(req('partial'))); // queue full: refused
    const f1 = outcome(engine.recognize(req('final'))); // evicts p1
    const f2 = outcome(engine.recognize(req('final'))); // evicts p2
    const over = Array.from({ length: 6 }, () => outcome(engine.recognize(req('final')))); // 3rd…8th queued: over capacity
    const f9 = outcome(engine.recognize(req('final'))); // 4 × queueSize reached: refused
    expect(engine.stats()).toMatchObject({ queued: 8, droppedPartials: 3, finalsOverCapacity: 6, droppedFinals: 1 });
    expect(await Promise.all([p1, p2, p3, f9])).toEqual(['ASR_QUEUE_FULL', 'ASR_QUEUE_FULL', 'ASR_QUEUE_FULL', 'ASR_QUEUE_FULL']);
    expect(await Promise.all([inFlight, f1, f2, ...over])).toEqual(Array(9).fill('ok'));
    expect(engine.stats()).toMatchObject({ completed: 9, queued: 0 });
  });

  it('replaces a server killed mid-request and still answers', async () => {
    const engine = await start({ poolSize: 1 });
    const pid = engine.servers()[0]!.pid!;
    process.kill(pid, 'SIGSTOP'); // holds the request in flight until the kill
    const pending = engine.recognize(req('final'));
    expect(engine.stats().inFlight).toBe(1);
    process.kill(pid, 'SIGKILL');
    const result = await pending;
    expect(result.segments.length).toBeGreaterThan(0);
    expect(engine.stats()).toMatchObject({ restarts: 1, completed: 1, timeouts: 0, servers: 1 });
    const replacement = engine.servers()[0]!.pid!;
    expect(replacement).not.toBe(pid);
    expect(alive(replacement)).toBe(true);
  });

  it('times out a hung server, restarts it and retries the request', async () => {
    const engine = await start({ poolSize: 1, timeoutMs: 3000 });
    const pid = engine.servers()[0]!.pid!;
    process.kill(pid, 'SIGSTOP');
    const result = await engine.recognize(req('final'));
    expect(result.segments.length).toBeGreaterThan(0);
    expect(engine.stats()).toMatchObject({ timeouts: 1, restarts: 1, completed: 1 });
    await until(() => !alive(pid));
  });

  it('restarts a server that dies while idle', async () => {
    const engine = await start({ poolSize: 2 });
    const [a, b] = engine.servers().map((s) => s.pid!);
    process.kill(a!, 'SIGKILL');
    await until(() => engine.stats().restarts === 1 && engine.stats().servers === 2);
    const pids = engine.servers().map((s) => s.pid);
    expect(pids).toContain(b);
    expect(pids).not.toContain(a);
    const results = await Promise.all([engine.recognize(req('final')), engine.recognize(req('final'))]);
    expect(results).toHaveLength(2);
  });

  it('aborts a queued request at once and an in-flight one without killing its server', async () => {
    const engine = await start({ poolSize: 1 });
    const pid = engine.servers()[0]!.pid!;
    const running = new AbortController();
    const queued = new AbortController();
    const first = engine.recognize(req('partial', { signal: running.signal }));
    const second = engine.recognize(req('partial', { signal: queued.signal }));
    expect(engine.stats().queued).toBe(1);
    queued.abort();
    expect(engine.stats().queued).toBe(0);
    await expect(second).rejects.toMatchObject({ code: 'ASR_ABORTED' });
    running.abort();
    await expect(first).rejects.toMatchObject({ code: 'ASR_ABORTED' });
    const already = new AbortController();
    already.abort();
    await expect(engine.recognize(req('final', { signal: already.signal }))).rejects.toMatchObject({ code: 'ASR_ABORTED' });
    const after = await engine.recognize(req('final'));
    expect(after.segments.length).toBeGreaterThan(0);
    expect(engine.servers()[0]!.pid).toBe(pid);
    expect(engine.stats()).toMatchObject({ restarts: 0, aborted: 3, completed: 1 });
  });

  it('close() rejects pending work with ASR_CLOSED, stops its servers and is idempotent', async () => {
    const engine = await start({ poolSize: 1 });
    const pid = engine.servers()[0]!.pid!;
    const inFlight = engine.recognize(req('final')).catch((e: unknown) => e);
    const queued = engine.recognize(req('final')).catch((e: unknown) => e);
    const closing = engine.close();
    expect(engine.close()).toBe(closing);
    await closing;
    expect(await inFlight).toMatchObject({ code: 'ASR_CLOSED' });
    expect(await queued).toMatchObject({ code: 'ASR_CLOSED' });
    await expect(engine.recognize(req('final'))).rejects.toMatchObject({ code: 'ASR_CLOSED' });
    expect(alive(pid)).toBe(false);
    expect(engine.hasSpareCapacity()).toBe(false);
  });

  it('uses remote servers by URL', async () => {
    const remote = await LocalWhisperServer.start({ binary: whisper.binary, model: whisper.tinyModel, threads: 2 });
    try {
      const engine = await start({ servers: [remote.url] });
      expect(engine.servers()).toEqual([{ id: remote.url, pid: undefined, state: 'idle' }]);
      const result = await engine.recognize(req('final', { language: 'auto' }));
      expect(result.language).toMatch(/^[a-z]{2,3}$/);
    } finally {
      await remote.kill();
    }
  });

  it('fails with MODEL_MISSING when the model file is absent', async () => {
    await expect(WhisperEngine.start({ ...SETTINGS, ...LOCAL, modelPath: '/nonexistent/model.bin', binary: whisper.binary }, logger)).rejects.toMatchObject({ code: 'MODEL_MISSING' });
  });
});

describe('WhisperEngine retry policy (fake servers)', () => {
  let created = 0;

  /** A server that always fails as if its process had died. */
  const deadServer = (): WhisperBackend => {
    created++;
    return {
      id: `fake:${created}`,
      url: 'http://127.0.0.1:9',
      pid: undefined,
      exited: new Promise(() => undefined),
      transcribe: () => Promise.reject(new WhisperServerDown('ASR_FAILED', 'connection reset')),
      kill: async () => undefined,
      outputTail: () => 'fake output',
    };
  };

  it('retries once on a fresh server, then rejects ASR_FAILED', async () => {
    const engine = await WhisperEngine.create(async () => deadServer(), {
      poolSize: 1,
      queueSize: 4,
      timeoutMs: 1000,
      beamSize: 1,
      logger,
      restartBackoffMs: { initial: 1, max: 5 },
    });
    try {
      const err = await engine.recognize({ samples: new Int16Array(16000), language: 'en', task: 'transcribe', priority: 'final' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WhisperlineError);
      expect(err).toMatchObject({ code: 'ASR_FAILED' });
      expect(engine.stats()).toMatchObject({ restarts: 2, failed: 1, completed: 0 });
      expect(created).toBe(2); // the retry ran on a replacement
      await until(() => created === 3); // and the failed replacement is itself replaced
    } finally {
      await engine.close();
    }
  });
});
