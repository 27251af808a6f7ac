import { describe, expect, it } from 'vitest';
import { describeSynthesizerContract } from '../../../test/contracts/synthesizer.js';
import { EspeakSynthesizer } from './espeak.js';

// The real espeak-ng (installed by .ci/setup), through the shared provider contract.
describeSynthesizerContract('espeak-ng', () => ({ synthesizer: new EspeakSynthesizer(), language: 'en', unsupportedLanguage: 'xx' }));

describe('EspeakSynthesizer', () => {
  it('speaks other languages by their code, and a named voice', async () => {
    const s = new EspeakSynthesizer();
    expect(await s.supports('de')).toBe(true);
    let samples = 0;
    for await (const chunk of s.synthesize({ text: 'Guten Tag.', language: 'de' })) samples += chunk.samples.length;
    expect(samples).toBeGreaterThan(5000);
    for await (const chunk of s.synthesize({ text: 'Hello.', voice: 'en-us' })) expect(chunk.sampleRate).toBe(22050);
  });

  it('refuses a voice name that could be an option, and reports a missing binary as TTS_FAILED', async () => {
    const s = new EspeakSynthesizer();
    await expect(s.synthesize({ text: 'x', voice: '--help' })[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'TTS_INVALID' });
    const missing = new EspeakSynthesizer({ binary: '/nonexistent/espeak-ng' });
    await expect(missing.supports('en')).rejects.toMatchObject({ code: 'TTS_FAILED' });
  });
});
