import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { FRAME_SAMPLES, type AudioFrame } from '../audio/frame.js';
import { encodeWav } from '../audio/wav.js';
import type { FeedsConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { leToPcm, pcmToLe } from '../audio/pcm.js';
import { LegPlayback } from '../call/playback.js';
import type { MediaPlayer } from '../media/rtpengine/player.js';
import { AudioForkOut, type AudioForkOptions, ForkTotals } from './audio-fork.js';

/** A fork consumer: a real WebSocket server on loopback recording what each connection receives. */
interface Connection {
  readonly ws: WebSocket;
  readonly protocol: string;
  readonly texts: unknown[];
  readonly binaries: Buffer[];
  /** Every message in order: parsed JSON for text, the Buffer for binary. */
  readonly all: (unknown | Buffer)[];
  closeCode?: number;
}

interface Consumer {
  readonly url: string;
  readonly connections: Connection[];
  close(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function consumer(options: { verifyDelayMs?: number } = {}): Promise<Consumer> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    ...(options.verifyDelayMs ? { verifyClient: (_info: unknown, cb: (ok: boolean) => void) => void setTimeout(() => cb(true), options.verifyDelayMs) } : {}),
  });
  await once(wss, 'listening');
  const connections: Connection[] = [];
  wss.on('connection', (ws) => {
    const c: Connection = { ws, protocol: ws.protocol, texts: [], binaries: [], all: [] };
    connections.push(c);
    ws.on('message', (data, isBinary) => {
      const buf = data as Buffer;
      if (isBinary) {
        c.binaries.push(buf);
        c.all.push(buf);
      } else {
        const parsed: unknown = JSON.parse(buf.toString('utf8'));
        c.texts.push(parsed);
        c.all.push(parsed);
      }
    });
    ws.on('close', (code) => (c.closeCode = code));
  });
  const { port } = wss.address() as { port: number };
  const close = async (): Promise<void> => {
    for (const c of connections) c.ws.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  };
  cleanups.push(close);
  return { url: `ws://127.0.0.1:${port}/fork`, connections, close };
}

/** A TCP server that accepts connections and never answers the WebSocket handshake. */
async function silentServer(): Promise<{ url: string; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return { url: `ws://127.0.0.1:${(server.address() as { port: number }).port}`, sockets };
}

/** A recording fake of the media server's player: plays take `timeScale` of their real duration. */
class FakeMediaPlayer implements MediaPlayer {
  readonly plays: { samples: Int16Array; sampleRate: number; at: number }[] = [];
  stops = 0;
  fail = false;

  constructor(
    readonly sampleRate = 8000,
    readonly maxChunkSamples = 8000,
    private readonly timeScale = 0.1,
  ) {}

  async play(pcm: Int16Array): Promise<{ durationMs: number }> {
    if (this.fail) throw new Error('rtpengine said no');
    this.plays.push({ samples: pcm.slice(), sampleRate: this.sampleRate, at: performance.now() });
    return { durationMs: ((pcm.length * 1000) / this.sampleRate) * this.timeScale };
  }

  async stop(): Promise<{ positionMs?: number }> {
    this.stops++;
    return {};
  }
}

/** The call's playback owner over the fake player: the fork is one of its clients. */
function playbackOf(player: MediaPlayer): LegPlayback {
  const playback = new LegPlayback('caller', player, { logger: pino({ level: 'silent' }) });
  cleanups.push(() => playback.close());
  return playback;
}

const config: FeedsConfig['fork'] = { subprotocol: 'audio.jambonz.org', bufferMs: 1000, reconnectMinMs: 50, reconnectMaxMs: 200 };

