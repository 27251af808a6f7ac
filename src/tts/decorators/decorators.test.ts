import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { describeSynthesizerContract } from '../../../test/contracts/synthesizer.js';
import { codeOf } from '../../../test/support/errors.js';
import { startJambonzStandIn, type JambonzStandIn } from '../../../test/support/stand-ins/jambonz-tts.js';
import { startOpenAiStandIn, type OpenAiStandIn } from '../../../test/support/stand-ins/openai-speech.js';
import type { WhisperlineError } from '../../errors.js';
import { JambonzTtsSynthesizer } from '../jambonz/jambonz.js';
import { OpenAiSpeechSynthesizer } from '../openai/openai.js';
import type { SynthesisRequest, SynthesizedAudio, Synthesizer } from '../synthesizer.js';
import { spokenBy, wasCached } from './attribution.js';
import { CachedSynthesizer } from './cache.js';
import { FallbackSynthesizer } from './fallback.js';
import { MeteredSynthesizer, SynthesisMetrics } from './metrics.js';
import { TimeoutSynthesizer } from './timeout.js';

// The decorators around the real providers, each against its stand-in server (real espeak-ng
// speech). What the tests assert is what the servers saw (request counts, connections closed
// early) and what came out, never how long anything took.
let openai: OpenAiStandIn;
let jambonz: JambonzStandIn;
const dirs: string[] = [];
beforeAll(async () => {
  [openai, jambonz] = await Promise.all([startOpenAiStandIn(), startJambonzStandIn({ apiKey: 'jb' })]);
});
afterAll(async () => {
  await Promise.all([openai.close(), jambonz.close()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
beforeEach(() => {
  openai.behaviour = {};
  jambonz.behaviour = {};
});

const openaiProvider = (): OpenAiSpeechSynthesizer => new OpenAiSpeechSynthesizer({ baseUrl: openai.url, model: 'tts-1', voice: 'alloy', languages: ['en'] });
const jambonzProvider = (languages = ['en', 'de']): JambonzTtsSynthesizer => new JambonzTtsSynthesizer({ url: jambonz.url, apiKey: 'jb', languages, ssml: true });
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'whisperline-tts-cache-'));
  dirs.push(d);
  return d;
};

describeSynthesizerContract('fallback (first provider failing with HTTP 500)', () => {
  openai.behaviour = { fail: { status: 500, body: { error: { message: 'down' } } } };
  jambonz.behaviour = {};
  return { synthesizer: new FallbackSynthesizer([openaiProvider(), jambonzProvider()], { firstAudioMs: 5000 }), language: 'en', unsupportedLanguage: 'xx' };
});
describeSynthesizerContract('timeout', () => ({ synthesizer: new TimeoutSynthesizer(openaiProvider(), { firstAudioMs: 5000 }), language: 'en', unsupportedLanguage: 'xx' }));
describeSynthesizerContract('prompt cache (memory and disk)', () => ({ synthesizer: new CachedSynthesizer(jambonzProvider(), { directory: tempDir() }), language: 'en', unsupportedLanguage: 'xx' }));
describeSynthesizerContract('metered cache over a fallback', () => ({
  synthesizer: new MeteredSynthesizer(new CachedSynthesizer(new FallbackSynthesizer([openaiProvider(), jambonzProvider()]))),
  language: 'en',
  unsupportedLanguage: 'xx',
}));

async function collect(s: Synthesizer, request: Partial<SynthesisRequest> = {}): Promise<SynthesizedAudio[]> {
  const out: SynthesizedAudio[] = [];
  for await (const chunk of s.synthesize({ text: 'Please hold the line.', language: 'en', ...request })) out.push(chunk);
  return out;
}
async function failure(p: Promise<unknown>): Promise<WhisperlineError> {
  try {
    await p;
  } catch (err) {
    return err as WhisperlineError;
  }
  throw new Error('no error');
}
const joined = (chunks: SynthesizedAudio[]): Int16Array => {
  const out = new Int16Array(chunks.reduce((n, c) => n + c.samples.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c.samples, at);
    at += c.samples.length;
  }
  return out;
};
const never = new Promise<void>(() => undefined);

/** A provider in the test: yields `chunks` (advancing `clock` first), or hangs, ignoring aborts. */
function fake(name: string, behaviour: { chunks?: number; before?: () => void; hang?: boolean; failAfter?: number } = {}): Synthesizer & { calls: number } {
  const s = {
    name,
    calls: 0,
    capabilities: { streaming: true, ssml: false },
    supports: () => Promise.resolve(true),
    synthesize(): AsyncIterable<SynthesizedAudio> {
      s.calls++;
      return (async function* () {
        if (behaviour.hang) await never;
        behaviour.before?.();
        for (let i = 0; i < (behaviour.chunks ?? 3); i++) {
          if (behaviour.failAfter === i) throw new Error('broken');
          yield { samples: new Int16Array(160).fill(1000), sampleRate: 8000 };
        }
      })();
    },
  };
  return s;
}

describe('FallbackSynthesizer', () => {
  it('asks the next provider when the first times out, and says which one spoke', async () => {
    openai.behaviour = { holdFirstByte: never };
    const spoke: string[] = [];
    const failed: string[] = [];
    const before = { openai: openai.requests.length, jambonz: jambonz.requests.length };
    const chain = new FallbackSynthesizer([openaiProvider(), jambonzProvider()], {
      firstAudioMs: 300,
      onProvider: (p) => spoke.push(p),
      onFailure: (p, e) => failed.push(`${p} ${e.code} ${e.message}`),
    });
    const chunks = await collect(chain);
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.every((c) => spokenBy(c) === 'jambonz-tts')).toBe(true);
    expect(spoke).toEqual(['jambonz-tts']);
    expect(failed).toEqual([expect.stringMatching(/^openai-speech TTS_FAILED .*timed out/)]);
    expect(openai.requests.length - before.openai).toBe(1);
    expect(jambonz.requests.length - before.jambonz).toBe(1);
    // The abandoned request was torn down, not left to finish.
    await openai.requests.at(-1)!.over;
    expect(openai.requests.at(-1)!.closedEarly).toBe(true);
  });

  it('does not change voices mid-sentence: a failure after audio started is TTS_FAILED and the next provider is not asked', async () => {
    openai.behaviour = { dropAfterPieces: 2, pauseMs: 1 };
    const before = jambonz.requests.length;
    const got: SynthesizedAudio[] = [];
    const chain = new FallbackSynthesizer([openaiProvider(), jambonzProvider()]);
    const error = await failure((async () => {
      for await (const c of chain.synthesize({ text: 'A sentence that the first provider will not finish speaking.', language: 'en' })) got.push(c);
    })());
    expect(error.code).toBe('TTS_FAILED');
    expect(error.message).toMatch(/openai-speech failed after its audio had started/);
    expect(got.length).toBeGreaterThan(0);
    expect(got.every((c) => spokenBy(c) === 'openai-speech')).toBe(true);
    expect(jambonz.requests.length).toBe(before);
  });

  it("routes by language without asking a provider that lacks it; the caller's abort ends the chain", async () => {
    const before = { openai: openai.requests.length, jambonz: jambonz.requests.length };
    const chunks = await collect(new FallbackSynthesizer([openaiProvider(), jambonzProvider()]), { text: 'Guten Tag.', language: 'de' });
    expect(spokenBy(chunks[0]!)).toBe('jambonz-tts');
    expect(openai.requests.length).toBe(before.openai);
    openai.behaviour = { holdFirstByte: never };
    const controller = new AbortController();
    const pending = codeOf(collect(new FallbackSynthesizer([openaiProvider(), jambonzProvider()]), { signal: controller.signal }));
    while (openai.requests.length === before.openai) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    expect(await pending).toBe('TTS_ABORTED');
    expect(jambonz.requests.length).toBe(before.jambonz + 1);
  });

  it('fails TTS_INVALID when no provider can take the request, TTS_FAILED (naming each) when they all broke', async () => {
    const invalid = await failure(collect(new FallbackSynthesizer([openaiProvider(), jambonzProvider(['de'])]), { language: 'fr' }));
    expect(invalid.code).toBe('TTS_INVALID');
    openai.behaviour = { fail: { status: 503, body: { error: { message: 'overloaded' } } } };
    jambonz.behaviour = { fail: { status: 500, text: 'vendor down' } };
    const broke = await failure(collect(new FallbackSynthesizer([openaiProvider(), jambonzProvider()])));
    expect(broke).toMatchObject({ code: 'TTS_FAILED', retryable: true });
    expect(broke.message).toMatch(/openai-speech: .*HTTP 503: overloaded; jambonz-tts: .*HTTP 500: vendor down/);
  });
});

