/**
 * The playback owner's contract against a recording fake of the media server (the same contract
 * through the real rtpengine, heard at the endpoints, is test/integration/playback.test.ts).
 */
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { MediaPlayer } from '../media/rtpengine/player.js';
import { CallPlayback, LegPlayback } from './playback.js';

/** Plays in real time; records what it was asked to play and when it was stopped. */
class RecordingPlayer implements MediaPlayer {
  readonly log: { what: 'play' | 'stop'; at: number; samples?: Int16Array }[] = [];
  failNext = false;

  constructor(
    readonly sampleRate = 8000,
    readonly maxChunkSamples = 1600,
  ) {}

  async play(pcm: Int16Array): Promise<{ durationMs: number }> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('rtpengine said no');
    }
    this.log.push({ what: 'play', at: performance.now(), samples: pcm.slice() });
    return { durationMs: (pcm.length * 1000) / this.sampleRate };
  }

  async stop(): Promise<{ positionMs?: number }> {
    this.log.push({ what: 'stop', at: performance.now() });
    return {};
  }

  /** The first sample value of every chunk played: which item it came from. */
  get played(): number[] {
    return this.log.filter((l) => l.what === 'play').map((l) => l.samples![0]!);
  }
}

const clip = (value: number, ms: number, rate = 8000): { pcm: Int16Array; sampleRate: number } => ({ pcm: new Int16Array((rate * ms) / 1000).fill(value), sampleRate: rate });
const leg = (player: MediaPlayer, options: { maxQueuedMs?: number } = {}): LegPlayback => new LegPlayback('caller', player, { logger: pino({ level: 'silent' }), ...options });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('LegPlayback', () => {
  it('plays items in order, chunk after chunk, and resolves marks in order when playback reaches them', async () => {
    const player = new RecordingPlayer();
    const playback = leg(player);
    const order: string[] = [];
    const a = playback.play(clip(1, 300), { id: 'a' }).then((o) => (order.push('a'), o));
    const m1 = playback.mark('m1').then((e) => (order.push(`m1:${e}`), e));
    const b = playback.play(clip(2, 100), { id: 'b' }).then((o) => (order.push('b'), o));
    const m2 = playback.mark('m2').then((e) => (order.push(`m2:${e}`), e));
    expect(await a).toMatchObject({ id: 'a', status: 'played', playedMs: 300, durationMs: 300 });
    await Promise.all([m1, b, m2]);
    expect(order).toEqual(['a', 'm1:playout', 'b', 'm2:playout']);
    // 300 ms of a in 200 ms chunks, then b; each chunk starts when the previous one ends.
    expect(player.played).toEqual([1, 1, 2]);
    const plays = player.log.filter((l) => l.what === 'play');
    expect(plays[1]!.at - plays[0]!.at).toBeGreaterThanOrEqual(195);
    // The queue ran dry: after the idle hold the player was stopped (the far end comes back).
    await sleep(250);
    expect(player.log.at(-1)!.what).toBe('stop');
    expect(playback.stats()).toMatchObject({ itemsPlayed: 2, chunksPlayed: 3, playing: false, queuedMs: 0 });
  });

  it('interrupt() stops at once, reports where it stopped, and clears what was queued', async () => {
    const player = new RecordingPlayer();
    const playback = leg(player);
    const long = playback.play(clip(1, 2000), { id: 'long' });
    const next = playback.play(clip(2, 200), { id: 'next' });
    const mark = playback.mark('after');
    await sleep(450);
    const stopsBefore = player.log.filter((l) => l.what === 'stop').length;
    const playingSince = player.log.find((l) => l.what === 'play')!.at;
    const interruptedAt = performance.now();
    const report = await playback.interrupt();
    // The player was stopped before interrupt() resolved.
    expect(player.log.filter((l) => l.what === 'stop').length).toBe(stopsBefore + 1);
    expect(report).toMatchObject({ stopped: { id: 'long' }, clearedItems: 1, clearedMarks: 1 });
    // Where it stopped is where it was: the audio played since the first chunk started.
    expect(Math.abs(report.stopped!.playedMs - (interruptedAt - playingSince))).toBeLessThan(60);
    expect(await long).toMatchObject({ status: 'interrupted', playedMs: report.stopped!.playedMs, durationMs: 2000 });
    expect(await next).toMatchObject({ id: 'next', status: 'cleared', playedMs: 0 });
    expect(await mark).toBe('cleared');
    const chunks = player.played.length;
    await sleep(300);
    expect(player.played.length).toBe(chunks);
    // It plays again afterwards.
    expect(await playback.play(clip(3, 100))).toMatchObject({ status: 'played' });
  });

  it("interrupt({ owner }) drops only that owner's audio and marks; the others play on", async () => {
    const player = new RecordingPlayer();
    const playback = leg(player);
    const prompt = playback.play(clip(1, 400), { owner: 'prompt' });
    const forked = playback.play(clip(2, 200), { owner: 'audio-stream' });
    const forkMark = playback.mark('fork-mark', { owner: 'audio-stream' });
    const promptMark = playback.mark('prompt-mark', { owner: 'prompt' });
    await sleep(50);
    const report = await playback.interrupt({ owner: 'audio-stream' });
    expect(report).toEqual({ clearedItems: 1, clearedMarks: 1 });
    expect(await forked).toMatchObject({ status: 'cleared' });
    expect(await forkMark).toBe('cleared');
    expect(await prompt).toMatchObject({ status: 'played', playedMs: 400 });
    expect(await promptMark).toBe('playout');
    expect(player.played).toEqual([1, 1]);
  });

  it('plays a stream as its chunks come, starting before the source has ended', async () => {
    const player = new RecordingPlayer(8000, 1600);
    const playback = leg(player);
    let produced = 0;
    async function* speech(): AsyncGenerator<Int16Array> {
      for (let i = 0; i < 5; i++) {
        await sleep(60);
        produced++;
        yield new Int16Array(800).fill(7); // 100 ms each
      }
    }
    const done = playback.play({ stream: speech(), sampleRate: 8000 }, { id: 'tts' });
    while (player.played.length === 0) await sleep(5);
    expect(produced).toBeLessThan(5);
    const outcome = await done;
    expect(outcome).toMatchObject({ id: 'tts', status: 'played', durationMs: 500 });
    const samples = player.log.filter((l) => l.what === 'play').reduce((n, l) => n + l.samples!.length, 0);
    expect(samples).toBe(4000);
  });

  it('an interrupted stream stops waiting for its source', async () => {
    const player = new RecordingPlayer();
    const playback = leg(player);
    async function* stalls(): AsyncGenerator<Int16Array> {
      yield new Int16Array(800).fill(5);
      await new Promise(() => undefined); // a synthesizer that never sends more
    }
    const stalled = playback.play({ stream: stalls(), sampleRate: 8000 });
    const after = playback.play(clip(6, 100));
    await sleep(250);
    await playback.interrupt({ owner: undefined });
    expect(await stalled).toMatchObject({ status: 'interrupted' });
    expect(await after).toMatchObject({ status: 'cleared' });
    expect(await playback.play(clip(8, 100))).toMatchObject({ status: 'played' });
  });

  it('resamples clips to the player rate', async () => {
    const player = new RecordingPlayer(8000, 8000);
    const playback = leg(player);
    expect(await playback.play(clip(1000, 500, 16000))).toMatchObject({ status: 'played', durationMs: 500 });
    expect(player.log.find((l) => l.what === 'play')!.samples!.length).toBe(4000);
  });

  it('a chunk the media server refuses fails that item only', async () => {
    const player = new RecordingPlayer();
    const playback = leg(player);
    player.failNext = true;
    const failed = playback.play(clip(1, 100));
    const ok = playback.play(clip(2, 100));
    expect(await failed).toMatchObject({ status: 'failed' });
    expect(await ok).toMatchObject({ status: 'played' });
    expect(playback.stats().itemsFailed).toBe(1);
  });

  it('a close() while the queue has just run dry stops the player once: nothing reaches the media server after it', async () => {
    const player = new RecordingPlayer();
    const playback = leg(player);
    expect(await playback.play(clip(1, 100))).toMatchObject({ status: 'played' });
    // The runner keeps the player engaged a moment, in case more audio comes; the call ends then.
    await playback.close();
    const stopsAtClose = player.log.filter((l) => l.what === 'stop').length;
    expect(stopsAtClose).toBe(1);
    await sleep(600);
    expect(player.log.filter((l) => l.what === 'stop').length).toBe(1);
  });

  it('is bounded: beyond maxQueuedMs a play is refused at once; after close() everything is', async () => {
    const player = new RecordingPlayer();
    const playback = leg(player, { maxQueuedMs: 1000 });
    const first = playback.play(clip(1, 800));
    await expect(playback.play(clip(2, 400))).rejects.toMatchObject({ code: 'PLAYBACK_QUEUE_FULL' });
    expect(playback.stats().refused).toBe(1);
    await playback.close();
    expect(await first).toMatchObject({ status: 'interrupted' });
    await expect(playback.play(clip(3, 100))).rejects.toMatchObject({ code: 'PLAYBACK_CLOSED' });
    expect(await playback.mark('late')).toBe('cleared');
    expect(player.log.at(-1)!.what).toBe('stop');
  });
});

describe('CallPlayback', () => {
  it('has a queue per leg that can hear, and closes them all', async () => {
    const caller = new RecordingPlayer();
    const callee = new RecordingPlayer();
    const playback = new CallPlayback({ caller: leg(caller), callee: new LegPlayback('callee', callee, { logger: pino({ level: 'silent' }) }) });
    expect(playback.targets).toEqual(['caller', 'callee']);
    const toCaller = playback.to('caller')!.play(clip(1, 1000));
    const toCallee = playback.to('callee')!.play(clip(2, 100));
    expect(await toCallee).toMatchObject({ status: 'played' });
    await playback.close();
    expect(await toCaller).toMatchObject({ status: 'interrupted' });
    expect(caller.played.every((v) => v === 1)).toBe(true);
    expect(callee.played).toEqual([2]);
    expect(new CallPlayback({}).to('caller')).toBeUndefined();
  });
});
