import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_VAD_CONFIG } from '../../test/support/vad-config.js';
import type { VadConfig } from '../config/schema.js';
import { cadenceTone, chordSequence, speechFixture, whiteNoise, type SpeechFixture } from '../../test/support/speech.js';
import { concatSamples, rmsDb } from '../../test/support/signal.js';
import { BatchedVad, WINDOW_MS } from './batched-vad.js';
import { MAX_CUT_SEARCH_MS, SpeechSegmenter, UTTERANCE_TAIL_MS } from './segmenter.js';
import type { Utterance } from './utterance.js';

/**
 * Boundaries: an utterance is [speech start − pre-roll, speech end + tail]. The tests recover the
 * detected speech as [startMs + preRollMs, endMs − UTTERANCE_TAIL_MS] (fixtures leave ≥ preRollMs
 * of silence before each sentence, so the pre-roll is whole) and compare it with where espeak-ng's
 * trimmed sentence really starts and ends.
 */
const CONFIG: VadConfig = TEST_VAD_CONFIG;
const TOLERANCE_MS = 200;
const FRAME = 320;

const SENTENCES = [
  'Hello, thank you for calling. How can I help you today?',
  'I would like to change the address on my account.',
  'Sure. Can you confirm your date of birth, please?',
  'It is the fourth of July, nineteen eighty two.',
  'Thanks. One moment while I look that up.',
];

let vad: BatchedVad;
beforeAll(async () => {
  vad = await BatchedVad.create(CONFIG);
});
afterAll(async () => {
  await vad.close();
});

interface Run {
  utterances: Utterance[];
  speechStarts: number[];
}

/** Real audio through BatchedVad and a segmenter as 20 ms frames; `stopAtMs` ends the stream early. */
async function segment(samples: Int16Array, config: VadConfig = CONFIG, stopAtMs = Infinity, model: BatchedVad = vad): Promise<Run> {
  const run: Run = { utterances: [], speechStarts: [] };
  const seg = new SpeechSegmenter('caller', config, (u) => run.utterances.push(u), (ms) => run.speechStarts.push(ms));
  const stream = model.open('caller', (w) => seg.push(w));
  for (let i = 0; i + FRAME <= samples.length && i / 16 < stopAtMs; i += FRAME) {
    stream.push({ party: 'caller', startMs: i / 16, samples: samples.subarray(i, i + FRAME) });
    if ((i / FRAME) % 50 === 49) await model.drain();
  }
  await model.drain();
  stream.close();
  seg.flush();
  return run;
}

function expectSentencesFound(fx: SpeechFixture, run: Run, config: VadConfig = CONFIG): void {
  expect(run.utterances.map((u) => u.reason)).toEqual(fx.sentences.map(() => 'silence'));
  expect(run.speechStarts).toHaveLength(fx.sentences.length);
  fx.sentences.forEach((truth, i) => {
    const u = run.utterances[i]!;
    expect(Math.abs(u.startMs + config.preRollMs - truth.startMs), `start of "${truth.text}"`).toBeLessThanOrEqual(TOLERANCE_MS);
    expect(Math.abs(u.endMs - UTTERANCE_TAIL_MS - truth.endMs), `end of "${truth.text}"`).toBeLessThanOrEqual(TOLERANCE_MS);
    expect(Math.abs(run.speechStarts[i]! - truth.startMs)).toBeLessThanOrEqual(TOLERANCE_MS);
    // The whole sentence is inside the utterance, and the samples match the times.
    expect(u.startMs).toBeLessThanOrEqual(truth.startMs);
    expect(u.endMs).toBeGreaterThanOrEqual(truth.endMs);
    expect(u.samples.length).toBe(Math.round((u.endMs - u.startMs) * 16));
    expect(u.party).toBe('caller');
  });
}

