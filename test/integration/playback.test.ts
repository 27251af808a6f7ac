/**
 * The playback owner's contract through the real rtpengine (`play media`), heard where it counts:
 * at the synthetic RTP endpoints of the call's legs. A bridge call with both parties talking
 * (caller 440 Hz, callee 1000 Hz); playback sends other tones into either leg.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CallRule } from '../../src/call/rule.js';
import { decodeUlaw, encodeUlawBuffer } from '../../src/audio/g711.js';
import type { RtpPacket } from '../../src/media/rtp/packet.js';
import { newTestCall, startCallHarness, type CallHarness, type TestCall } from '../support/calls.js';
import { FakeDialer } from '../support/fake-sip.js';
import type { RtpEndpoint } from '../support/rtp-endpoint.js';
import { dominantFrequency, rmsDb, sine } from '../support/signal.js';

let h: CallHarness;
beforeAll(async () => {
  h = await startCallHarness();
}, 300_000);
afterAll(async () => {
  await h?.close();
});
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CANDIDATES = [440, 600, 800, 1000, 1400];
const clip = (freq: number, ms: number): { pcm: Int16Array; sampleRate: number } => ({ pcm: sine(freq, 8000, ms, 0.3), sampleRate: 8000 });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tone(freq: number, ms: number): Uint8Array[] {
  const pcm = sine(freq, 8000, ms, 0.3);
  const out: Uint8Array[] = [];
  for (let i = 0; i + 160 <= pcm.length; i += 160) out.push(encodeUlawBuffer(pcm.subarray(i, i + 160)));
  return out;
}

/** What an endpoint hears, packet by packet: its dominant candidate tone (0 for silence) and arrival time. */
function listen(ep: RtpEndpoint): { tones: number[]; at: number[] } {
  const heard = { tones: [] as number[], at: [] as number[] };
  const push = ep.received.push.bind(ep.received);
  ep.received.push = (...items: RtpPacket[]): number => {
    for (const p of items) {
      if (p.payloadType !== 0) continue;
      const pcm = decodeUlaw(p.payload);
      heard.tones.push(rmsDb(pcm) < -40 ? 0 : dominantFrequency(pcm, 8000, CANDIDATES));
      heard.at.push(performance.now());
    }
    return push(...items);
  };
  return heard;
}

const between = (heard: { tones: number[]; at: number[] }, from: number, to = Infinity): number[] => heard.tones.filter((_, i) => heard.at[i]! >= from && heard.at[i]! < to);
const count = (xs: number[], v: number): number => xs.filter((x) => x === v).length;
/** Runs of the same tone, in order, ignoring silence and runs shorter than `min` packets. */
function sequence(xs: number[], min = 5): number[] {
  const runs: [number, number][] = [];
  for (const x of xs) {
    if (x === 0) continue;
    const last = runs.at(-1);
    if (last && last[0] === x) last[1]++;
    else runs.push([x, 1]);
  }
  return runs.filter(([, n]) => n >= min).map(([t]) => t).filter((t, i, all) => i === 0 || all[i - 1] !== t);
}

const bridge: CallRule = { name: 'playback', action: 'bridge', target: 'sip:agent@127.0.0.1', labels: [] };

async function bridgedCall(seconds: number): Promise<{ call: TestCall; callee: RtpEndpoint; talking: Promise<unknown> }> {
  const dialer = new FakeDialer((callee) => cleanups.push(() => callee.close()));
  const call = await newTestCall(h, bridge, { dialer });
  cleanups.push(() => call.caller.close());
  cleanups.push(() => call.session.close('hangup'));
  await call.session.start();
  const talking = Promise.all([call.caller.send(call.leg.answered!, tone(440, seconds * 1000)), dialer.callee!.send(dialer.offer!, tone(1000, seconds * 1000))]);
  return { call, callee: dialer.callee!, talking };
}

