import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_VAD_CONFIG } from '../../test/support/vad-config.js';
import type { VadConfig } from '../config/schema.js';
import { cadenceTone, speechFixture, whiteNoise } from '../../test/support/speech.js';
import { BatchedVad, WINDOW_MS, type VadStream } from './batched-vad.js';
import { CONTEXT_SAMPLES, INPUT_SAMPLES, SileroBatch, SileroParty, WINDOW_SAMPLES } from './silero.js';

const CONFIG: VadConfig = TEST_VAD_CONFIG;

const FRAME = 320;

/** Pushes `samples` as 20 ms frames from `startMs`, draining every second of audio. */
async function feed(vad: BatchedVad, streams: { stream: VadStream; samples: Int16Array }[], startMs = 0): Promise<void> {
  const longest = Math.max(...streams.map((s) => s.samples.length));
  for (let i = 0; i + FRAME <= longest; i += FRAME) {
    for (const { stream, samples } of streams) {
      if (i + FRAME <= samples.length) stream.push({ party: stream.party, startMs: startMs + i / 16, samples: samples.subarray(i, i + FRAME) });
    }
    if ((i / FRAME) % 50 === 49) await vad.drain();
  }
  await vad.drain();
}

interface Scored {
  startMs: number[];
  probability: number[];
}

function collector(): { scored: Scored; onWindow: (w: { startMs: number; probability: number }) => void } {
  const scored: Scored = { startMs: [], probability: [] };
  return { scored, onWindow: (w) => (scored.startMs.push(w.startMs), scored.probability.push(w.probability)) };
}

let speech: Int16Array;
let speech8k: Int16Array;

beforeAll(async () => {
  const sentences = ['Hello, thank you for calling.', 'Can you tell me your account number?'];
  speech = (await speechFixture({ sentences, gapsMs: [700], sampleRate: 16000, leadMs: 400, tailMs: 600 })).samples16k;
  speech8k = (await speechFixture({ sentences: sentences.reverse(), gapsMs: [500], sampleRate: 8000, leadMs: 200, tailMs: 900 })).samples16k;
});

describe('SileroBatch', () => {
  let model: SileroBatch;
  beforeAll(async () => {
    model = await SileroBatch.load();
  });
  afterAll(async () => {
    await model.close();
  });

  it('scores 512-sample windows with 64 samples of context, carried per party', async () => {
    expect(INPUT_SAMPLES).toBe(WINDOW_SAMPLES + CONTEXT_SAMPLES);
    const party = new SileroParty();
    const at = 16 * 600; // inside the first sentence
    model.setWindow(0, party, speech, at);
    const [p] = await model.run(1);
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThanOrEqual(1);
    // The context is the tail of the window just scored, scaled to ±1.
    expect(party.context[CONTEXT_SAMPLES - 1]).toBeCloseTo(speech[at + WINDOW_SAMPLES - 1]! / 32768, 6);
    expect(party.state.some((x) => x !== 0)).toBe(true);
  });

  it('finds speech in speech and none in silence', async () => {
    const talk = new SileroParty();
    const quiet = new SileroParty();
    const silence = new Int16Array(WINDOW_SAMPLES);
    let maxTalk = 0;
    let maxQuiet = 0;
    for (let w = 0; w < 40; w++) {
      model.setWindow(0, talk, speech, 16 * 400 + w * WINDOW_SAMPLES);
      model.setWindow(1, quiet, silence);
      const probs = await model.run(2);
      maxTalk = Math.max(maxTalk, probs[0]!);
      maxQuiet = Math.max(maxQuiet, probs[1]!);
    }
    expect(maxTalk).toBeGreaterThan(0.9);
    expect(maxQuiet).toBeLessThan(0.1);
  });
});

