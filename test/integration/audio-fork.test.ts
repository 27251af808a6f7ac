/**
 * Audio fork out (jambonz listen format) end to end: CallSession against a real rtpengine, real
 * VAD and real whisper.cpp (tiny model), synthetic RTP endpoints standing in for the SIP parties,
 * fake SIP legs (no SIP server here), and a real WebSocket server on loopback as the consumer.
 * Audio goes out (stereo / mono / mixed, aligned), audio comes back (playAudio, marks, killAudio,
 * bidirectional streaming) through rtpengine `play media`, the fork survives its consumer, and
 * every ending path leaves no rtpengine session and no fork socket.
 */
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import type { CallSession } from '../../src/call/call-session.js';
import type { AudioForkPlan, CallRule } from '../../src/call/rule.js';
import type { OutboundDialer } from '../../src/call/signalling.js';
import { decodeUlaw, encodeUlawBuffer } from '../../src/audio/g711.js';
import { leToPcm, pcmToLe } from '../../src/audio/pcm.js';
import type { Config } from '../../src/config/schema.js';
import { audioForkOpener } from '../../src/feeds/audio-fork.js';
import type { Logger } from '../../src/log.js';
import type { RtpPacket } from '../../src/media/rtp/packet.js';
import { toRecordingOffer, type SiprecOffer } from '../../src/sip/siprec.js';
import type { CallEvent } from '../../src/transcripts/events.js';
import { newTestCall, startCallHarness, type CallHarness } from '../support/calls.js';
import { waitFor } from '../support/net.js';
import { FakeDialer, RejectingDialer, type FakeInboundLeg } from '../support/fake-sip.js';
import { RtpEndpoint } from '../support/rtp-endpoint.js';
import { twoPartySiprecOffer } from '../support/siprec.js';
import { dominantFrequency, rmsDb, sine, toneRatioDb } from '../support/signal.js';

const silent = pino({ level: 'silent' });
let h: CallHarness;
let config: Config;

beforeAll(async () => {
  h = await startCallHarness();
  config = h.config;
}, 300_000);