describe('TimeoutSynthesizer', () => {
  it('fails TTS_FAILED "timed out" when the first audio does not come, and ends the request', async () => {
    openai.behaviour = { holdFirstByte: never };
    const error = await failure(collect(new TimeoutSynthesizer(openaiProvider(), { firstAudioMs: 200 })));
    expect(error).toMatchObject({ code: 'TTS_FAILED', retryable: true });
    expect(error.message).toMatch(/openai-speech timed out: no audio within 200 ms/);
    await openai.requests.at(-1)!.over;
    expect(openai.requests.at(-1)!.closedEarly).toBe(true);
  });

  it('times out a provider that ignores its abort too', async () => {
    const stuck = fake('stuck', { hang: true });
    expect(await codeOf(collect(new TimeoutSynthesizer(stuck, { firstAudioMs: 100 })))).toBe('TTS_FAILED');
    expect(stuck.calls).toBe(1);
  });

  it('lets a stream run once its first audio is out, even when it pauses past the deadline', async () => {
    let release!: () => void;
    openai.behaviour = { holdAfterFirstPiece: new Promise<void>((r) => (release = r)) };
    const timed = new TimeoutSynthesizer(openaiProvider(), { firstAudioMs: 100 });
    const done = collect(timed, { text: 'A sentence with a pause in its delivery from the server.' });
    while (openai.requests.at(-1)?.sent.length !== 1) await new Promise((r) => setTimeout(r, 5));
    // Held well past the deadline after the first piece (a hold, not a measurement).
    setTimeout(release, 400);
    const chunks = await done;
    expect(openai.requests.at(-1)!.sentAll).toBe(true);
    expect(joined(chunks).length * 2).toBe(Buffer.concat(openai.requests.at(-1)!.sent).length);
  });
});

