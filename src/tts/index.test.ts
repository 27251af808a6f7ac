/**
 * The configured synthesizer chain (`tts.*` → createSynthesizers): fallback in the configured
 * order with each provider's first-audio deadline, a rule's provider first, replays from the
 * prompt cache keyed by who spoke, and the metrics over it all. Against the OpenAI speech
 * stand-in (test/support/stand-ins) and espeak-ng for real.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TtsConfig } from '../config/schema.js';
import { startOpenAiStandIn, type OpenAiStandIn } from '../../test/support/stand-ins/openai-speech.js';
import { spokenBy, wasCached } from './decorators/attribution.js';
import { createSynthesizers } from './index.js';
import type { SynthesizedAudio, Synthesizer } from './synthesizer.js';

const log = pino({ level: 'silent' });
let kokoro: OpenAiStandIn;
const dir = mkdtempSync(join(tmpdir(), 'wl-tts-set-'));

beforeAll(async () => {
  kokoro = await startOpenAiStandIn();
});
afterAll(async () => {
  await kokoro?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function speak(s: Synthesizer, text: string): Promise<SynthesizedAudio[]> {
  const out: SynthesizedAudio[] = [];
  for await (const c of s.synthesize({ text, language: 'en' })) out.push(c);
  return out;
}

const config = (over: Partial<TtsConfig> = {}): TtsConfig => ({
  providers: [
    { name: 'kokoro', type: 'openai', baseUrl: kokoro.url, model: 'kokoro', voice: 'alloy', responseFormat: 'pcm' },
    { name: 'espeak', type: 'espeak-ng' },
  ],
  timeoutMs: 10_000,
  cache: { memoryBytes: 8 << 20, directory: dir, diskBytes: 64 << 20 },
  serve: { apiKeys: [], sampleRate: 8000 },
  ...over,
});

describe('the configured synthesizers', () => {
  it('speak with the first provider, by its configured name; a replay comes from the cache without asking it again', async () => {
    const set = createSynthesizers(config(), log);
    const before = kokoro.requests.length;
    const first = await speak(set.for(), 'Your call is important to us.');
    expect(spokenBy(first[0]!)).toBe('kokoro');
    expect(kokoro.requests.length).toBe(before + 1);
    const again = await speak(set.for(), 'Your call is important to us.');
    expect(wasCached(again[0]!)).toBe(true);
    expect(spokenBy(again[0]!)).toBe('kokoro');
    expect(kokoro.requests.length).toBe(before + 1);
    // Written to disk (in the background), under the provider's own directory.
    await set.flush();
    expect(readdirSync(join(dir, 'kokoro')).length).toBeGreaterThanOrEqual(1);
    expect(set.metrics.stats()).toMatchObject({ cache: { hits: 1 } });
  });

  it('fall back to the next provider when the first fails, and put a rule\'s provider first', async () => {
    const set = createSynthesizers(config({ cache: { memoryBytes: 0, directory: null, diskBytes: 0 } }), log);
    kokoro.behaviour = { fail: { status: 500, body: { error: { message: 'model server restarting', type: 'server_error' } } } };
    try {
      const spoken = await speak(set.for(), 'Please hold.');
      expect(spokenBy(spoken[0]!)).toBe('espeak');
    } finally {
      kokoro.behaviour = {};
    }
    const before = kokoro.requests.length;
    const byRule = await speak(set.for('espeak'), 'Please hold for the next agent.');
    expect(spokenBy(byRule[0]!)).toBe('espeak');
    expect(kokoro.requests.length).toBe(before);
    expect(() => set.for('polly')).toThrow(/no synthesizer named "polly" in tts.providers \(kokoro, espeak\)/);
  });
});