function logCapture(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

function fork(url: string, overrides: Partial<AudioForkOptions> = {}): AudioForkOut {
  const f = new AudioForkOut({
    url,
    mix: 'stereo',
    sampleRate: 16000,
    bidirectional: false,
    channels: ['caller', 'callee'],
    metadata: { callSid: 'call-1', direction: 'inbound', parties: ['caller', 'callee'] },
    config,
    logger: pino({ level: 'silent' }),
    ...overrides,
  });
  cleanups.push(() => f.close());
  return f;
}

const frame = (party: string, startMs: number, value: number): AudioFrame => ({ party, startMs, samples: new Int16Array(FRAME_SAMPLES).fill(value) });

async function until(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const opened = (c: Consumer, n = 1): Promise<void> => until(`${n} connection(s)`, () => c.connections.length >= n && c.connections[n - 1]!.texts.length >= 1);
const typed = (c: Connection, type: string): Record<string, unknown>[] => c.texts.filter((t) => (t as { type?: string }).type === type) as Record<string, unknown>[];

describe('AudioForkOut: audio to the consumer', () => {
  it('sends the metadata first, with the subprotocol, then stereo L16 frames aligned by startMs', async () => {
    const c = await consumer();
    const f = fork(c.url);
    await opened(c);
    const conn = c.connections[0]!;
    expect(conn.protocol).toBe('audio.jambonz.org');
    expect(conn.all[0]).toEqual({ callSid: 'call-1', direction: 'inbound', parties: ['caller', 'callee'], sampleRate: 16000, mixType: 'stereo' });
    // The callee's frames come late and out of step with the caller's: still paired by startMs.
    f.push(frame('caller', 1000, 100));
    f.push(frame('caller', 1020, 101));
    f.push(frame('callee', 1002, -200));
    f.push(frame('callee', 1021, -201));
    f.push(frame('other', 1000, 7)); // not on a channel
    await until('2 frames', () => conn.binaries.length >= 2);
    const pcm = conn.binaries.map((b) => leToPcm(b));
    expect(pcm[0]!.length).toBe(2 * FRAME_SAMPLES);
    expect([pcm[0]![0], pcm[0]![1], pcm[0]![638], pcm[0]![639]]).toEqual([100, -200, 100, -200]);
    expect([pcm[1]![0], pcm[1]![1]]).toEqual([101, -201]);
    expect(conn.texts).toHaveLength(1); // only binary after the metadata
    expect(f.stats()).toMatchObject({ framesSent: 2, framesDropped: 0, connects: 1, connected: true });
  });

  it('mono carries the caller only; mixed sums both, clipped; 8 kHz halves the samples', async () => {
    const c = await consumer();
    const mono = fork(c.url, { mix: 'mono', sampleRate: 8000 });
    const mixed = fork(c.url, { mix: 'mixed' });
    await opened(c, 2);
    for (const f of [mono, mixed]) {
      f.push(frame('caller', 0, 30000));
      f.push(frame('callee', 0, 10000));
      f.push(frame('caller', 20, -30000));
      f.push(frame('callee', 20, -10000));
    }
    const [a, b] = c.connections;
    const monoConn = a!.texts[0] && (a!.texts[0] as { mixType: string }).mixType === 'mono' ? a! : b!;
    const mixedConn = monoConn === a ? b! : a!;
    await until('frames', () => monoConn.binaries.length >= 2 && mixedConn.binaries.length >= 2);
    expect(monoConn.texts[0]).toMatchObject({ sampleRate: 8000, mixType: 'mono' });
    expect(monoConn.binaries[0]!.length).toBe(320); // 160 samples at 8 kHz, one channel
    const mix = mixedConn.binaries.map((x) => leToPcm(x));
    expect(mix[0]!.length).toBe(FRAME_SAMPLES);
    expect(mix[0]![5]).toBe(32767);
    expect(mix[1]![5]).toBe(-32768);
  });

  it('a party that sends nothing is silence once the other is MAX_SKEW_MS ahead; a channel without a party never waits', async () => {
    const c = await consumer();
    const bridge = fork(c.url);
    await opened(c);
    for (let i = 0; i < 9; i++) bridge.push(frame('caller', i * 20, 5));
    expect(c.connections[0]!.binaries).toHaveLength(0);
    for (let i = 9; i < 15; i++) bridge.push(frame('caller', i * 20, 5));
    await until('frames', () => c.connections[0]!.binaries.length >= 4);
    const first = leToPcm(c.connections[0]!.binaries[0]!);
    expect([first[0], first[1]]).toEqual([5, 0]);
    // A late callee frame for a slot already sent is dropped, not sent out of order.
    bridge.push(frame('callee', 0, 9));
    expect(bridge.stats().lateFrames).toBe(1);

    const answered = fork(c.url, { channels: ['caller', undefined] });
    await opened(c, 2);
    answered.push(frame('caller', 0, 3));
    await until('frame', () => c.connections[1]!.binaries.length === 1);
  });

  it('holds audio until the socket opens, then sends metadata and the held frames in order', async () => {
    const c = await consumer({ verifyDelayMs: 150 });
    const f = fork(c.url, { mix: 'mono' });
    for (let i = 0; i < 10; i++) f.push(frame('caller', i * 20, i));
    expect(f.stats().bufferedFrames).toBe(10);
    await opened(c);
    await until('10 frames', () => c.connections[0]!.binaries.length === 10);
    expect(c.connections[0]!.binaries.map((b) => leToPcm(b)[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(f.stats().framesDropped).toBe(0);
  });

  it('a buffer overrun drops the oldest audio, is logged and counted once, and reported once writable', async () => {
    const c = await consumer({ verifyDelayMs: 300 });
    const { logger, lines } = logCapture();
    const f = fork(c.url, { mix: 'mono', logger });
    for (let i = 0; i < 80; i++) f.push(frame('caller', i * 20, i)); // 1.6 s into a 1 s buffer
    expect(f.stats()).toMatchObject({ framesDropped: 30, overruns: 1, bufferedFrames: 50 });
    expect(lines.filter((l) => l.msg === 'audio fork buffer overrun: dropping the oldest audio')).toHaveLength(1);
    await opened(c);
    const conn = c.connections[0]!;
    await until('held frames', () => conn.binaries.length === 50);
    expect(conn.all[1]).toEqual({ type: 'event', data: { event: 'buffer_overrun', droppedMs: 600 } });
    expect(leToPcm(conn.binaries[0]!)[0]).toBe(30); // the oldest 30 went
    // Writable again: a later overrun is a new episode.
    expect(f.stats().overruns).toBe(1);
  });

  it('a consumer that never answers: audio overruns once, and close() is immediate', async () => {
    const s = await silentServer();
    const totals = new ForkTotals();
    const f = fork(s.url, { mix: 'mono', totals });
    expect(totals.open).toBe(1);
    for (let i = 0; i < 200; i++) f.push(frame('caller', i * 20, 1));
    await until('connection', () => s.sockets.length === 1);
    expect(f.stats()).toMatchObject({ overruns: 1, framesDropped: 150, framesSent: 0, connected: false });
    const t0 = performance.now();
    await f.close();
    expect(performance.now() - t0).toBeLessThan(50);
    // The gateway-wide totals keep what the fork dropped after it is gone.
    await f.close();
    expect({ ...totals }).toEqual({ open: 0, framesDropped: 150, overruns: 1, reconnects: 0 });
  });

  it('reconnects with backoff when the consumer drops the socket, sending the metadata again', async () => {
    const c = await consumer();
    const f = fork(c.url, { mix: 'mono' });
    await opened(c);
    f.push(frame('caller', 0, 1));
    await until('frame', () => c.connections[0]!.binaries.length === 1);
    c.connections[0]!.ws.terminate();
    await until('closed', () => !f.stats().connected);
    f.push(frame('caller', 20, 2)); // held while reconnecting
    await opened(c, 2);
    await until('held frame', () => c.connections[1]!.binaries.length === 1);
    expect(c.connections[1]!.all[0]).toMatchObject({ callSid: 'call-1', mixType: 'mono' });
    expect(leToPcm(c.connections[1]!.binaries[0]!)[0]).toBe(2);
    expect(f.stats()).toMatchObject({ reconnects: 1, connects: 2 });
  });

  it('backs off from reconnectMinMs doubling to reconnectMaxMs while the consumer is down, and close() cancels it', async () => {
    const s = await silentServer();
    const port = new URL(s.url).port;
    // Nothing listens on a port just released: every attempt is refused at once.
    const dead = `ws://127.0.0.1:${port}`;
    await cleanups.pop()!();
    const { logger, lines } = logCapture();
    const f = fork(dead, { logger, config: { ...config, reconnectMinMs: 20, reconnectMaxMs: 80 } });
    await new Promise((r) => setTimeout(r, 400));
    const attempts = f.stats().reconnects;
    // 20 + 40 + 80 + 80 + 80... ms: about 6 attempts in 400 ms (never 20 at a flat 20 ms).
    expect(attempts).toBeGreaterThanOrEqual(3);
    expect(attempts).toBeLessThanOrEqual(7);
    expect(lines.filter((l) => l.msg === 'audio fork socket closed: reconnecting').length).toBeGreaterThanOrEqual(3);
    await f.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(f.stats().reconnects).toBe(attempts);
  });

  it('close() sends the last aligned audio and closes with 1000; no reconnect after', async () => {
    const c = await consumer();
    const f = fork(c.url);
    await opened(c);
    f.push(frame('caller', 0, 1)); // waiting for the callee
    await f.close();
    await until('close seen', () => c.connections[0]!.closeCode !== undefined);
    expect(c.connections[0]!.closeCode).toBe(1000);
    expect(c.connections[0]!.binaries).toHaveLength(1);
    f.push(frame('caller', 20, 1));
    await new Promise((r) => setTimeout(r, 150));
    expect(c.connections).toHaveLength(1);
    await f.close(); // idempotent
  });
});

describe('AudioForkOut: messages from the consumer', () => {
  const raw = (pcm: Int16Array): string => pcmToLe(pcm).toString('base64');
  const tone = (n: number, v = 1000): Int16Array => new Int16Array(n).fill(v);

  it('plays playAudio (raw) at the player rate in chunks back to back, then sends playDone; a later mark follows it', async () => {
    const c = await consumer();
    const player = new FakeMediaPlayer(8000, 4000);
    const f = fork(c.url, { playback: playbackOf(player), sampleRate: 16000 });
    await opened(c);
    const conn = c.connections[0]!;
    // 1 s at 16 kHz → 8000 samples at 8 kHz → two chunks of 4000.
    conn.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: raw(tone(16000)), audioContentType: 'raw', sampleRate: 16000, id: 'p1' } }));
    conn.ws.send(JSON.stringify({ type: 'mark', data: { name: 'after-hello' } }));
    await until('mark', () => typed(conn, 'mark').length === 1);
    expect(player.plays.map((p) => [p.samples.length, p.sampleRate])).toEqual([
      [4000, 8000],
      [4000, 8000],
    ]);
    // The second chunk started when the first one's (scaled) 50 ms had elapsed.
    expect(player.plays[1]!.at - player.plays[0]!.at).toBeGreaterThanOrEqual(48);
    const done = conn.texts.findIndex((t) => (t as { type: string }).type === 'playDone');
    const mark = conn.texts.findIndex((t) => (t as { type: string }).type === 'mark');
    expect(conn.texts[done]).toEqual({ type: 'playDone', data: { id: 'p1', durationMs: 1000 } });
    expect(conn.texts[mark]).toEqual({ type: 'mark', data: { name: 'after-hello', event: 'playout' } });
    expect(done).toBeLessThan(mark);
    // The queue ran dry: the player was stopped (the far end's audio given back).
    await until('stop', () => player.stops === 1);
    expect(player.plays).toHaveLength(2);
    expect(f.stats()).toMatchObject({ playsQueued: 1, playsDone: 1, playsRefused: 0 });
  });

  it('plays WAV content, and a mark with nothing queued is echoed at once', async () => {
    const c = await consumer();
    const player = new FakeMediaPlayer();
    fork(c.url, { playback: playbackOf(player) });
    await opened(c);
    const conn = c.connections[0]!;
    conn.ws.send(JSON.stringify({ type: 'mark', data: { name: 'm0' } }));
    await until('mark', () => typed(conn, 'mark').length === 1);
    conn.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: encodeWav(tone(800), 8000).toString('base64'), audioContentType: 'wav' } }));
    await until('playDone', () => typed(conn, 'playDone').length === 1);
    expect(player.plays[0]!.samples.length).toBe(800);
    expect(typed(conn, 'playDone')[0]).toEqual({ type: 'playDone', data: { durationMs: 100 } });
  });

  it('killAudio stops playback now, drops the queue (playDone interrupted, marks cleared); clearMarks echoes cleared', async () => {
    const c = await consumer();
    const player = new FakeMediaPlayer(8000, 1600, 1); // real time: 200 ms chunks
    const f = fork(c.url, { playback: playbackOf(player), sampleRate: 8000 });
    await opened(c);
    const conn = c.connections[0]!;
    conn.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: raw(tone(16000)) } })); // 2 s
    conn.ws.send(JSON.stringify({ type: 'mark', data: { name: 'a' } }));
    conn.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: raw(tone(800)), id: 2 } }));
    conn.ws.send(JSON.stringify({ type: 'mark', data: { name: 'b' } }));
    conn.ws.send(JSON.stringify({ type: 'clearMarks' }));
    await until('cleared', () => typed(conn, 'mark').length === 2);
    expect(typed(conn, 'mark').map((m) => m.data)).toEqual([
      { name: 'a', event: 'cleared' },
      { name: 'b', event: 'cleared' },
    ]);
    conn.ws.send(JSON.stringify({ type: 'mark', data: { name: 'c' } }));
    await new Promise((r) => setTimeout(r, 250));
    conn.ws.send(JSON.stringify({ type: 'killAudio' }));
    await until('playDone x2', () => typed(conn, 'playDone').length === 2);
    expect(player.stops).toBe(1);
    const played = player.plays.length;
    expect(played).toBeGreaterThanOrEqual(1);
    expect(played).toBeLessThan(4);
    expect(typed(conn, 'playDone').map((m) => m.data)).toEqual([
      { durationMs: 2000, interrupted: true },
      { id: 2, durationMs: 100, interrupted: true },
    ]);
    expect(typed(conn, 'mark').at(-1)).toEqual({ type: 'mark', data: { name: 'c', event: 'cleared' } });
    await new Promise((r) => setTimeout(r, 300));
    expect(player.plays.length).toBe(played);
    // Playback goes on normally after a kill.
    conn.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: raw(tone(160)) } }));
    await until('playDone', () => typed(conn, 'playDone').length === 3);
    expect(f.stats().badMessages).toBe(0);
  });

  it('bidirectional: binary L16 from the consumer is played in streamChunkMs chunks, partial tails after a pause', async () => {
    const c = await consumer();
    const player = new FakeMediaPlayer(8000, 8000, 1);
    fork(c.url, { playback: playbackOf(player), sampleRate: 16000, bidirectional: true, streamChunkMs: 200 });
    await opened(c);
    const conn = c.connections[0]!;
    // 500 ms as 25 frames of 20 ms at 16 kHz, one odd-length split among them.
    const all = pcmToLe(tone(8000, 500));
    conn.ws.send(all.subarray(0, 641));
    for (let at = 641; at < all.length; at += 640) conn.ws.send(all.subarray(at, Math.min(all.length, at + 640)));
    await until('3 chunks', () => player.plays.length === 3, 2000);
    const lengths = player.plays.map((p) => p.samples.length);
    expect(lengths[0]).toBeGreaterThanOrEqual(1600);
    expect(lengths.reduce((a, b) => a + b, 0)).toBeGreaterThan(3900); // 4000 less the resampler's delay
    expect(player.plays.every((p) => p.sampleRate === 8000)).toBe(true);
  });

  it('counts and logs malformed and unknown messages, and binary without bidirectional, without failing', async () => {
    const c = await consumer();
    const { logger, lines } = logCapture();
    const player = new FakeMediaPlayer();
    const f = fork(c.url, { playback: playbackOf(player), logger });
    await opened(c);
    const conn = c.connections[0]!;
    conn.ws.send('not json');
    conn.ws.send(JSON.stringify({ type: 'dance' }));
    conn.ws.send(JSON.stringify({ data: {} }));
    conn.ws.send(JSON.stringify({ type: 'playAudio', data: {} }));
    conn.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: 'AAAA', audioContentType: 'mp3' } }));
    conn.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: 'AAAA', audioContentType: 'wav' } }));
    conn.ws.send(Buffer.alloc(640));
    conn.ws.send(JSON.stringify({ type: 'mark', data: { name: 'still-alive' } }));
    await until('mark', () => typed(conn, 'mark').length === 1);
    expect(f.stats()).toMatchObject({ messagesIn: 8, badMessages: 7 });
    const warned = lines.filter((l) => l.msg === 'audio fork message from the consumer ignored');
    expect(warned).toHaveLength(7);
    expect(warned.map((l) => l.reason)).toContain('unknown message type');
    expect(player.plays).toHaveLength(0);
  });

  it('refuses playback where the call has nothing to play into', async () => {
    const c = await consumer();
    const f = fork(c.url);
    await opened(c);
    c.connections[0]!.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: raw(tone(160)) } }));
    await until('refused', () => f.stats().playsRefused === 1);
  });

  it('a failing player does not stop the queue: the play is counted and done', async () => {
    const c = await consumer();
    const player = new FakeMediaPlayer();
    player.fail = true;
    const f = fork(c.url, { playback: playbackOf(player) });
    await opened(c);
    c.connections[0]!.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: raw(tone(1600)) } }));
    await until('playDone', () => typed(c.connections[0]!, 'playDone').length === 1);
    expect(f.stats().playsRefused).toBe(1);
  });

  it('disconnect: the fork closes the socket with 1000, stops playback, and never reconnects', async () => {
    const c = await consumer();
    const player = new FakeMediaPlayer(8000, 8000, 1);
    const f = fork(c.url, { playback: playbackOf(player), mix: 'mono' });
    await opened(c);
    const conn = c.connections[0]!;
    conn.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: raw(tone(16000)) } }));
    await until('playing', () => player.plays.length === 1);
    conn.ws.send(JSON.stringify({ type: 'disconnect' }));
    await until('closed', () => conn.closeCode !== undefined);
    expect(conn.closeCode).toBe(1000);
    expect(player.stops).toBe(1);
    f.push(frame('caller', 0, 1));
    await new Promise((r) => setTimeout(r, 200));
    expect(c.connections).toHaveLength(1);
    expect(f.stats().reconnects).toBe(0);
  });
});
