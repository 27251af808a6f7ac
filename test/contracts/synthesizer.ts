/**
 * The contract every `Synthesizer` provider must pass (see src/tts/synthesizer.ts). A provider's
 * test calls `describeSynthesizerContract` with a factory; stand-ins for HTTP providers run it
 * against their local servers the same way.
 */
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../support/errors.js';
import type { SynthesisRequest, SynthesizedAudio, Synthesizer } from '../../src/tts/synthesizer.js';
import { rmsDb } from '../support/signal.js';

export interface SynthesizerUnderTest {
  readonly synthesizer: Synthesizer;
  /** A language it speaks, and one it does not. */
  readonly language: string;
  readonly unsupportedLanguage: string;
}

interface Collected {
  readonly chunks: SynthesizedAudio[];
  /** performance.now() of each chunk's arrival. */
  readonly at: number[];
  readonly startedAt: number;
}

async function collect(s: Synthesizer, request: SynthesisRequest, onChunk?: (n: number) => void): Promise<Collected> {
  const chunks: SynthesizedAudio[] = [];
  const at: number[] = [];
  const startedAt = performance.now();
  for await (const chunk of s.synthesize(request)) {
    chunks.push(chunk);
    at.push(performance.now());
    onChunk?.(chunks.length);
  }
  return { chunks, at, startedAt };
}

const seconds = (c: Collected): number => c.chunks.reduce((n, x) => n + x.samples.length / x.sampleRate, 0);
const all = (c: Collected): Int16Array => {
  const out = new Int16Array(c.chunks.reduce((n, x) => n + x.samples.length, 0));
  let at = 0;
  for (const x of c.chunks) {
    out.set(x.samples, at);
    at += x.samples.length;
  }
  return out;
};


export function describeSynthesizerContract(name: string, setup: () => SynthesizerUnderTest): void {
  describe(`Synthesizer contract: ${name}`, () => {
    it('names itself and says what it can do', () => {
      const { synthesizer } = setup();
      expect(synthesizer.name).toMatch(/^[a-z0-9.-]+$/);
      expect(typeof synthesizer.capabilities.streaming).toBe('boolean');
      expect(typeof synthesizer.capabilities.ssml).toBe('boolean');
    });

    it('speaks a sentence: audible PCM in order, one sample rate, a plausible length', async () => {
      const { synthesizer, language } = setup();
      expect(await synthesizer.supports(language)).toBe(true);
      const c = await collect(synthesizer, { text: 'Thank you for calling. How can I help you today?', language });
      expect(c.chunks.length).toBeGreaterThan(0);
      const rates = new Set(c.chunks.map((x) => x.sampleRate));
      expect(rates.size).toBe(1);
      const [rate] = [...rates];
      expect(rate).toBeGreaterThanOrEqual(8000);
      expect(rate).toBeLessThanOrEqual(48000);
      expect(c.chunks.every((x) => x.samples instanceof Int16Array && x.samples.length > 0)).toBe(true);
      expect(seconds(c)).toBeGreaterThan(1.0);
      expect(seconds(c)).toBeLessThan(10);
      expect(rmsDb(all(c))).toBeGreaterThan(-40);
    });

    it('streams: the first audio comes before the whole text is spoken', async () => {
      const { synthesizer, language } = setup();
      if (!synthesizer.capabilities.streaming) return;
      const text = Array.from({ length: 6 }, (_, i) => `This is sentence number ${i + 1} of a longer prompt.`).join(' ');
      const c = await collect(synthesizer, { text, language });
      expect(c.chunks.length).toBeGreaterThan(2);
      // Arrivals are spread: the first chunk is not the end of the work.
      expect(c.at[0]!).toBeLessThan(c.at.at(-1)!);
    });

    it('refuses what it cannot do with TTS_INVALID: empty text, a language it lacks', async () => {
      const { synthesizer, language, unsupportedLanguage } = setup();
      expect(await codeOf(collect(synthesizer, { text: '   ', language }))).toBe('TTS_INVALID');
      expect(await synthesizer.supports(unsupportedLanguage)).toBe(false);
      expect(await codeOf(collect(synthesizer, { text: 'hello', language: unsupportedLanguage }))).toBe('TTS_INVALID');
    });

    it('stops when aborted (TTS_ABORTED), before or during the stream, and when the consumer stops reading', async () => {
      const { synthesizer, language } = setup();
      const before = new AbortController();
      before.abort();
      expect(await codeOf(collect(synthesizer, { text: 'hello', language, signal: before.signal }))).toBe('TTS_ABORTED');
      const during = new AbortController();
      const text = Array.from({ length: 20 }, () => 'A long prompt that takes a while to speak.').join(' ');
      let received = 0;
      expect(await codeOf(collect(synthesizer, { text, language, signal: during.signal }, (n) => (received = n) === 1 && during.abort()))).toBe('TTS_ABORTED');
      expect(received).toBeGreaterThanOrEqual(1);
      // Breaking out of the loop ends the work without an error.
      let taken = 0;
      for await (const chunk of synthesizer.synthesize({ text, language })) {
        expect(chunk.samples.length).toBeGreaterThan(0);
        if (++taken === 2) break;
      }
      expect(taken).toBe(2);
    });

    it('serves concurrent requests independently', async () => {
      const { synthesizer, language } = setup();
      const [short, long] = await Promise.all([
        collect(synthesizer, { text: 'Yes.', language }),
        collect(synthesizer, { text: 'Your call is important to us. Please stay on the line.', language }),
      ]);
      expect(seconds(short)).toBeGreaterThan(0.1);
      expect(seconds(long)).toBeGreaterThan(seconds(short) * 2);
    });

    it('takes SSML when it says it does: a break makes the speech longer', async () => {
      const { synthesizer, language } = setup();
      if (!synthesizer.capabilities.ssml) return;
      const plain = await collect(synthesizer, { text: '<speak>Hello world.</speak>', language, ssml: true });
      const paused = await collect(synthesizer, { text: '<speak>Hello <break time="1500ms"/> world.</speak>', language, ssml: true });
      expect(seconds(paused) - seconds(plain)).toBeGreaterThan(1.0);
    });
  });
}
