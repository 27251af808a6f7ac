/**
 * The ingest endpoints over real sockets with a stand-in VAD (it records the frames, scores
 * nothing): connection handling, close codes, call events and clean-up on every path. The speech
 * path with real Silero and whisper.cpp is test/integration/ingest.test.ts.
 */
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { SpeechRecognizer } from '../asr/recognizer.js';
import type { AudioFrame } from '../audio/frame.js';
import type { CallEvent } from '../transcripts/events.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { TranscriptStore } from '../transcripts/store.js';
import type { BatchedVad, VadStream } from '../vad/batched-vad.js';
import { CallEventHub } from '../transcripts/event-hub.js';
import { GatewayHttpServer } from '../http/server.js';
import { SpeechRuntime } from '../pipeline/speech-runtime.js';
import { AudioIngest } from './index.js';

const log = pino({ level: 'silent' });
const KEY = 'unit-test-ingest-key-0123';

/** Records each party's frames; never produces a window, so the recognizer is never asked. */
class FakeVad {
  readonly frames = new Map<string, AudioFrame[]>();
  open = 0;
  openStream(party: string): VadStream {
    this.open++;
    const list: AudioFrame[] = [];
    let closed = false;
    return {
      party,
      pendingWindows: 0,
      push: (frame) => {
        if (!closed) list.push({ ...frame, samples: frame.samples.slice() });
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.open--;
        this.frames.set(`${party}#${this.frames.size}`, list);
      },
    };
  }
  asVad(): BatchedVad {
    return { open: (party: string) => this.openStream(party), drain: async () => 0 } as unknown as BatchedVad;
  }
}

interface Client {
  readonly ws: WebSocket;
  readonly messages: Record<string, unknown>[];
  readonly closed: Promise<{ code: number; reason: string }>;
}

let config: Config;
let fakeVad: FakeVad;
let hub: CallEventHub;
let events: CallEvent[];
let ingest: AudioIngest;
let server: GatewayHttpServer;

async function start(overrides: Partial<Config['feeds']['ingest']> = {}, options = {}): Promise<void> {
  ingest = new AudioIngest({
    speech: new SpeechRuntime({ vad: fakeVad.asVad(), recognizerFor: () => ({}) as SpeechRecognizer, vadConfig: config.vad, transcripts: config.transcripts, publish: (e) => hub.publish(e) }),
    config: { ...config.feeds.ingest, apiKeys: [KEY], ...overrides },
    logger: log,
    options: { startTimeoutMs: 2000, closeTimeoutMs: 500, ...options },
  });
  server = await GatewayHttpServer.start({ host: '127.0.0.1', port: 0, health: () => ({ status: 'ok' }), logger: log, upgrades: ingest.upgrades });
}

async function stop(): Promise<void> {
  await ingest?.close();
  await server?.close();
}