describe('BatchedVad', () => {
  let vad: BatchedVad;
  beforeAll(async () => {
    vad = await BatchedVad.create(CONFIG);
  });
  afterAll(async () => {
    await vad.close();
  });

  it('buffers 20 ms frames on push and scores 32 ms windows on tick, on the call clock', async () => {
    const { scored, onWindow } = collector();
    const stream = vad.open('a', onWindow);
    const before = vad.stats.windows;
    for (let i = 0; i < 8; i++) stream.push({ party: 'a', startMs: 1000 + i * 20, samples: speech.subarray(i * FRAME, (i + 1) * FRAME) });
    expect(vad.stats.windows).toBe(before); // push never runs the model
    expect(stream.pendingWindows).toBe(5); // 160 ms = 5 × 32 ms
    expect(await vad.tick()).toBe(1); // one window per party per tick: the next needs this one's state
    expect(await vad.drain()).toBe(4);
    expect(scored.startMs).toEqual([1000, 1032, 1064, 1096, 1128]);
    stream.close();
  });

  it("gives each party the same probabilities whoever shares its batch (within 1e-4)", async () => {
    const signals = [speech, speech8k, whiteNoise(6000, -30), cadenceTone(425, 1000, 1000, 5000), speech.subarray(16 * 900)];
    const alone: Scored[] = [];
    for (const [i, samples] of signals.entries()) {
      const { scored, onWindow } = collector();
      const stream = vad.open(`solo${i}`, onWindow);
      await feed(vad, [{ stream, samples }]);
      stream.close();
      alone.push(scored);
    }
    for (const maxBatch of [512, 2]) {
      const shared = await BatchedVad.create({ ...CONFIG, maxBatch });
      const together = signals.map(() => collector());
      const streams = signals.map((samples, i) => ({ stream: shared.open(`p${i}`, together[i]!.onWindow), samples }));
      await feed(shared, streams);
      const { meanBatch } = shared.stats;
      await shared.close();
      expect(meanBatch).toBeGreaterThan(maxBatch === 2 ? 1.5 : 3);
      for (const [i, { scored }] of together.entries()) {
        expect(scored.startMs).toEqual(alone[i]!.startMs);
        const diff = Math.max(...scored.probability.map((p, k) => Math.abs(p - alone[i]!.probability[k]!)));
        expect(diff).toBeLessThan(1e-4);
      }
    }
  });

  it('fills short gaps with silence and restarts the timeline after a long one', async () => {
    const { scored, onWindow } = collector();
    const stream = vad.open('gappy', onWindow);
    const frame = new Int16Array(FRAME);
    for (let i = 0; i < 8; i++) stream.push({ party: 'gappy', startMs: i * 20, samples: frame }); // 0–160 ms
    stream.push({ party: 'gappy', startMs: 200, samples: frame }); // 40 ms lost: filled
    stream.push({ party: 'gappy', startMs: 100, samples: frame }); // late duplicate: dropped
    for (let i = 0; i < 8; i++) stream.push({ party: 'gappy', startMs: 10_000 + i * 20, samples: frame }); // long gap
    await vad.drain();
    // 0–220 ms is 6 full windows + 28 ms, padded to a 7th; the timeline then restarts at 10 s.
    expect(scored.startMs).toEqual([0, 32, 64, 96, 128, 160, 192, 10_000, 10_032, 10_064, 10_096, 10_128]);
    expect(vad.stats.droppedFrames).toBeGreaterThanOrEqual(1);
    stream.close();
  });

  it('drops the oldest windows when a ring overflows, and counts them', async () => {
    const small = await BatchedVad.create(CONFIG, { maxBufferMs: 320 });
    const { scored, onWindow } = collector();
    const stream = small.open('slow', onWindow);
    for (let i = 0; i < 50; i++) stream.push({ party: 'slow', startMs: i * 20, samples: speech.subarray(i * FRAME, (i + 1) * FRAME) });
    await small.drain();
    const { droppedWindows } = small.stats;
    await small.close();
    // 1000 ms is 31 whole windows; the ring holds 320 ms: the oldest were dropped, the newest scored.
    expect(scored.startMs.length + droppedWindows).toBe(Math.floor(1000 / WINDOW_MS));
    expect(scored.startMs.length).toBe(9);
    expect(scored.startMs[0]).toBe(droppedWindows * WINDOW_MS);
    expect(scored.startMs.at(-1)).toBe(30 * WINDOW_MS);
  });

  it('serialises concurrent ticks and stops calling back a closed stream', async () => {
    const { scored, onWindow } = collector();
    const stream = vad.open('c', onWindow);
    for (let i = 0; i < 10; i++) stream.push({ party: 'c', startMs: i * 20, samples: speech.subarray(i * FRAME, (i + 1) * FRAME) });
    const counts = await Promise.all([vad.tick(), vad.tick(), vad.tick()]);
    expect(counts).toEqual([1, 1, 1]);
    stream.close();
    stream.close();
    stream.push({ party: 'c', startMs: 200, samples: speech.subarray(0, FRAME) });
    expect(await vad.drain()).toBe(0);
    expect(scored.startMs).toEqual([0, 32, 64]);
  });

  it("delivers every party's window even when one listener throws", async () => {
    const { scored, onWindow } = collector();
    const bad = vad.open('bad', () => {
      throw new Error('listener bug');
    });
    const good = vad.open('good', onWindow);
    for (const s of [bad, good]) for (let i = 0; i < 2; i++) s.push({ party: s.party, startMs: i * 20, samples: speech.subarray(0, FRAME) });
    await expect(vad.tick()).rejects.toThrow('listener bug');
    expect(scored.startMs).toEqual([0]);
    expect(await vad.tick()).toBe(0); // the loop goes on
    bad.close();
    good.close();
  });

  it('runs a real-time loop that scores what arrives', async () => {
    const live = await BatchedVad.create(CONFIG);
    const { scored, onWindow } = collector();
    const stream = live.open('rt', onWindow);
    for (let i = 0; i < 25; i++) stream.push({ party: 'rt', startMs: i * 20, samples: speech.subarray(i * FRAME, (i + 1) * FRAME) });
    live.start(5);
    live.start(5); // already running: no second loop
    const deadline = Date.now() + 10_000;
    while (scored.startMs.length < 15 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    live.stop();
    await live.close();
    await live.close();
    expect(scored.startMs.length).toBe(15); // 500 ms → 15 full windows
    expect(scored.startMs[14]).toBe(14 * WINDOW_MS);
  });
});
