import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sine } from '../../../test/support/signal.js';
import { ensureTestWhisper, speak, type TestWhisper } from '../../../test/support/whisper.js';
import { WhisperlineError } from '../../errors.js';
import { WHISPER_LANGUAGES } from '../languages.js';
import type { RecognitionResult } from '../recognizer.js';
import { encodeWav } from '../../audio/wav.js';
import { audioContextFor, LocalWhisperServer, mapVerboseJson, RemoteWhisperServer, WhisperHttpClient, WhisperServerDown, type Transcription } from './whisper-server.js';

const CODES = new Set(Object.values(WHISPER_LANGUAGES));

function noise(ms: number, amplitude = 0.2, seed = 1): Int16Array {
  const out = new Int16Array((16 * ms) | 0);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.round((s / 2 ** 32 - 0.5) * 2 * amplitude * 32767);
  }
  return out;
}

function expectWellFormed(result: Transcription | RecognitionResult, durationMs: number): void {
  expect(typeof result.text).toBe('string');
  expect(result.processingMs).toBeGreaterThan(0);
  expect(CODES.has(result.language)).toBe(true);
  for (const s of result.segments) {
    expect(s.startMs).toBeGreaterThanOrEqual(0);
    expect(s.endMs).toBeGreaterThanOrEqual(s.startMs);
    expect(s.endMs).toBeLessThanOrEqual(durationMs);
    expect(s.noSpeechProb).toBeGreaterThanOrEqual(0);
    expect(s.noSpeechProb).toBeLessThanOrEqual(1);
    expect(s.confidence).toBeGreaterThanOrEqual(0);
    expect(s.confidence).toBeLessThanOrEqual(1);
    for (const w of s.words ?? []) {
      expect(w.text.length).toBeGreaterThan(0);
      expect(w.startMs).toBeGreaterThanOrEqual(0);
      expect(w.endMs).toBeGreaterThanOrEqual(w.startMs);
      expect(w.endMs).toBeLessThanOrEqual(durationMs);
      expect(w.confidence).toBeGreaterThanOrEqual(0);
      expect(w.confidence).toBeLessThanOrEqual(1);
    }
  }
}

describe('audioContextFor', () => {
  it('sizes the encoder window to the audio plus one second, in whole 256-position blocks', () => {
    expect(audioContextFor(16000 * 3, 'auto')).toBe(256); // 3 s + 1 s = 200 positions
    expect(audioContextFor(16000 * 5, 'auto')).toBe(512); // 300 positions
    expect(audioContextFor(16000 * 20, 'auto')).toBe(1280); // 1050 positions
    expect(audioContextFor(16000 * 29, 'auto')).toBe(0); // past 1280: the full window
    expect(audioContextFor(16000 * 3, 0)).toBe(0);
    expect(audioContextFor(16000 * 3, 300)).toBe(512);
  });
});

describe('verbose_json mapping', () => {
  it('merges tokens into words, clamps times to the audio and derives confidence', () => {
    const mapped = mapVerboseJson(
      {
        language: 'german',
        segments: [
          {
            text: ' hallo welt',
            start: 0.3,
            end: 27.5,
            avg_logprob: Math.log(0.5),
            no_speech_prob: 0.1,
            words: [
              { word: ' hal', start: 0.3, end: 0.6, probability: 0.4 },
              { word: 'lo', start: 0.6, end: 0.9, probability: 0.8 },
              { word: ' welt', start: 1.0, end: 29, probability: 0.9 },
            ],
          },
          { text: ' x', start: 2, end: 2.5, avg_logprob: null, no_speech_prob: null },
        ],
      },
      'auto',
      2000,
    );
    expect(mapped.language).toBe('de');
    expect(mapped.text).toBe('hallo welt x');
    const [first, second] = mapped.segments;
    expect(first).toMatchObject({ text: 'hallo welt', startMs: 300, endMs: 2000, noSpeechProb: 0.1 });
    expect(first!.confidence).toBeCloseTo(0.5, 6);
    expect(first!.words).toEqual([
      { text: 'hallo', startMs: 300, endMs: 900, confidence: expect.closeTo(0.6, 6) as number },
      { text: 'welt', startMs: 1000, endMs: 2000, confidence: 0.9 },
    ]);
    expect(second).toMatchObject({ startMs: 2000, endMs: 2000, confidence: 0, noSpeechProb: 0 });
    expect(mapVerboseJson({ language: 'english', segments: [] }, 'fr', 1000).language).toBe('fr');
  });

  it('encodes 16 kHz mono 16-bit WAV', () => {
    const wav = encodeWav(new Int16Array([1, -1, 32767]), 16000);
    expect(wav.toString('ascii', 0, 4)).toBe('RIFF');
    expect(wav.readUInt32LE(24)).toBe(16000);
    expect(wav.readUInt16LE(22)).toBe(1);
    expect(wav.readUInt32LE(40)).toBe(6);
    expect(wav.readInt16LE(48)).toBe(32767);
  });
});