function connect(path: string, headers: Record<string, string> = { authorization: `Bearer ${KEY}` }, protocols?: string[]): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`, protocols, { headers });
  const messages: Record<string, unknown>[] = [];
  ws.on('message', (data, isBinary) => {
    if (!isBinary) messages.push(JSON.parse(data.toString()) as Record<string, unknown>);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function refusal(path: string, headers: Record<string, string>): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => reject(new Error('upgrade accepted')));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', () => {});
  });
}

const kinds = (callId: string): string[] => events.filter((e) => e.callId === callId).map((e) => e.kind);

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function pcm(samples: number, value = 1000, channels = 1): Buffer {
  const b = Buffer.alloc(samples * channels * 2);
  for (let i = 0; i < samples; i++) for (let c = 0; c < channels; c++) b.writeInt16LE(c === 0 ? value : -value, (i * channels + c) * 2);
  return b;
}

beforeAll(() => {
  config = loadConfig({ env: {} });
});

afterEach(async () => {
  await stop();
});

describe('audio ingest connections', () => {
  beforeAll(() => {
    fakeVad = new FakeVad();
    events = [];
    hub = new CallEventHub({ store: { record: () => undefined } as unknown as TranscriptStore, logger: log });
    hub.on('event', (e) => events.push(e));
  });

  it('listen: metadata then odd-sized stereo PCM → two parties on one clock; close ends the call', async () => {
    await start();
    const c = await connect('/v1/listen', { authorization: `Bearer ${KEY}` }, ['audio.jambonz.org']);
    expect(c.ws.protocol).toBe('audio.jambonz.org');
    c.ws.send(JSON.stringify({ callSid: 'CA-listen', sampleRate: 16000, mixType: 'stereo', from: '+1', to: '+2' }));
    const audio = pcm(16000, 1000, 2); // 1 s of stereo
    for (let at = 0; at < audio.length; at += 333) c.ws.send(audio.subarray(at, at + 333));
    c.ws.send(JSON.stringify({ event: 'dtmf', dtmf: '5', duration: '1600' }));
    await until(() => events.some((e) => e.kind === 'dtmf'));
    c.ws.close(1000);
    await c.closed;
    await until(() => ingest.stats().connections === 0);
    const started = events.find((e) => e.kind === 'call.started')!;
    expect(started).toMatchObject({ rule: 'ingest:listen', labels: config.feeds.ingest.labels, parties: [{ name: 'caller' }, { name: 'callee' }] });
    expect(started.callId).toMatch(/^ingest-listen-CA-listen-[0-9a-f]{8}$/);
    expect(kinds(started.callId)).toEqual(['call.started', 'dtmf', 'ended', 'call.ended']);
    expect(events.find((e) => e.kind === 'dtmf')).toMatchObject({ party: 'caller', digit: '5', durationMs: 200 });
    expect(events.find((e) => e.kind === 'call.ended')).toMatchObject({ reason: 'hangup', parties: {} });
    const seqs = events.filter((e) => e.callId === started.callId).map((e) => e.seq);
    expect(seqs).toEqual([1, 2, 3, 4]);
    // 1 s per party: 50 frames of the audio, then the pipeline's tail of silence.
    const lists = [...fakeVad.frames.entries()];
    const caller = lists.find(([k]) => k.startsWith('caller'))![1];
    const callee = lists.find(([k]) => k.startsWith('callee'))![1];
    expect(caller.slice(0, 50).map((f) => f.startMs)).toEqual(Array.from({ length: 50 }, (_, i) => i * 20));
    expect(caller.slice(0, 50).every((f) => f.samples.every((s) => s === 1000))).toBe(true);
    expect(callee.slice(0, 50).every((f) => f.samples.every((s) => s === -1000))).toBe(true);
    expect(fakeVad.open).toBe(0);
    expect(ingest.stats()).toMatchObject({ connections: 0, accepted: 1, refused: 0, protocolErrors: 0 });
  });

  it('refuses before the upgrade: 401 without a valid key, 503 over the limit', async () => {
    await start({ maxConnections: 1 });
    expect(await refusal('/v1/stt', {})).toBe(401);
    expect(await refusal('/v1/stt', { authorization: 'Bearer wrong-key-wrong-key-12' })).toBe(401);
    const basic = await connect('/v1/twilio', { authorization: `Basic ${Buffer.from(`user:${KEY}`).toString('base64')}` });
    expect(await refusal('/v1/listen', { authorization: `Bearer ${KEY}` })).toBe(503);
    basic.ws.close();
    await basic.closed;
    await until(() => ingest.stats().connections === 0);
    const again = await connect('/v1/listen');
    again.ws.close();
    await again.closed;
    expect(ingest.stats()).toMatchObject({ accepted: 2, refused: 3 });
  });

  it('stt: start, audio, stop → the server closes with 1000 after the call ended', async () => {
    await start();
    events.length = 0;
    const c = await connect('/v1/stt');
    c.ws.send(JSON.stringify({ type: 'start', language: 'en-US', format: 'raw', encoding: 'LINEAR16', sampleRateHz: 8000, interimResults: false }));
    c.ws.send(pcm(1601).subarray(1)); // odd length: the stray byte waits for the next frame
    c.ws.send(pcm(10).subarray(0, 1));
    c.ws.send(JSON.stringify({ type: 'stop' }));
    expect(await c.closed).toMatchObject({ code: 1000 });
    const callId = events[0]!.callId;
    expect(callId).toMatch(/^ingest-stt-[0-9a-f]{8}$/);
    expect(kinds(callId)).toEqual(['call.started', 'ended', 'call.ended']);
    expect(c.messages).toEqual([]);
  });

  it('twilio: start, media on both tracks, dtmf, stop → parties, a dtmf event, 1000', async () => {
    await start();
    events.length = 0;
    const c = await connect('/v1/twilio');
    const send = (m: unknown): void => c.ws.send(JSON.stringify(m));
    send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    send({ event: 'start', sequenceNumber: '1', start: { streamSid: 'MZ9', accountSid: 'AC9', callSid: 'CA9', tracks: ['inbound', 'outbound'], customParameters: {}, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } }, streamSid: 'MZ9' });
    const payload = Buffer.alloc(160, 0xff).toString('base64');
    for (let i = 0; i < 10; i++) {
      send({ event: 'media', sequenceNumber: String(i + 2), media: { track: 'inbound', chunk: String(i + 1), timestamp: String(i * 20), payload }, streamSid: 'MZ9' });
      send({ event: 'media', sequenceNumber: String(i + 2), media: { track: 'outbound', chunk: String(i + 1), timestamp: String(i * 20), payload }, streamSid: 'MZ9' });
    }
    send({ event: 'dtmf', streamSid: 'MZ9', sequenceNumber: '30', dtmf: { track: 'inbound_track', digit: '7' } });
    send({ event: 'mark', streamSid: 'MZ9', mark: { name: 'm1' } });
    send({ event: 'stop', sequenceNumber: '31', stop: { accountSid: 'AC9', callSid: 'CA9' }, streamSid: 'MZ9' });
    expect(await c.closed).toMatchObject({ code: 1000 });
    const callId = events[0]!.callId;
    expect(callId).toMatch(/^ingest-twilio-CA9-/);
    expect(events[0]).toMatchObject({ kind: 'call.started', rule: 'ingest:twilio', parties: [{ name: 'caller' }, { name: 'callee' }] });
    expect(kinds(callId)).toEqual(['call.started', 'dtmf', 'ended', 'call.ended']);
    expect(events[1]).toMatchObject({ kind: 'dtmf', party: 'caller', digit: '7' });
  });

  it('bad input: an error message, then the close code; a started call still ends, as failed', async () => {
    await start({}, { maxPayloadBytes: 4096 });
    events.length = 0;
    const cases: { path: string; frames: (string | Buffer)[]; code: number; message?: RegExp; started: boolean }[] = [
      { path: '/v1/listen', frames: [pcm(10)], code: 1008, message: /metadata/, started: false },
      { path: '/v1/listen', frames: ['{"sampleRate":'], code: 1007, message: /JSON/, started: false },
      { path: '/v1/listen', frames: ['{"sampleRate":9000}'], code: 1003, message: /sampleRate/, started: false },
      { path: '/v1/listen', frames: ['{}', pcm(100), 'not json'], code: 1007, message: /JSON/, started: true },
      { path: '/v1/listen', frames: ['{}', pcm(100), Buffer.alloc(5000)], code: 1009, started: true },
      { path: '/v1/stt', frames: [pcm(10)], code: 1008, message: /before the start/, started: false },
      { path: '/v1/stt', frames: ['{"type":"stop"}'], code: 1008, message: /before the start/, started: false },
      { path: '/v1/stt', frames: ['{"type":"start"}', '{"type":"start"}'], code: 1008, message: /already started/, started: true },
      { path: '/v1/stt', frames: ['{"type":"hello"}'], code: 1003, message: /unknown message type/, started: false },
      { path: '/v1/twilio', frames: [pcm(10)], code: 1003, message: /binary/, started: false },
      { path: '/v1/twilio', frames: ['{"event":"media","media":{"payload":""}}'], code: 1008, message: /before the start/, started: false },
      { path: '/v1/twilio', frames: ['{"event":"start","start":{"tracks":["inbound"]}}', '{"event":"media","media":{"track":"outbound","payload":""}}'], code: 1007, message: /outbound/, started: true },
      { path: '/v1/twilio', frames: ['{"event":"start","start":{}}', '{"event":"media","media":{"payload":"%%%%"}}'], code: 1007, message: /base64/, started: true },
    ];
    for (const [i, t] of cases.entries()) {
      const before = events.length;
      const c = await connect(t.path);
      for (const f of t.frames) c.ws.send(f);
      const closed = await c.closed;
      expect(closed.code, `case ${i}`).toBe(t.code);
      if (t.message) {
        expect(c.messages, `case ${i}`).toHaveLength(1);
        expect(c.messages[0]).toMatchObject({ type: 'error', error: expect.stringMatching(t.message) });
      }
      await until(() => ingest.stats().connections === 0);
      const mine = events.slice(before);
      if (t.started) {
        expect(mine.map((e) => e.kind), `case ${i}`).toEqual(['call.started', 'ended', 'call.ended']);
        expect(mine[2]).toMatchObject({ reason: 'failed' });
      } else {
        expect(mine, `case ${i}`).toEqual([]);
      }
    }
    expect(ingest.stats().protocolErrors).toBe(cases.length);
    expect(fakeVad.open).toBe(0);
  });

  it('closes a client that never sends its start message (1008)', async () => {
    await start({}, { startTimeoutMs: 100 });
    const c = await connect('/v1/stt');
    expect(await c.closed).toMatchObject({ code: 1008 });
    expect(c.messages[0]).toMatchObject({ type: 'error', error: expect.stringMatching(/no start message/) });
  });

  it('close(): every open call ends as shutdown, clients get 1001, later upgrades 503', async () => {
    await start();
    events.length = 0;
    const a = await connect('/v1/listen');
    a.ws.send('{"callSid":"CA-a"}');
    a.ws.send(pcm(800));
    const b = await connect('/v1/twilio');
    b.ws.send('{"event":"start","start":{"streamSid":"MZ-b","tracks":["inbound"]}}');
    const idle = await connect('/v1/stt');
    await until(() => events.filter((e) => e.kind === 'call.started').length === 2);
    await ingest.close();
    expect((await a.closed).code).toBe(1001);
    expect((await b.closed).code).toBe(1001);
    expect((await idle.closed).code).toBe(1001);
    const ended = events.filter((e) => e.kind === 'call.ended');
    expect(ended.map((e) => e.kind === 'call.ended' && e.reason)).toEqual(['shutdown', 'shutdown']);
    expect(ingest.stats().connections).toBe(0);
    expect(await refusal('/v1/listen', { authorization: `Bearer ${KEY}` })).toBe(503);
  });
});

afterAll(async () => {
  await stop();
});