describe('CachedSynthesizer', () => {
  it('replays a prompt without asking the provider, from memory and then from disk in a new instance', async () => {
    const dir = tempDir();
    const cache = new CachedSynthesizer(jambonzProvider(), { directory: dir });
    const first = await collect(cache);
    const asked = jambonz.requests.length;
    const again = await collect(cache);
    expect(jambonz.requests.length).toBe(asked);
    expect(joined(again)).toEqual(joined(first));
    expect(again.every((c) => wasCached(c) && spokenBy(c) === 'jambonz-tts' && c.sampleRate === first[0]!.sampleRate)).toBe(true);
    expect(cache.stats()).toMatchObject({ hits: 1, memoryHits: 1, misses: 1, stored: 1 });
    await cache.flush();
    // Written atomically: one file named by the key's hash, no temporary left, no text in the name.
    expect(readdirSync(dir)).toEqual([`${cache.keyOf({ text: 'Please hold the line.', language: 'en' })}.pcm`]);
    const restarted = new CachedSynthesizer(jambonzProvider(), { directory: dir, memoryBytes: 0 });
    const fromDisk = await collect(restarted);
    expect(jambonz.requests.length).toBe(asked);
    expect(joined(fromDisk)).toEqual(joined(first));
    expect(restarted.stats()).toMatchObject({ hits: 1, diskHits: 1, misses: 0 });
  });

  it('keys by voice, language and SSML as well as text', async () => {
    const cache = new CachedSynthesizer(jambonzProvider());
    await collect(cache);
    const asked = jambonz.requests.length;
    await collect(cache, { voice: 'en-GB-Standard-B' });
    await collect(cache, { language: 'de' });
    await collect(cache, { ssml: true });
    expect(jambonz.requests.length).toBe(asked + 3);
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 4 });
  });

  it('keeps only complete syntheses: not an aborted, failed or abandoned one', async () => {
    const cache = new CachedSynthesizer(openaiProvider());
    const text = 'A prompt that is interrupted before the end of its audio.';
    const controller = new AbortController();
    expect(await codeOf((async () => {
      for await (const _ of cache.synthesize({ text, signal: controller.signal })) controller.abort();
    })())).toBe('TTS_ABORTED');
    for await (const _ of cache.synthesize({ text })) break;
    openai.behaviour = { dropAfterPieces: 1, pauseMs: 1 };
    expect(await codeOf(collect(cache, { text }))).toBe('TTS_FAILED');
    openai.behaviour = {};
    const asked = openai.requests.length;
    await collect(cache, { text });
    expect(openai.requests.length).toBe(asked + 1);
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 4, stored: 1 });
  });

  it('bounds memory (least recently used out) and disk (oldest file out)', async () => {
    const dir = tempDir();
    // Room for one short prompt in each tier, not two (measured on a first cache).
    const probe = new CachedSynthesizer(jambonzProvider());
    await collect(probe, { text: 'First prompt.' });
    const room = Math.round(probe.stats().memoryBytes * 1.5);
    const cache = new CachedSynthesizer(jambonzProvider(), { directory: dir, memoryBytes: room, diskBytes: room });
    await collect(cache, { text: 'First prompt.' });
    await cache.flush();
    await collect(cache, { text: 'Second prompt.' });
    await cache.flush();
    const stats = cache.stats();
    expect(stats.memoryEntries).toBe(1);
    expect(stats.diskEntries).toBe(1);
    expect(stats.evictions).toBeGreaterThanOrEqual(2);
    expect(readdirSync(dir)).toEqual([`${cache.keyOf({ text: 'Second prompt.', language: 'en' })}.pcm`]);
    const asked = jambonz.requests.length;
    await collect(cache, { text: 'Second prompt.' });
    expect(jambonz.requests.length).toBe(asked);
    await collect(cache, { text: 'First prompt.' });
    expect(jambonz.requests.length).toBe(asked + 1);
  });
});