describe('SpeechSegmenter on spoken audio', () => {
  for (const sampleRate of [16000, 8000] as const) {
    it(`finds each sentence once with its true boundaries ±${TOLERANCE_MS} ms (${sampleRate / 1000} kHz origin)`, async () => {
      const fx = await speechFixture({ sentences: SENTENCES, gapsMs: [900, 1200, 800, 1500], sampleRate, leadMs: 800, tailMs: 1200 });
      const run = await segment(fx.samples16k);
      expectSentencesFound(fx, run);
      // The pre-roll holds what preceded the speech start: silence here.
      const u = run.utterances[0]!;
      expect(rmsDb(u.samples.subarray(0, 16 * 200))).toBeLessThan(-60);
    });
  }

  it('finds them with the 16 kHz model too (vad.sampleRate 16000, for wideband sources)', async () => {
    const wide = await BatchedVad.create({ ...CONFIG, sampleRate: 16000 });
    try {
      const fx = await speechFixture({ sentences: SENTENCES, gapsMs: [900, 1200, 800, 1500], sampleRate: 16000, leadMs: 800, tailMs: 1200 });
      expectSentencesFound(fx, await segment(fx.samples16k, CONFIG, Infinity, wide));
    } finally {
      await wide.close();
    }
  });

  it('ignores silence, hold tones, music-like chords and line noise', async () => {
    const signals = {
      silence: new Int16Array(16 * 8000),
      ringback425: cadenceTone(425, 1000, 1000, 10_000),
      ringbackUs: concatSamples([cadenceTone(440, 2000, 4000, 6000), cadenceTone(480, 2000, 4000, 6000)]),
      chords: chordSequence(10_000),
      noise: whiteNoise(10_000, -30),
    };
    for (const [name, samples] of Object.entries(signals)) {
      const run = await segment(samples);
      expect(run.utterances, name).toEqual([]);
      expect(run.speechStarts, name).toEqual([]);
    }
  });

  it('cuts an over-long utterance at a quiet point and carries on with the rest', async () => {
    // Pauses shorter than the hang-over: one stretch of speech, far longer than maxUtteranceMs.
    const fx = await speechFixture({ sentences: SENTENCES, gapsMs: [350, 400, 350, 400], sampleRate: 16000, leadMs: 800, tailMs: 1200 });
    const config = { ...CONFIG, maxUtteranceMs: 5000 };
    const run = await segment(fx.samples16k, config);
    const cuts = run.utterances.filter((u) => u.reason === 'max-length');
    expect(cuts.length).toBeGreaterThanOrEqual(2);
    expect(run.utterances.at(-1)!.reason).toBe('silence');
    for (const u of run.utterances) expect(u.endMs - u.startMs).toBeLessThanOrEqual(config.maxUtteranceMs);
    for (const cut of cuts) {
      // Near the maximum length, at a pause (between sentences or words), never mid-word.
      expect(cut.endMs - cut.startMs).toBeGreaterThanOrEqual(config.maxUtteranceMs - MAX_CUT_SEARCH_MS);
      const at = Math.round(cut.endMs * 16);
      expect(rmsDb(fx.samples16k.subarray(at - 160, at + 160)), `cut at ${cut.endMs} ms`).toBeLessThan(-60);
    }
    // Contiguous: each piece starts where the previous one was cut, and together they cover all speech.
    for (let i = 1; i < run.utterances.length; i++) {
      if (run.utterances[i - 1]!.reason === 'max-length') expect(run.utterances[i]!.startMs).toBe(run.utterances[i - 1]!.endMs);
    }
    expect(run.utterances[0]!.startMs).toBeLessThanOrEqual(fx.sentences[0]!.startMs);
    expect(run.utterances.at(-1)!.endMs).toBeGreaterThanOrEqual(fx.sentences.at(-1)!.endMs);
  });

  it('emits the open utterance when the stream closes mid-speech (flush)', async () => {
    const fx = await speechFixture({ sentences: [SENTENCES[1]!], gapsMs: [], sampleRate: 8000, leadMs: 500, tailMs: 500 });
    const stopAtMs = (fx.sentences[0]!.startMs + fx.sentences[0]!.endMs) / 2;
    const run = await segment(fx.samples16k, CONFIG, stopAtMs);
    expect(run.utterances).toHaveLength(1);
    const u = run.utterances[0]!;
    expect(u.reason).toBe('end');
    expect(Math.abs(u.startMs + CONFIG.preRollMs - fx.sentences[0]!.startMs)).toBeLessThanOrEqual(TOLERANCE_MS);
    // It ends with the last scored window, at most a window and a frame before the stream stopped.
    expect(u.endMs).toBeLessThanOrEqual(stopAtMs);
    expect(u.endMs).toBeGreaterThan(stopAtMs - WINDOW_MS - 20);
    expect(u.samples.length).toBe(Math.round((u.endMs - u.startMs) * 16));
  });
});