describe('playback through rtpengine', () => {
  it('plays queued items to the caller in order, marks in order, the callee muted towards the caller meanwhile', async () => {
    const { call, callee, talking } = await bridgedCall(4);
    const atCaller = listen(call.caller);
    const atCallee = listen(callee);
    const playback = call.session.playback!.to('caller')!;
    await sleep(300);
    const marks: string[] = [];
    const start = performance.now();
    const first = playback.play(clip(600, 600), { id: 'one' });
    void playback.mark('after-one').then((e) => marks.push(`after-one:${e}`));
    const second = playback.play(clip(800, 600), { id: 'two' });
    void playback.mark('after-two').then((e) => marks.push(`after-two:${e}`));
    const [one, two] = await Promise.all([first, second]);
    const end = performance.now();
    expect(one).toMatchObject({ id: 'one', status: 'played', durationMs: 600 });
    expect(two).toMatchObject({ id: 'two', status: 'played', durationMs: 600 });
    await sleep(50);
    expect(marks).toEqual(['after-one:playout', 'after-two:playout']);
    const during = between(atCaller, start, end);
    // The caller heard 600 Hz, then 800 Hz, and not the callee while they played.
    expect(sequence(during)).toEqual([600, 800]);
    expect(count(during, 600)).toBeGreaterThanOrEqual(25);
    expect(count(during, 800)).toBeGreaterThanOrEqual(25);
    expect(count(between(atCaller, start + 60, end - 60), 1000)).toBe(0);
    // The callee never heard the prompts (they were for the caller).
    expect(count(atCallee.tones, 600) + count(atCallee.tones, 800)).toBe(0);
    // Afterwards the caller hears the callee again.
    await sleep(500);
    expect(count(between(atCaller, end + 200), 1000)).toBeGreaterThan(5);
    await talking;
    // The callee was muted towards the caller only: its own fork (its transcription) had every
    // packet throughout (rtpengine's block media would have stopped it for the 1.2 s of prompts).
    await call.session.close('hangup');
    const ended = h.events.find((e) => e.kind === 'call.ended' && e.callId === call.leg.callId);
    expect(ended?.kind === 'call.ended' ? ended.parties.callee?.packets : undefined).toBeGreaterThanOrEqual(190);
  }, 30_000);

  it('interrupt() stops the audio at the endpoint at once and reports where it stopped', async () => {
    const { call, talking } = await bridgedCall(5);
    const atCaller = listen(call.caller);
    const playback = call.session.playback!.to('caller')!;
    await sleep(300);
    const long = playback.play(clip(600, 4000), { id: 'long' });
    const queued = playback.play(clip(800, 1000), { id: 'queued' });
    while (count(atCaller.tones, 600) === 0) await sleep(5);
    const firstHeard = atCaller.at[atCaller.tones.indexOf(600)]!;
    await sleep(1200);
    const interruptedAt = performance.now();
    const report = await playback.interrupt();
    expect(report).toMatchObject({ stopped: { id: 'long' }, clearedItems: 1 });
    // Where it says it stopped: about as much as the endpoint heard of it.
    const heardMs = interruptedAt - firstHeard;
    expect(Math.abs(report.stopped!.playedMs - heardMs)).toBeLessThan(150);
    expect(await long).toMatchObject({ status: 'interrupted', playedMs: report.stopped!.playedMs });
    expect(await queued).toMatchObject({ status: 'cleared' });
    await sleep(400);
    // Nothing of the prompt after the interrupt (a packet in flight aside), nor of the queued one; the callee is back.
    expect(count(between(atCaller, interruptedAt + 60), 600)).toBe(0);
    expect(count(atCaller.tones, 800)).toBe(0);
    expect(count(between(atCaller, interruptedAt + 100), 1000)).toBeGreaterThan(5);
    await talking;
  }, 30_000);

  it('targets the callee leg: the callee hears it, the caller does not', async () => {
    const { call, callee, talking } = await bridgedCall(3);
    const atCaller = listen(call.caller);
    const atCallee = listen(callee);
    await sleep(300);
    const start = performance.now();
    expect(await call.session.playback!.to('callee')!.play(clip(1400, 800))).toMatchObject({ status: 'played' });
    const end = performance.now();
    const during = between(atCallee, start, end);
    expect(count(during, 1400)).toBeGreaterThanOrEqual(30);
    expect(count(between(atCallee, start + 60, end - 60), 440)).toBe(0);
    expect(count(atCaller.tones, 1400)).toBe(0);
    await talking;
  }, 30_000);

  it('an answered call has only the caller to play to; playback ends with the call and leaves nothing in rtpengine', async () => {
    const call = await newTestCall(h, { name: 'line', action: 'answer', labels: [] });
    cleanups.push(() => call.caller.close());
    await call.session.start();
    expect(call.session.playback!.targets).toEqual(['caller']);
    expect(call.session.playback!.to('callee')).toBeUndefined();
    const pending = call.session.playback!.to('caller')!.play(clip(600, 5000));
    await sleep(300);
    await call.session.remoteBye('caller');
    expect(await pending).toMatchObject({ status: 'interrupted' });
    await expect(call.session.playback!.to('caller')!.play(clip(600, 100))).rejects.toMatchObject({ code: 'PLAYBACK_CLOSED' });
    expect(await h.rtpe.numSessions()).toBe(0);
  }, 30_000);
});