describe('MeteredSynthesizer', () => {
  it('times the first audio on the clock it is given, and counts completions, stops and failures', async () => {
    let clock = 1000;
    const metered = new MeteredSynthesizer(fake('steady', { before: () => (clock += 120) }), { now: () => clock });
    await collect(metered);
    for await (const _ of metered.synthesize({ text: 'x' })) break;
    const broken = new MeteredSynthesizer(fake('broken', { failAfter: 0 }), { metrics: metered.metrics, now: () => clock });
    // Errors pass through as they are.
    await expect(collect(broken)).rejects.toThrow('broken');
    const stats = metered.stats();
    expect(stats.providers.steady).toMatchObject({ requests: 2, completed: 1, stopped: 1, failures: 0 });
    expect(stats.providers.steady!.firstAudioMs).toMatchObject({ count: 2, sum: 240, max: 120 });
    // 120 ms falls in the (100, 250] bucket.
    expect(stats.providers.steady!.firstAudioMs.counts[2]).toBe(2);
    // Counted by code: an untyped error is a bug (INTERNAL).
    expect(stats.providers.broken).toMatchObject({ requests: 1, failures: 1, failuresByCode: { INTERNAL: 1 } });
  });

  it('counts failures against the provider that had them inside a fallback, who spoke, and cache hits and misses', async () => {
    openai.behaviour = { fail: { status: 500, body: { error: { message: 'down' } } } };
    const metrics = new SynthesisMetrics();
    const stack = new MeteredSynthesizer(
      new CachedSynthesizer(new FallbackSynthesizer([new MeteredSynthesizer(openaiProvider(), { metrics }), new MeteredSynthesizer(jambonzProvider(), { metrics })]), { metrics }),
      { metrics },
    );
    await collect(stack);
    await collect(stack);
    const stats = stack.stats();
    expect(stats.providers['openai-speech']).toMatchObject({ requests: 1, failures: 1, failuresByCode: { TTS_FAILED: 1 } });
    expect(stats.providers['jambonz-tts']).toMatchObject({ requests: 1, completed: 1 });
    expect(stats.providers.fallback).toMatchObject({ requests: 2, completed: 2 });
    // Only the synthesis is timed, not the replay.
    expect(stats.providers.fallback!.firstAudioMs.count).toBe(1);
    expect(stats.spokenBy['jambonz-tts']).toBe(3);
    expect(stats.cache).toEqual({ hits: 1, misses: 1 });
  });
});