describe('whisper-server (real whisper.cpp, tiny random model)', () => {
  let whisper: TestWhisper;
  let server: LocalWhisperServer;
  let speech: Int16Array;
  const started: LocalWhisperServer[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'whisperline-server-'));

  const startServer = async (): Promise<LocalWhisperServer> => {
    const s = await LocalWhisperServer.start({ binary: whisper.binary, model: whisper.tinyModel, threads: 2 });
    started.push(s);
    return s;
  };

  beforeAll(async () => {
    whisper = await ensureTestWhisper();
    server = await startServer();
    speech = speak('Thank you for calling. How can I help you today?');
  }, 600_000);

  afterAll(async () => {
    await Promise.all(started.map((s) => s.kill(true)));
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers /health once the model is loaded and transcribes speech', async () => {
    expect(server.pid).toBeGreaterThan(0);
    expect(await new WhisperHttpClient(server.url).healthy()).toBe(true);
    const durationMs = Math.round(speech.length / 16);
    expect(durationMs).toBeGreaterThan(1500);
    const result = await server.transcribe({ samples: speech, language: 'auto', task: 'transcribe' }, { timeoutMs: 30_000 });
    expectWellFormed(result, durationMs);
    expect(result.segments.length).toBeGreaterThan(0);
    // whisper.cpp gives per-token times and probabilities: they come back as words.
    expect(result.segments.some((s) => (s.words?.length ?? 0) > 0)).toBe(true);
  });

  it('decodes the same audio the same way whatever window the previous request used', async () => {
    // Text, times and token probabilities (stale encoder output shows in the probabilities first);
    // not the no-speech probability, which whisper.cpp computes in a way that varies in the 5th digit.
    const decode = async (audioContext: number): Promise<string> => {
      const { segments } = await server.transcribe({ samples: speech, language: 'en', task: 'transcribe' }, { timeoutMs: 30_000, audioContext });
      return JSON.stringify(segments.map(({ noSpeechProb: _, ...s }) => s));
    };
    const auto = audioContextFor(speech.length, 'auto');
    const first = await decode(auto);
    await decode(0);
    await decode(1024);
    expect(await decode(auto)).toBe(first);
  });

  it('accepts a fixed language, translate, a prompt and beam search', async () => {
    const result = await server.transcribe(
      { samples: speech, language: 'de', task: 'translate', prompt: 'Kundenservice' },
      { timeoutMs: 30_000, beamSize: 2 },
    );
    expectWellFormed(result, Math.round(speech.length / 16));
    expect(result.language).toBe('de');
  });

  it('handles a tone and noise (2 s each)', async () => {
    for (const samples of [sine(440, 16000, 2000, 0.3), noise(2000)]) {
      const result = await server.transcribe({ samples, language: 'en', task: 'transcribe' }, { timeoutMs: 30_000 });
      expectWellFormed(result, 2000);
      expect(result.language).toBe('en');
    }
  });

  it('rejects ASR_ABORTED when the caller aborts, and keeps serving', async () => {
    const aborted = new AbortController();
    aborted.abort();
    await expect(server.transcribe({ samples: speech, language: 'en', task: 'transcribe' }, { timeoutMs: 30_000, signal: aborted.signal })).rejects.toMatchObject({ code: 'ASR_ABORTED' });
    const midway = new AbortController();
    const pending = server.transcribe({ samples: speech, language: 'en', task: 'transcribe' }, { timeoutMs: 30_000, signal: midway.signal });
    midway.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ASR_ABORTED' });
    const after = await server.transcribe({ samples: speech, language: 'en', task: 'transcribe' }, { timeoutMs: 30_000 });
    expect(after.segments.length).toBeGreaterThan(0);
  });

  it('maps a non-200 answer to a non-retryable ASR_FAILED', async () => {
    const wrongPath = new WhisperHttpClient(`${server.url}/nope`);
    const err = await wrongPath.transcribe({ samples: speech, language: 'en', task: 'transcribe' }, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WhisperlineError);
    expect(err).toMatchObject({ code: 'ASR_FAILED', retryable: false });
    expect(err).not.toBeInstanceOf(WhisperServerDown);
  });

  it('works as a remote server by URL', async () => {
    const remote = await RemoteWhisperServer.connect(server.url, 10_000);
    expect(remote.pid).toBeUndefined();
    const result = await remote.transcribe({ samples: speech, language: 'auto', task: 'transcribe' }, { timeoutMs: 30_000 });
    expectWellFormed(result, Math.round(speech.length / 16));
  });

  it('fails a request at once when its process is killed', async () => {
    const victim = await startServer();
    process.kill(victim.pid!, 'SIGSTOP');
    const pending = victim.transcribe({ samples: speech, language: 'en', task: 'transcribe' }, { timeoutMs: 60_000 });
    process.kill(victim.pid!, 'SIGKILL');
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WhisperServerDown);
    expect(err).toMatchObject({ code: 'ASR_FAILED', retryable: true });
    expect(await victim.exited).toMatchObject({ signal: 'SIGKILL' });
    expect(victim.alive).toBe(false);
  });

  it('times out a hung process with ASR_TIMEOUT', async () => {
    const victim = await startServer();
    process.kill(victim.pid!, 'SIGSTOP');
    const err = await victim.transcribe({ samples: speech, language: 'en', task: 'transcribe' }, { timeoutMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WhisperServerDown);
    expect(err).toMatchObject({ code: 'ASR_TIMEOUT', retryable: true });
    await victim.kill(true);
    expect(victim.alive).toBe(false);
  });

  it('reports a missing model and an unloadable one with the server output', async () => {
    await expect(LocalWhisperServer.start({ binary: whisper.binary, model: join(dir, 'absent.bin'), threads: 1 })).rejects.toMatchObject({ code: 'MODEL_MISSING' });
    const bad = join(dir, 'bad.bin');
    writeFileSync(bad, Buffer.alloc(1024, 7));
    const err = (await LocalWhisperServer.start({ binary: whisper.binary, model: bad, threads: 1 }).catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({ code: 'ASR_FAILED' });
    expect(err.message).toMatch(/bad magic|failed to initialize/);
  });
});
