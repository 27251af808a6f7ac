/**
 * The provider contracts against the real engines where they run here: whisper's translate task
 * on whisper.cpp (the tiny random-weight model: shape, languages and flow, not words).
 */
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import type { WhisperEngine } from '../../src/asr/whisper/engine.js';
import { WhisperTranslator } from '../../src/translation/whisper.js';
import { describeTranslatorContract } from '../contracts/translator.js';
import { randomModelConfig, speak, startTinyEngine } from '../support/whisper.js';

let engine: WhisperEngine;
let audio: Int16Array;

beforeAll(async () => {
  engine = await startTinyEngine(randomModelConfig(), pino({ level: 'silent' }));
  audio = speak('Ich habe eine Frage zu meiner Rechnung.', { voice: 'de' });
}, 300_000);

afterAll(async () => {
  await engine?.close();
});

describeTranslatorContract('whisper (whisper.cpp)', () => ({
  translator: new WhisperTranslator(engine),
  request: { text: 'Ich habe eine Frage zu meiner Rechnung.', sourceLanguage: 'de', targetLanguage: 'en', samples: audio },
  unsupported: { sourceLanguage: 'de', targetLanguage: 'fr' },
}));