/** Scripted windows: each window's samples hold its index, so the utterance's content can be read. */
function scripted(config: Partial<VadConfig> = {}) {
  const utterances: Utterance[] = [];
  const starts: number[] = [];
  const seg = new SpeechSegmenter('p', { ...CONFIG, ...config }, (u) => utterances.push(u), (ms) => starts.push(ms));
  let index = 0;
  const push = (...probabilities: number[]) => {
    for (const probability of probabilities) {
      seg.push({ startMs: index * WINDOW_MS, samples: new Int16Array(512).fill(index + 1), probability });
      index++;
    }
  };
  const windowsOf = (u: Utterance) => [...new Set(u.samples)].map((v) => v - 1);
  return { seg, push, utterances, starts, windowsOf };
}

const rep = (p: number, n: number) => Array<number>(n).fill(p);

describe('SpeechSegmenter logic', () => {
  it('applies hysteresis, hang-over, pre-roll and the tail', () => {
    const { seg, push, utterances, starts, windowsOf } = scripted({ preRollMs: 96, hangoverMs: 320 });
    push(...rep(0.1, 10)); // windows 0–9
    push(...rep(0.9, 10)); // 10–19 speech
    push(0.4, 0.45, 0.2); // 20, 21 between the thresholds: still speech; 22 below: hang-over starts
    expect(seg.openUtterance()?.startMs).toBe(10 * WINDOW_MS - 96);
    push(0.4, ...rep(0.1, 8)); // between the thresholds during the hang-over: it goes on
    expect(utterances).toHaveLength(1);
    const u = utterances[0]!;
    expect(u.reason).toBe('silence');
    expect(u.startMs).toBe(10 * WINDOW_MS - 96); // 3 windows of pre-roll
    expect(u.endMs).toBe(22 * WINDOW_MS + UTTERANCE_TAIL_MS); // last speech window (21) ends at 22·32
    // Windows 7–26: the pre-roll, the speech, and the tail up to 854 ms (window 26 is 832–864).
    expect(windowsOf(u)).toEqual(Array.from({ length: 20 }, (_, i) => 7 + i));
    expect(starts).toEqual([10 * WINDOW_MS]);
    expect(seg.speaking).toBe(false);
  });

  it('drops speech shorter than minSpeechMs and reports nothing', () => {
    const { seg, push, utterances, starts } = scripted({ minSpeechMs: 250 });
    push(...rep(0.1, 5), ...rep(0.9, 7), ...rep(0.1, 30)); // 224 ms of speech
    push(...rep(0.9, 7));
    seg.flush();
    expect(utterances).toEqual([]);
    expect(starts).toEqual([]);
  });

  it('never reaches back into the previous utterance for pre-roll', () => {
    const { push, utterances } = scripted({ preRollMs: 1000, hangoverMs: 320 });
    push(...rep(0.9, 10), ...rep(0.1, 11), ...rep(0.9, 10), ...rep(0.1, 11));
    expect(utterances).toHaveLength(2);
    expect(utterances[1]!.startMs).toBe(utterances[0]!.endMs);
  });

  it('offers the growing utterance for partials once speech is confirmed', () => {
    const { seg, push } = scripted({ minSpeechMs: 96, preRollMs: 0 });
    push(0.1, 0.9, 0.9);
    expect(seg.openUtterance()).toBeUndefined(); // 64 ms of speech so far
    push(0.9);
    const open = seg.openUtterance()!;
    expect(open.startMs).toBe(WINDOW_MS);
    expect(open.samples.length).toBe(3 * 512);
  });

  it('treats a gap in the window times as silence', () => {
    const { seg, utterances } = scripted({ hangoverMs: 320, preRollMs: 0 });
    const w = (ms: number, probability: number) => seg.push({ startMs: ms, samples: new Int16Array(512).fill(1), probability });
    for (let i = 0; i < 10; i++) w(i * 32, 0.9);
    w(320 + 96, 0.9); // 96 ms lost inside speech: the utterance keeps its length in step with the clock
    for (let i = 0; i < 10; i++) w(448 + i * 32, 0.9);
    w(5000, 0.1); // a long gap ends the utterance
    expect(utterances).toHaveLength(1);
    const u = utterances[0]!;
    expect(u.startMs).toBe(0);
    expect(u.endMs).toBe(768); // last speech window ended at 768; no audio for a tail after it
    expect(u.samples.length).toBe(768 * 16);
    expect(u.samples[330 * 16]).toBe(0); // the lost stretch is silence
  });

  it('flush emits an open utterance with reason "end" and resets', () => {
    const { seg, push, utterances } = scripted({ preRollMs: 0 });
    push(...rep(0.9, 12));
    seg.flush();
    seg.flush();
    expect(utterances.map((u) => [u.reason, u.startMs, u.endMs])).toEqual([['end', 0, 12 * WINDOW_MS]]);
  });
});
