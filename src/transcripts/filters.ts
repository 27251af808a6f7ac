import type { RecognitionResult, RecognizedSegment } from '../asr/recognizer.js';

/**
 * Guards against Whisper's known failure modes on audio that is not speech: text on silence
 * ("Thank you.", "you"), bracketed non-speech tags, and runaway repetition loops.
 */
export interface HallucinationFilterOptions {
  /** Segments whose no-speech probability is at or above this are dropped. */
  readonly noSpeechThreshold: number;
  /** Phrases dropped when the whole utterance is quiet (level below lowEnergyDbfs). */
  readonly silencePhrases: readonly string[];
  readonly lowEnergyDbfs: number;
  /** A word or short phrase repeated more than this many times in a row collapses to one. */
  readonly maxRepeats: number;
}

export type FilterVerdict =
  | { readonly keep: true; readonly text: string; readonly segments: readonly RecognizedSegment[] }
  | { readonly keep: false; readonly reason: 'empty' | 'no-speech' | 'silence-phrase' };

/** Whisper's non-speech annotations: [BLANK_AUDIO], (music), *silence*, ♪ ... */
const NON_SPEECH = /\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|♪+/g;

export function normalizePhrase(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}' ]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Level of 16-bit PCM in dBFS (full-scale sine ≈ -3 dBFS); -Infinity for digital silence. */
export function levelDbfs(samples: Int16Array): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i]! * samples[i]!;
  return samples.length === 0 ? -Infinity : 10 * Math.log10(sum / samples.length / (32768 * 32768));
}

/**
 * Collapses a word or phrase of up to 4 words repeated more than `maxRepeats` times in a row
 * ("no no no no no no" → "no"), the signature of a decoder stuck in a loop.
 */
export function collapseRepetitions(text: string, maxRepeats: number): string {
  const words = text.split(/\s+/).filter((w) => w !== '');
  const key = (w: string): string => normalizePhrase(w);
  for (let n = 1; n <= 4; n++) {
    const out: string[] = [];
    let i = 0;
    while (i < words.length) {
      let reps = 1;
      while (i + (reps + 1) * n <= words.length && sameRun(words, i, i + reps * n, n, key)) reps++;
      out.push(...words.slice(i, i + n));
      i += reps > maxRepeats ? reps * n : n;
    }
    words.splice(0, words.length, ...out);
  }
  return words.join(' ');
}

function sameRun(words: string[], a: number, b: number, n: number, key: (w: string) => string): boolean {
  for (let k = 0; k < n; k++) if (key(words[a + k]!) !== key(words[b + k]!)) return false;
  return true;
}

export class HallucinationFilter {
  private readonly phrases: ReadonlySet<string>;

  constructor(private readonly options: HallucinationFilterOptions) {
    this.phrases = new Set(options.silencePhrases.map(normalizePhrase));
  }

  /** Judges one recognition of `samples`. */
  apply(result: RecognitionResult, samples: Int16Array): FilterVerdict {
    const spoken = result.segments.filter((s) => s.noSpeechProb < this.options.noSpeechThreshold);
    if (result.segments.length > 0 && spoken.length === 0) return { keep: false, reason: 'no-speech' };
    const segments = (result.segments.length > 0 ? spoken : [])
      .map((s) => ({ ...s, text: collapseRepetitions(s.text.replace(NON_SPEECH, ' '), this.options.maxRepeats).trim() }))
      .filter((s) => s.text !== '');
    const raw = result.segments.length > 0 ? segments.map((s) => s.text).join(' ') : result.text.replace(NON_SPEECH, ' ');
    const text = collapseRepetitions(raw.replace(/\s+/g, ' ').trim(), this.options.maxRepeats);
    if (normalizePhrase(text) === '') return { keep: false, reason: 'empty' };
    if (this.phrases.has(normalizePhrase(text)) && levelDbfs(samples) < this.options.lowEnergyDbfs) {
      return { keep: false, reason: 'silence-phrase' };
    }
    return { keep: true, text, segments };
  }
}