afterAll(async () => {
  await h?.close();
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// ---------------------------------------------------------------------------------------------
// the consumer: a real WebSocket server on loopback

interface Connection {
  readonly ws: WebSocket;
  readonly protocol: string;
  /** Every message in order: parsed JSON for text frames, the bytes for binary ones. */
  readonly all: (Record<string, unknown> | Buffer)[];
  closeCode?: number;
}

interface Consumer {
  readonly url: string;
  readonly connections: Connection[];
}

async function consumer(): Promise<Consumer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const connections: Connection[] = [];
  wss.on('connection', (ws) => {
    const c: Connection = { ws, protocol: ws.protocol, all: [] };
    connections.push(c);
    ws.on('message', (data, isBinary) => c.all.push(isBinary ? (data as Buffer) : (JSON.parse((data as Buffer).toString('utf8')) as Record<string, unknown>)));
    ws.on('close', (code) => (c.closeCode = code));
  });
  cleanups.push(async () => {
    for (const c of connections) c.ws.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  });
  return { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/listen`, connections };
}

const texts = (c: Connection): Record<string, unknown>[] => c.all.filter((m): m is Record<string, unknown> => !Buffer.isBuffer(m));
const binaries = (c: Connection): Buffer[] => c.all.filter((m): m is Buffer => Buffer.isBuffer(m));
const ofType = (c: Connection, type: string): Record<string, unknown>[] => texts(c).filter((m) => m.type === type);
const audioOf = (c: Connection): Int16Array => leToPcm(Buffer.concat(binaries(c)));

function deinterleave(pcm: Int16Array): [Int16Array, Int16Array] {
  const left = new Int16Array(pcm.length >> 1);
  const right = new Int16Array(pcm.length >> 1);
  for (let i = 0; i < left.length; i++) {
    left[i] = pcm[2 * i]!;
    right[i] = pcm[2 * i + 1]!;
  }
  return [left, right];
}

/** Every fork socket the consumer saw is closed, the gateway's side having closed it with 1000. */
async function expectForkSocketsClosed(c: Consumer): Promise<void> {
  await waitFor('fork sockets closed', () => c.connections.every((x) => x.closeCode !== undefined), 3000);
  expect(c.connections.map((x) => x.closeCode).at(-1)).toBe(1000);
}

// ---------------------------------------------------------------------------------------------
// the call: fake SIP legs, synthetic endpoints

const forkRule = (action: 'answer' | 'bridge', options: Partial<AudioForkPlan> & { url: string }): CallRule => {
  const fork: AudioForkPlan = { mix: 'stereo', sampleRate: 16000, bidirectional: false, ...options };
  return action === 'bridge'
    ? { name: `fork-${action}`, action, target: 'sip:agents@127.0.0.1', labels: ['forked'], fork }
    : { name: `fork-${action}`, action, labels: ['forked'], fork };
};

async function newCall(
  rule: CallRule,
  options: { dialer?: OutboundDialer; logger?: Logger; caller?: RtpEndpoint; offer?: SiprecOffer; forkOut?: Config['feeds']['fork'] } = {},
): Promise<{ session: CallSession; leg: FakeInboundLeg; caller: RtpEndpoint; events: () => CallEvent[] }> {
  const caller = options.caller ?? (await new RtpEndpoint('PCMU').open());
  cleanups.push(() => caller.close());
  const services = h.services({
    logger: options.logger ?? silent,
    audioForks: audioForkOpener(options.forkOut ?? config.feeds.fork),
  });
  const call = await newTestCall(h, rule, {
    caller,
    services,
    callId: `fork-${Math.random().toString(36).slice(2)}`,
    ...(options.dialer ? { dialer: options.dialer } : {}),
    ...(options.offer ? { recording: toRecordingOffer(options.offer) } : {}),
  });
  cleanups.push(() => call.session.close('hangup'));
  return call;
}

/** 20 ms PCMU payloads of a tone. */
function tone(freq: number, ms: number): Uint8Array[] {
  const pcm = sine(freq, 8000, ms, 0.3);
  const out: Uint8Array[] = [];
  for (let i = 0; i + 160 <= pcm.length; i += 160) out.push(encodeUlawBuffer(pcm.subarray(i, i + 160)));
  return out;
}

/** When each packet an endpoint receives arrives (composed onto its `received` list). */
function arrivals(ep: RtpEndpoint): number[] {
  const at: number[] = [];
  const push = ep.received.push.bind(ep.received);
  ep.received.push = (...items: RtpPacket[]): number => {
    for (let i = 0; i < items.length; i++) at.push(performance.now());
    return push(...items);
  };
  return at;
}

const CANDIDATES = [440, 600, 800, 1000];
/** The dominant candidate tone of one received PCMU packet, or 0 for silence. */
const toneOf = (p: RtpPacket): number => {
  const pcm = decodeUlaw(p.payload);
  return rmsDb(pcm) < -40 ? 0 : dominantFrequency(pcm, 8000, CANDIDATES);
};

/** Packets received in [from, to) of `ep`, classified by tone. */
function heard(ep: RtpEndpoint, at: number[], from: number, to = Infinity): { tones: number[]; times: number[] } {
  const tones: number[] = [];
  const times: number[] = [];
  ep.received.forEach((p, i) => {
    if (p.payloadType === 0 && at[i]! >= from && at[i]! < to) {
      tones.push(toneOf(p));
      times.push(at[i]!);
    }
  });
  return { tones, times };
}

const count = (xs: number[], v: number): number => xs.filter((x) => x === v).length;

async function expectReleased(): Promise<void> {
  await waitFor('no rtpengine session', async () => (await h.rtpe.numSessions()) === 0, 3000);
  expect(h.receiver.openPorts).toBe(0);
  expect(h.receiver.openSinks).toBe(0);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const figures: Record<string, unknown> = {};
afterAll(() => console.log('audio fork figures:', JSON.stringify(figures)));

// ---------------------------------------------------------------------------------------------

describe('audio fork out: call audio to the consumer', () => {
  it('(a) bridge, stereo 8 kHz: metadata first, then L16 with the caller left (440 Hz) and the callee right (1000 Hz)', async () => {
    const c = await consumer();
    const dialer = new FakeDialer((callee) => cleanups.push(() => callee.close()));
    const { session, leg, caller } = await newCall(forkRule('bridge', { url: c.url, mix: 'stereo', sampleRate: 8000 }), { dialer });
    await session.start();
    await Promise.all([caller.send(leg.answered!, tone(440, 2000)), dialer.callee!.send(dialer.offer!, tone(1000, 2000))]);
    await sleep(150);
    const stats = session.audioForkStats!;
    await session.remoteBye('caller');
    await expectForkSocketsClosed(c);
    expect(c.connections).toHaveLength(1);
    const conn = c.connections[0]!;
    expect(conn.protocol).toBe('audio.jambonz.org');
    expect(conn.all[0]).toEqual({
      callSid: leg.callId,
      from: leg.from,
      to: leg.to,
      requestUri: leg.requestUri,
      direction: 'inbound',
      parties: ['caller', 'callee'],
      channels: ['caller', 'callee'],
      rule: 'fork-bridge',
      labels: ['forked'],
      sampleRate: 8000,
      mixType: 'stereo',
    });
    expect(texts(conn)).toHaveLength(1); // nothing but binary after the metadata
    expect(binaries(conn).every((b) => b.length === 640)).toBe(true); // 20 ms of 8 kHz stereo L16
    const [left, right] = deinterleave(audioOf(conn));
    figures.stereoSeconds = left.length / 8000;
    expect(left.length / 8000).toBeGreaterThan(1.8);
    const steady = (x: Int16Array): Int16Array => x.subarray(2400, x.length - 1600);
    expect(dominantFrequency(steady(left), 8000, [440, 1000])).toBe(440);
    expect(dominantFrequency(steady(right), 8000, [440, 1000])).toBe(1000);
    figures.stereoSeparationDb = Math.round(Math.min(toneRatioDb(steady(left), 8000, 440, [1000]), toneRatioDb(steady(right), 8000, 1000, [440])));
    expect(toneRatioDb(steady(left), 8000, 440, [1000])).toBeGreaterThan(30);
    expect(toneRatioDb(steady(right), 8000, 1000, [440])).toBeGreaterThan(30);
    // Aligned: both tones start within a frame or two of each other (they were sent together).
    const onset = (x: Int16Array): number => x.findIndex((v) => Math.abs(v) > 2000);
    figures.stereoOnsetSkewMs = Math.abs(onset(left) - onset(right)) / 8;
    expect(Math.abs(onset(left) - onset(right))).toBeLessThan(8 * 50);
    expect(stats).toMatchObject({ framesDropped: 0, overruns: 0, badMessages: 0 });
    await expectReleased();
  }, 30_000);

  it('(a) mono carries only the caller; mixed carries both', async () => {
    const c = await consumer();
    const calls = await Promise.all(
      (['mono', 'mixed'] as const).map(async (mix) => {
        const dialer = new FakeDialer((callee) => cleanups.push(() => callee.close()));
        const call = await newCall(forkRule('bridge', { url: c.url, mix }), { dialer });
        await call.session.start();
        return { ...call, dialer, mix };
      }),
    );
    await Promise.all(calls.flatMap(({ caller, leg, dialer }) => [caller.send(leg.answered!, tone(440, 1500)), dialer.callee!.send(dialer.offer!, tone(1000, 1500))]));
    await sleep(150);
    await Promise.all(calls.map(({ session }) => session.remoteBye('callee')));
    await expectForkSocketsClosed(c);
    const byMix = (mix: string): Int16Array => {
      const conn = c.connections.find((x) => (x.all[0] as { mixType?: string }).mixType === mix)!;
      expect(binaries(conn).every((b) => b.length === 640)).toBe(true); // 20 ms of 16 kHz mono L16
      return audioOf(conn).subarray(4800, -3200);
    };
    const mono = byMix('mono');
    const mixed = byMix('mixed');
    expect(dominantFrequency(mono, 16000, [440, 1000])).toBe(440);
    expect(toneRatioDb(mono, 16000, 440, [1000])).toBeGreaterThan(30);
    // Both tones, at the level they were sent (equal), far above anything else.
    expect(Math.abs(toneRatioDb(mixed, 16000, 440, [1000]))).toBeLessThan(3);
    expect(toneRatioDb(mixed, 16000, 1000, [600, 800])).toBeGreaterThan(30);
    await expectReleased();
  }, 30_000);
});

describe('audio fork out: audio from the consumer into the call', () => {
  it('(b) playAudio reaches the caller (far end muted meanwhile), playDone then the mark follow; killAudio stops a long play', async () => {
    const c = await consumer();
    const dialer = new FakeDialer((callee) => cleanups.push(() => callee.close()));
    const { session, leg, caller } = await newCall(forkRule('bridge', { url: c.url, mix: 'stereo', sampleRate: 8000 }), { dialer });
    const at = arrivals(caller);
    await session.start();
    const talking = Promise.all([caller.send(leg.answered!, tone(440, 5200)), dialer.callee!.send(dialer.offer!, tone(1000, 5200))]);
    const startedAt = performance.now();
    await waitFor('fork connected', () => c.connections.length === 1 && binaries(c.connections[0]!).length > 10);
    const conn = c.connections[0]!;
    await sleep(300);

    // ~1 s of 600 Hz as raw L16 at 8 kHz, then a mark behind it.
    const sentAt = performance.now();
    conn.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: pcmToLe(sine(600, 8000, 1000, 0.3)).toString('base64'), audioContentType: 'raw', sampleRate: 8000, textContent: 'hello' } }));
    conn.ws.send(JSON.stringify({ type: 'mark', data: { name: 'greeting-done' } }));
    await waitFor('mark', () => ofType(conn, 'mark').length === 1, 3000);
    const doneAt = performance.now();
    const order = texts(conn).map((m) => m.type);
    expect(order.indexOf('playDone')).toBeGreaterThan(0);
    expect(order.indexOf('playDone')).toBeLessThan(order.indexOf('mark'));
    expect(ofType(conn, 'playDone')[0]).toEqual({ type: 'playDone', data: { durationMs: 1000 } });
    expect(ofType(conn, 'mark')[0]).toEqual({ type: 'mark', data: { name: 'greeting-done', event: 'playout' } });
    const played = heard(caller, at, sentAt, doneAt);
    const first600 = played.times[played.tones.indexOf(600)]!;
    figures.playLatencyMs = Math.round(first600 - sentAt);
    figures.playDoneAfterMs = Math.round(doneAt - sentAt);
    figures.play600Packets = count(played.tones, 600);
    expect(first600 - sentAt).toBeLessThan(150);
    expect(count(played.tones, 600)).toBeGreaterThanOrEqual(45); // 50 packets of 20 ms
    // While it played the caller heard the prompt only: the callee was muted towards the caller.
    const during = heard(caller, at, first600 + 40, first600 + 900).tones;
    expect(count(during, 1000)).toBe(0);
    expect(doneAt - sentAt).toBeGreaterThan(950);
    expect(doneAt - sentAt).toBeLessThan(1400);
    // Afterwards the caller hears the callee again.
    await sleep(400);
    expect(count(heard(caller, at, doneAt + 150).tones, 1000)).toBeGreaterThan(5);

    // A 5 s play (two chunks), killed after 600 ms: the tone stops at once, the callee is back.
    const longAt = performance.now();
    conn.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: pcmToLe(sine(600, 8000, 5000, 0.3)).toString('base64'), sampleRate: 8000 } }));
    await sleep(600);
    const killAt = performance.now();
    conn.ws.send(JSON.stringify({ type: 'killAudio' }));
    await waitFor('interrupted playDone', () => ofType(conn, 'playDone').length === 2, 2000);
    expect(ofType(conn, 'playDone')[1]).toEqual({ type: 'playDone', data: { durationMs: 5000, interrupted: true } });
    await sleep(500);
    expect(count(heard(caller, at, longAt, killAt).tones, 600)).toBeGreaterThan(20);
    const afterKill = heard(caller, at, killAt + 60).tones;
    figures.tonePacketsAfterKill = count(heard(caller, at, killAt).tones, 600);
    expect(count(afterKill, 600)).toBe(0);
    expect(count(afterKill, 1000)).toBeGreaterThan(10);
    // The fork out kept streaming throughout, both channels: rtpengine 10.5 mutes the callee's own
    // fork while it is blocked towards the caller, so its channel is silence during the plays and
    // carries the callee again after them.
    const [, right] = deinterleave(audioOf(conn));
    const forkedMs = right.length / 8;
    figures.playCallForkedVsElapsedMs = [Math.round(forkedMs), Math.round(performance.now() - startedAt)];
    expect(forkedMs).toBeGreaterThan(performance.now() - startedAt - 400);
    const tail = right.subarray(right.length - 2400, right.length - 800);
    expect(dominantFrequency(tail, 8000, [440, 600, 1000])).toBe(1000);
    expect(rmsDb(tail)).toBeGreaterThan(-20);

    await talking;
    await session.remoteBye('caller');
    await expectForkSocketsClosed(c);
    expect(session.audioForkStats).toMatchObject({ badMessages: 0, messagesIn: 4 });
    await expectReleased();
  }, 30_000);

  it('(b) bidirectional: binary L16 streamed by the consumer is heard by the caller', async () => {
    const c = await consumer();
    const { session, leg, caller } = await newCall(forkRule('answer', { url: c.url, mix: 'mono', sampleRate: 16000, bidirectional: true }));
    const at = arrivals(caller);
    await session.start();
    const talking = caller.send(leg.answered!, tone(440, 2600));
    await waitFor('fork connected', () => c.connections.length === 1 && binaries(c.connections[0]!).length > 5);
    const conn = c.connections[0]!;
    // 1.2 s of 800 Hz at 16 kHz, one 20 ms frame every 20 ms, as a live consumer streams it.
    const pcm = sine(800, 16000, 1200, 0.3);
    const startedAt = performance.now();
    for (let i = 0; i < 60; i++) {
      conn.ws.send(pcmToLe(pcm.subarray(i * 320, (i + 1) * 320)));
      const due = startedAt + (i + 1) * 20 - performance.now();
      if (due > 0) await sleep(due);
    }
    await sleep(800);
    const got = heard(caller, at, startedAt);
    const first800 = got.times[got.tones.indexOf(800)]!;
    figures.streamLatencyMs = Math.round(first800 - startedAt);
    figures.stream800Packets = count(got.tones, 800);
    expect(first800 - startedAt).toBeLessThan(500);
    expect(count(got.tones, 800)).toBeGreaterThanOrEqual(50); // 60 sent
    await talking;
    await session.remoteBye('caller');
    await expectForkSocketsClosed(c);
    await expectReleased();
  }, 30_000);
});

describe('audio fork out: consumers that fail', () => {
  it('(c) the consumer drops its socket mid-call: the fork reconnects, sends the metadata again, and audio continues', async () => {
    const c = await consumer();
    const { session, leg, caller } = await newCall(forkRule('answer', { url: c.url, mix: 'mono' }));
    await session.start();
    const talking = caller.send(leg.answered!, tone(440, 3000));
    await waitFor('first connection audio', () => c.connections.length === 1 && binaries(c.connections[0]!).length >= 25);
    const droppedAt = performance.now();
    c.connections[0]!.ws.terminate();
    await waitFor('second connection audio', () => c.connections.length === 2 && binaries(c.connections[1]!).length >= 25, 5000);
    figures.reconnectMs = Math.round(performance.now() - droppedAt);
    const second = c.connections[1]!;
    expect(second.all[0]).toMatchObject({ callSid: leg.callId, mixType: 'mono', sampleRate: 16000 });
    expect(dominantFrequency(audioOf(second), 16000, [440, 1000])).toBe(440);
    await talking;
    await session.remoteBye('caller');
    await expectForkSocketsClosed(c);
    expect(c.connections).toHaveLength(2);
    await expectReleased();
  }, 30_000);

  it('(c) a consumer that never answers: one buffer overrun reported, the call ends without delay', async () => {
    const sockets: Socket[] = [];
    const server = createServer((s) => {
      sockets.push(s);
      s.resume(); // reads the upgrade request, never answers it
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    });
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
    const { session, leg, caller } = await newCall(forkRule('answer', { url, mix: 'stereo' }), { logger });
    const startAt = performance.now();
    await session.start();
    figures.setupWithDeadConsumerMs = Math.round(performance.now() - startAt);
    await caller.send(leg.answered!, tone(440, 3000));
    const stats = session.audioForkStats!;
    expect(stats.overruns).toBe(1);
    expect(stats.framesDropped).toBeGreaterThan(20);
    expect(stats.bufferedFrames).toBe(config.feeds.fork.bufferMs / 20);
    const byeAt = performance.now();
    await session.remoteBye('caller');
    figures.teardownWithDeadConsumerMs = Math.round(performance.now() - byeAt);
    expect(lines.filter((l) => l.msg === 'audio fork buffer overrun: dropping the oldest audio')).toHaveLength(1);
    const closed = lines.find((l) => l.msg === 'audio fork closed')!;
    expect(closed).toMatchObject({ overruns: 1, framesSent: 0 });
    // The half-open connection was dropped by the gateway.
    await waitFor('socket closed', () => sockets.every((s) => s.closed || s.readableEnded), 2000);
    // Teardown is the pipeline's flush and rtpengine's delete: the dead consumer adds nothing.
    expect(figures.teardownWithDeadConsumerMs).toBeLessThan(1500);
    expect(figures.setupWithDeadConsumerMs).toBeLessThan(1500);
    await expectReleased();
  }, 30_000);
});

describe('audio fork out: every ending path', () => {
  it('(d) CANCEL before the answer and a failed bridge never open a fork; a BYE and a shutdown close it with 1000', async () => {
    const c = await consumer();
    // CANCEL while the 200 OK is held.
    const cancelled = await newCall(forkRule('answer', { url: c.url }));
    let release!: () => void;
    cancelled.leg.gate = new Promise((r) => (release = r));
    const starting = cancelled.session.start();
    await waitFor('offered', () => cancelled.session.state.name !== 'new');
    await sleep(50);
    const cancelling = cancelled.session.cancel();
    release();
    await expect(starting).rejects.toThrow(/ended while starting/);
    await cancelling;
    // A bridge whose callee is busy.
    const busy = await newCall(forkRule('bridge', { url: c.url }), { dialer: new RejectingDialer(486, 'Busy Here') });
    await expect(busy.session.start()).rejects.toMatchObject({ code: 'CALLEE_REJECTED' });
    await sleep(100);
    expect(c.connections).toHaveLength(0);
    await expectReleased();

    // Callee BYE, and gateway shutdown, with the fork up.
    const dialer = new FakeDialer((callee) => cleanups.push(() => callee.close()));
    const byeCall = await newCall(forkRule('bridge', { url: c.url }), { dialer });
    const shutCall = await newCall(forkRule('answer', { url: c.url, bidirectional: true }));
    await Promise.all([byeCall.session.start(), shutCall.session.start()]);
    await Promise.all([byeCall.caller.send(byeCall.leg.answered!, tone(440, 500)), shutCall.caller.send(shutCall.leg.answered!, tone(440, 500))]);
    await waitFor('both forks up', () => c.connections.length === 2);
    // A play in progress when the call ends is stopped with it.
    c.connections[1]!.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: pcmToLe(sine(600, 16000, 3000)).toString('base64') } }));
    await sleep(200);
    await Promise.all([byeCall.session.remoteBye('callee'), shutCall.session.close('shutdown')]);
    await expectForkSocketsClosed(c);
    expect(c.connections.map((x) => x.closeCode)).toEqual([1000, 1000]);
    await sleep(700); // longer than reconnectMinMs: nothing reconnects after the call
    expect(c.connections).toHaveLength(2);
    await expectReleased();
  }, 30_000);

  it('(d) SIPREC: the recorded streams are forked as left and right; playback from the consumer is refused', async () => {
    const c = await consumer();
    const alice = await new RtpEndpoint('PCMU').open();
    const bob = await new RtpEndpoint('PCMU').open();
    cleanups.push(() => bob.close());
    const offer = twoPartySiprecOffer(alice, bob);
    const rule: CallRule = { name: 'recorder', action: 'siprec', labels: [], fork: { url: c.url, mix: 'stereo', sampleRate: 8000, bidirectional: true } };
    const { session, leg } = await newCall(rule, { caller: alice, offer });
    await session.start();
    await Promise.all([alice.send(leg.answered!, tone(440, 1500), 0x111, 0), bob.send(leg.answered!, tone(1000, 1500), 0x222, 1)]);
    const conn = c.connections[0]!;
    expect(conn.all[0]).toMatchObject({ parties: ['Alice', 'Bob'], mixType: 'stereo', sampleRate: 8000 });
    conn.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: pcmToLe(sine(600, 8000, 200)).toString('base64') } }));
    conn.ws.send(pcmToLe(sine(600, 8000, 20)));
    await waitFor('refused', () => session.audioForkStats!.playsRefused === 1 && session.audioForkStats!.messagesIn === 2);
    await session.remoteBye('caller');
    await expectForkSocketsClosed(c);
    const [left, right] = deinterleave(audioOf(conn));
    expect(dominantFrequency(left.subarray(2400, -1600), 8000, [440, 1000])).toBe(440);
    expect(dominantFrequency(right.subarray(2400, -1600), 8000, [440, 1000])).toBe(1000);
    expect(alice.received).toHaveLength(0);
    await expectReleased();
  }, 30_000);
});
