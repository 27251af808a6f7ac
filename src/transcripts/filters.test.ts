import { describe, expect, it } from 'vitest';
import type { RecognitionResult } from '../asr/recognizer.js';
import { collapseRepetitions, HallucinationFilter, levelDbfs, normalizePhrase } from './filters.js';

const filter = new HallucinationFilter({
  noSpeechThreshold: 0.6,
  silencePhrases: ['Thank you.', 'you'],
  lowEnergyDbfs: -45,
  maxRepeats: 3,
});

const result = (segments: [string, number][]): RecognitionResult => ({
  text: segments.map(([t]) => t).join(''),
  language: 'en',
  segments: segments.map(([text, noSpeechProb], i) => ({ text, noSpeechProb, confidence: 0.9, startMs: i * 1000, endMs: i * 1000 + 900 })),
  processingMs: 1,
  queuedMs: 0,
});

const quiet = new Int16Array(16000).fill(20); // about -64 dBFS
const loud = Int16Array.from({ length: 16000 }, (_, i) => Math.round(8000 * Math.sin(i / 3)));

describe('HallucinationFilter', () => {
  it('keeps ordinary speech', () => {
    expect(filter.apply(result([[' I would like to pay my bill.', 0.01]]), loud)).toMatchObject({ keep: true, text: 'I would like to pay my bill.' });
  });

  it('drops results whose every segment is probably not speech, and only those segments otherwise', () => {
    expect(filter.apply(result([[' hello', 0.9]]), loud)).toEqual({ keep: false, reason: 'no-speech' });
    const v = filter.apply(result([[' hello', 0.1], [' ghost', 0.95]]), loud);
    expect(v).toMatchObject({ keep: true, text: 'hello' });
  });

  it('drops known silence phrases on quiet audio but keeps them when someone really says them', () => {
    expect(filter.apply(result([[' Thank you.', 0.2]]), quiet)).toEqual({ keep: false, reason: 'silence-phrase' });
    expect(filter.apply(result([[' Thank you.', 0.2]]), loud)).toMatchObject({ keep: true, text: 'Thank you.' });
  });

  it('removes non-speech annotations and drops what is left empty', () => {
    expect(filter.apply(result([[' [BLANK_AUDIO]', 0.1]]), loud)).toEqual({ keep: false, reason: 'empty' });
    expect(filter.apply(result([[' (music) hello ♪♪', 0.1]]), loud)).toMatchObject({ keep: true, text: 'hello' });
  });

  it('collapses runaway repetitions', () => {
    expect(filter.apply(result([[' no no no no no no no', 0.1]]), loud)).toMatchObject({ text: 'no' });
  });
});

describe('collapseRepetitions', () => {
  it('collapses words and short phrases repeated more than the limit, and leaves the rest', () => {
    expect(collapseRepetitions('yes yes yes', 3)).toBe('yes yes yes');
    expect(collapseRepetitions('I see. I see. I see. I see. I see. Okay.', 3)).toBe('I see. Okay.');
    expect(collapseRepetitions('one two one two one two one two three', 3)).toBe('one two three');
    expect(collapseRepetitions('Go, go go GO go now', 3)).toBe('Go, now');
  });
});

describe('helpers', () => {
  it('normalises phrases and measures level', () => {
    expect(normalizePhrase('  Thank you!! ')).toBe('thank you');
    expect(levelDbfs(new Int16Array(10))).toBe(-Infinity);
    expect(levelDbfs(new Int16Array(10).fill(32767))).toBeCloseTo(0, 1);
  });
});
