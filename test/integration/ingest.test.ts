/**
 * The audio ingest endpoints end to end with real components: an HTTP server with the ingest
 * upgrades, the SQLite transcript store behind the event hub, the batched Silero VAD running in
 * real time and whisper-server on the tiny random-weight model. Clients speak each platform's
 * format (jambonz listen, jambonz custom STT, Twilio Media Streams) and send espeak-ng speech in
 * real time. The tiny model's words are nonsense: these tests assert event shapes, parties and
 * order, never words.
 *
 * The fuzz part throws seeded random, truncated and ill-typed messages at each endpoint: every
 * connection must end with an error message and/or a close code, every call it started must end,
 * and the server must still transcribe afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { WhisperEngine } from '../../src/asr/whisper/engine.js';
import { encodeUlawBuffer } from '../../src/audio/g711.js';
import type { CallEvent } from '../../src/transcripts/events.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { TokenAuth } from '../../src/http/auth.js';
import { CallEventHub } from '../../src/transcripts/event-hub.js';
import { GatewayHttpServer } from '../../src/http/server.js';
import { AudioIngest } from '../../src/ingest/index.js';
import { SpeechRuntime } from '../../src/pipeline/speech-runtime.js';
import { SupervisorFeed } from '../../src/feeds/supervisor.js';
import type { TranscriptEvent } from '../../src/transcripts/events.js';
import { TranscriptStore } from '../../src/transcripts/store.js';
import { BatchedVad } from '../../src/vad/batched-vad.js';
import { synthesize } from '../support/speech.js';
import { randomModelConfig, startTinyEngine } from '../support/whisper.js';

const log = pino({ level: 'silent' });
const KEY = 'integration-ingest-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };
const SENTENCE = 'My card number ends in four two seven.';
const MAX_PAYLOAD = 1 << 20;

let config: Config;
let vad: BatchedVad;
let engine: WhisperEngine;
let store: TranscriptStore;
let storeDir: string;
let hub: CallEventHub;
let ingest: AudioIngest;
let speech: SpeechRuntime;
let server: GatewayHttpServer;
let feed: SupervisorFeed;
const SUPERVISOR_TOKEN = 'integration-supervisor-token-0123456789';
/** A supervisor watching every call from the start, through the real feed. */
let supervisor: WebSocket;
const supervised: Record<string, unknown>[] = [];
const events: CallEvent[] = [];
/** The sentence at 8 kHz and at 16 kHz with 300 ms of silence before and 1500 ms after. */
let speech8k: Int16Array;
let speech16k: Int16Array;

function padded(samples: Int16Array, rate: number, leadMs: number, tailMs: number): Int16Array {
  const lead = (rate * leadMs) / 1000;
  const out = new Int16Array(lead + samples.length + (rate * tailMs) / 1000);
  out.set(samples, lead);
  return out;
}

beforeAll(async () => {
  config = randomModelConfig();
  config.transcripts.partialIntervalMs = 400;
  storeDir = mkdtempSync(join(tmpdir(), 'whisperline-ingest-'));
  store = TranscriptStore.open(join(storeDir, 'transcripts.db'));
  hub = new CallEventHub({ store, logger: log });
  hub.on('event', (event) => events.push(event));
  vad = await BatchedVad.create(config.vad);
  vad.start();
  engine = await startTinyEngine(config, log);
  speech = new SpeechRuntime({ vad, recognizerFor: () => engine, vadConfig: config.vad, transcripts: config.transcripts, publish: (e) => hub.publish(e) });
  ingest = new AudioIngest({
    speech,
    config: { apiKeys: [KEY], maxConnections: 64, maxConnectionsPerClient: 64, allowedOrigins: ['https://agent-desk.example.com'], labels: ['ingest', 'test'] },
    logger: log,
    options: { maxPayloadBytes: MAX_PAYLOAD },
  });
  feed = new SupervisorFeed({
    hub,
    store,
    auth: new TokenAuth([{ name: 'ingest-test', token: SUPERVISOR_TOKEN, labels: ['ingest'] }]),
    config: loadConfig({ env: {} }).supervisor,
    logger: log,
  });
  server = await GatewayHttpServer.start({ host: '127.0.0.1', port: 0, health: () => ({ status: 'ok' }), logger: log, upgrades: { ...ingest.upgrades, '/v1/supervisor': feed.handleUpgrade } });
  supervisor = new WebSocket(`ws://127.0.0.1:${server.port}/v1/supervisor?token=${SUPERVISOR_TOKEN}`);
  supervisor.on('message', (data) => supervised.push(JSON.parse(data.toString()) as Record<string, unknown>));
  await new Promise((resolve, reject) => supervisor.once('open', resolve).once('error', reject));
  const [s8, s16] = await Promise.all([synthesize(SENTENCE, 8000), synthesize(SENTENCE, 16000)]);
  speech8k = padded(s8, 8000, 300, 1500);
  speech16k = padded(s16, 16000, 300, 1500);
}, 300_000);

afterAll(async () => {
  supervisor?.terminate();
  await ingest?.close();
  await feed?.close();
  await server?.close();
  vad?.stop();
  await engine?.close();
  await vad?.close();
  store?.close();
  if (storeDir) rmSync(storeDir, { recursive: true, force: true });
});

interface Client {
  readonly ws: WebSocket;
  readonly messages: Record<string, unknown>[];
  readonly closed: Promise<number>;
}

function connect(path: string, headers: Record<string, string> = AUTH, protocols?: string[], port = server.port): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols, { headers });
  const messages: Record<string, unknown>[] = [];
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    try {
      messages.push(JSON.parse(data.toString()) as Record<string, unknown>);
    } catch {
      messages.push({ unparsable: data.toString() });
    }
  });
  ws.on('error', () => {});
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** The status of a refused upgrade (from the client's 'unexpected-response'). */
function refusedWith(path: string, headers: Record<string, string>, port = server.port): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => reject(new Error('the upgrade was accepted')));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on('error', () => {});
  });
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Sends `total` bytes in real time (`bytesPerMs`): every 20 ms what is due by then, cut at odd
 * offsets now and then so messages do not line up with samples or frames.
 */
async function sendRealtime(total: number, bytesPerMs: number, send: (from: number, to: number) => void): Promise<void> {
  const t0 = Date.now();
  let sent = 0;
  for (let i = 0; sent < total; i++) {
    const due = Math.min(total, Math.floor((i + 1) * 20 * bytesPerMs) + (i % 3 === 1 ? 3 : 0));
    if (due > sent) send(sent, due);
    sent = Math.max(sent, due);
    const wait = t0 + (i + 1) * 20 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

function s16le(samples: Int16Array): Buffer {
  const b = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) b.writeInt16LE(samples[i]!, i * 2);
  return b;
}

const callEvents = (callId: string): CallEvent[] => events.filter((e) => e.callId === callId);
const finalsOf = (callId: string): TranscriptEvent[] => callEvents(callId).filter((e): e is TranscriptEvent => e.kind === 'final');

/** The newest call.started of `rule` (the call a test just opened). */
function startedCall(rule: string): string {
  const started = events.filter((e) => e.kind === 'call.started' && e.rule === rule);
  return started[started.length - 1]!.callId;
}

/** A call's events are one seq series from call.started to call.ended. */
function expectWholeCall(callId: string, reason: string): void {
  const mine = callEvents(callId);
  expect(mine[0]!.kind).toBe('call.started');
  expect(mine[mine.length - 1]).toMatchObject({ kind: 'call.ended', reason });
  expect(mine[mine.length - 2]).toMatchObject({ kind: 'ended', reason });
  const seqs = mine.map((e) => e.seq);
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  expect(new Set(seqs).size).toBe(seqs.length);
}

describe('audio ingest with real VAD and whisper.cpp', () => {
  it('/v1/listen: stereo 16 kHz with speech on the left → finals for the caller only, replies on the socket', async () => {
    const c = await connect('/v1/listen', AUTH, ['audio.jambonz.org']);
    expect(c.ws.protocol).toBe('audio.jambonz.org');
    c.ws.send(JSON.stringify({ callSid: 'CA-listen-1', from: '+15551230000', to: '+15559870000', direction: 'inbound', sampleRate: 16000, mixType: 'stereo', metadata: { team: 'support' } }));
    const stereo = Buffer.alloc(speech16k.length * 4);
    for (let i = 0; i < speech16k.length; i++) stereo.writeInt16LE(speech16k[i]!, i * 4); // right channel stays silent
    await sendRealtime(stereo.length, 64, (from, to) => c.ws.send(stereo.subarray(from, to)));
    const callId = startedCall('ingest:listen');
    // The final arrives within the tail; wait for its reply before hanging up.
    await until(() => c.messages.some((m) => m.type === 'transcription'), 15_000, 'a transcription reply');
    c.ws.close(1000);
    await c.closed;
    await until(() => callEvents(callId).some((e) => e.kind === 'call.ended'), 15_000, 'call.ended');

    expect(callEvents(callId)[0]).toMatchObject({ kind: 'call.started', rule: 'ingest:listen', labels: ['ingest', 'test'], parties: [{ name: 'caller' }, { name: 'callee' }] });
    expect(callId).toMatch(/^ingest-listen-CA-listen-1-[0-9a-f]{8}$/);
    const finals = finalsOf(callId);
    expect(finals.length).toBeGreaterThanOrEqual(1);
    expect(new Set(finals.map((f) => f.party))).toEqual(new Set(['caller']));
    expectWholeCall(callId, 'hangup');
    const replies = c.messages.filter((m) => m.type === 'transcription');
    for (const r of replies) {
      const data = r.data as Record<string, unknown>;
      expect(data).toMatchObject({ callId, callSid: 'CA-listen-1', party: 'caller', channel: 1, is_final: true, transcript: expect.any(String), confidence: expect.any(Number) });
      expect(finals.some((f) => f.seq === data.seq && f.text === data.transcript)).toBe(true);
    }
    // Stored before published: the store has the call and its finals.
    expect(store.call(callId)).toMatchObject({ rule: 'ingest:listen', endReason: 'hangup' });
    expect(store.eventsAfter(callId, 0).filter((e) => e.event.kind === 'final')).toHaveLength(finals.length);
  }, 40_000);

  it('/v1/stt: start, LINEAR16 in real time, stop → transcription messages, then the server closes', async () => {
    const c = await connect('/v1/stt');
    c.ws.send(JSON.stringify({ type: 'start', language: 'en-US', format: 'raw', encoding: 'LINEAR16', sampleRateHz: 8000, interimResults: true, options: {} }));
    const pcm = s16le(speech8k);
    await sendRealtime(pcm.length, 16, (from, to) => c.ws.send(pcm.subarray(from, to)));
    c.ws.send(JSON.stringify({ type: 'stop' }));
    expect(await c.closed).toBe(1000);
    const callId = startedCall('ingest:stt');
    const finals = finalsOf(callId);
    expect(finals.length).toBeGreaterThanOrEqual(1);
    expect(finals.every((f) => f.party === 'caller')).toBe(true);
    expectWholeCall(callId, 'hangup');
    const transcriptions = c.messages.filter((m) => m.type === 'transcription');
    expect(c.messages.filter((m) => m.type !== 'transcription')).toEqual([]);
    const finalReplies = transcriptions.filter((m) => m.is_final === true);
    // Every final went out before the close.
    expect(finalReplies.map((m) => (m.alternatives as { transcript: string }[])[0]!.transcript)).toEqual(finals.map((f) => f.text));
    for (const m of transcriptions) {
      expect(m).toEqual({ type: 'transcription', is_final: expect.any(Boolean), alternatives: [{ transcript: expect.any(String), confidence: expect.any(Number) }], channel: 1, language: 'en-US' });
    }
    // Partials (interimResults) come before the final they preview.
    const lastFinal = transcriptions.lastIndexOf(finalReplies[finalReplies.length - 1]!);
    expect(transcriptions.slice(lastFinal + 1)).toEqual([]);
  }, 40_000);

  it('/v1/twilio: inbound speech, silent outbound, a dtmf → caller finals and a dtmf event on the hub', async () => {
    const c = await connect('/v1/twilio');
    const send = (m: unknown): void => c.ws.send(JSON.stringify(m));
    const streamSid = 'MZ-integration';
    send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    send({
      event: 'start',
      sequenceNumber: '1',
      start: { streamSid, accountSid: 'AC-x', callSid: 'CA-twilio-1', tracks: ['inbound', 'outbound'], customParameters: { team: 'support' }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } },
      streamSid,
    });
    const ulaw = Buffer.from(encodeUlawBuffer(speech8k));
    const silence = Buffer.alloc(160, 0xff).toString('base64');
    let seq = 2;
    let chunk = 0;
    await sendRealtime(ulaw.length, 8, (from, to) => {
      // Twilio sends 20 ms (160 bytes) per message; the pacer's odd cuts only shift a few bytes.
      chunk++;
      const timestamp = String(Math.round(from / 8));
      send({ event: 'media', sequenceNumber: String(seq++), media: { track: 'inbound', chunk: String(chunk), timestamp, payload: ulaw.subarray(from, to).toString('base64') }, streamSid });
      send({ event: 'media', sequenceNumber: String(seq++), media: { track: 'outbound', chunk: String(chunk), timestamp, payload: silence }, streamSid });
      if (chunk === 40) send({ event: 'dtmf', streamSid, sequenceNumber: String(seq++), dtmf: { track: 'inbound_track', digit: '4' } });
      if (chunk === 41) send({ event: 'mark', streamSid, sequenceNumber: String(seq++), mark: { name: 'greeting' } });
    });
    send({ event: 'stop', sequenceNumber: String(seq++), stop: { accountSid: 'AC-x', callSid: 'CA-twilio-1' }, streamSid });
    expect(await c.closed).toBe(1000);
    const callId = startedCall('ingest:twilio');
    expect(callId).toMatch(/^ingest-twilio-CA-twilio-1-/);
    expect(callEvents(callId)[0]).toMatchObject({ parties: [{ name: 'caller' }, { name: 'callee' }] });
    const finals = finalsOf(callId);
    expect(finals.length).toBeGreaterThanOrEqual(1);
    expect(new Set(finals.map((f) => f.party))).toEqual(new Set(['caller']));
    expect(callEvents(callId).filter((e) => e.kind === 'dtmf')).toEqual([expect.objectContaining({ kind: 'dtmf', party: 'caller', digit: '4' })]);
    expectWholeCall(callId, 'hangup');
    expect(c.messages).toEqual([]);
  }, 40_000);

  it('every ingested call above reached the supervisor feed: started, each final, ended', async () => {
    const rules = ['ingest:listen', 'ingest:stt', 'ingest:twilio'];
    const calls = events.filter((e) => e.kind === 'call.started' && rules.includes(e.rule));
    expect(calls.map((c) => (c.kind === 'call.started' ? c.rule : '')).sort()).toEqual(rules);
    for (const started of calls) {
      const onHub = events.filter((e) => e.callId === started.callId && (e.kind === 'final' || e.kind === 'call.ended'));
      await until(() => supervised.some((m) => m.callId === started.callId && m.type === 'call.ended'), 10_000, `${started.callId} on the feed`);
      const onFeed = supervised.filter((m) => m.callId === started.callId);
      expect(onFeed[0]).toMatchObject({ type: 'call.started', labels: ['ingest', 'test'] });
      expect(onFeed.filter((m) => m.type === 'transcript.final' || m.type === 'call.ended').map((m) => m.seq)).toEqual(onHub.map((e) => e.seq));
      expect(onHub.filter((e) => e.kind === 'final').length).toBeGreaterThan(0);
    }
  });

  it('refuses an upgrade without a valid key with 401 and takes Bearer or Basic', async () => {
    for (const path of ['/v1/listen', '/v1/stt', '/v1/twilio']) {
      expect(await refusedWith(path, {})).toBe(401);
      expect(await refusedWith(path, { authorization: 'Bearer not-the-key-0123456789' })).toBe(401);
    }
    const bearer = await connect('/v1/stt', AUTH);
    const basic = await connect('/v1/listen', { authorization: `Basic ${Buffer.from(`jambonz:${KEY}`).toString('base64')}` });
    bearer.ws.close();
    basic.ws.close();
    await Promise.all([bearer.closed, basic.closed]);
  });

  it('refuses a cross-site WebSocket (a browser Origin not allowed) with 403 before the upgrade, whatever the key', async () => {
    const before = events.filter((e) => e.kind === 'call.started').length;
    for (const path of ['/v1/listen', '/v1/stt', '/v1/twilio']) {
      expect(await refusedWith(path, { origin: 'https://evil.example.net', ...AUTH })).toBe(403);
      expect(await refusedWith(path, { origin: 'null', ...AUTH })).toBe(403);
    }
    // An allowed origin with the key is accepted (a web softphone configured on purpose).
    const allowed = await connect('/v1/stt', { origin: 'https://agent-desk.example.com', ...AUTH });
    allowed.ws.close();
    await allowed.closed;
    expect(events.filter((e) => e.kind === 'call.started').length).toBe(before);
  });

  it('keeps one client from holding every slot: maxConnectionsPerClient per API key', async () => {
    const other = 'second-tenant-key-0123456789';
    const limited = new AudioIngest({ speech, config: { apiKeys: [KEY, other], maxConnections: 10, maxConnectionsPerClient: 2, allowedOrigins: [], labels: [] }, logger: log });
    const srv = await GatewayHttpServer.start({ host: '127.0.0.1', port: 0, health: () => ({ status: 'ok' }), logger: log, upgrades: limited.upgrades });
    try {
      const a = await connect('/v1/twilio', AUTH, undefined, srv.port);
      const b = await connect('/v1/stt', AUTH, undefined, srv.port);
      expect(await refusedWith('/v1/listen', AUTH, srv.port)).toBe(503);
      // Another key is another client: it still gets in.
      const c = await connect('/v1/stt', { authorization: `Bearer ${other}` }, undefined, srv.port);
      a.ws.close();
      await a.closed;
      await until(() => limited.stats().connections === 2, 5000, 'the first client\'s connection released');
      const d = await connect('/v1/twilio', AUTH, undefined, srv.port);
      for (const x of [b, c, d]) x.ws.close();
      await Promise.all([b.closed, c.closed, d.closed]);
      expect(limited.stats()).toMatchObject({ accepted: 4, refused: 1 });
    } finally {
      await limited.close();
      await srv.close();
    }
  });

  it('refuses connections over maxConnections with 503', async () => {
    const limited = new AudioIngest({
      speech,
      config: { apiKeys: [], maxConnections: 2, maxConnectionsPerClient: 2, allowedOrigins: [], labels: [] },
      logger: log,
    });
    const other = await GatewayHttpServer.start({ host: '127.0.0.1', port: 0, health: () => ({ status: 'ok' }), logger: log, upgrades: limited.upgrades });
    try {
      const a = await connect('/v1/twilio', {}, undefined, other.port);
      const b = await connect('/v1/stt', {}, undefined, other.port);
      expect(await refusedWith('/v1/listen', {}, other.port)).toBe(503);
      a.ws.close();
      await a.closed;
      await until(() => limited.stats().connections < 2, 5000, 'a free slot');
      const c = await connect('/v1/listen', {}, undefined, other.port);
      expect(limited.stats()).toMatchObject({ connections: 2, accepted: 3, refused: 1 });
      c.ws.close();
      b.ws.close();
      await Promise.all([b.closed, c.closed]);
    } finally {
      await limited.close();
      await other.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzz

/** mulberry32: small, seeded, reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Frame = { readonly text: string } | { readonly binary: Buffer } | { readonly rawText: Buffer };

interface FuzzCase {
  readonly name: string;
  readonly frames: readonly Frame[];
  /** The close code the server must send; undefined: anything allowed (the input may be valid by chance). */
  readonly code?: number;
  /** Whether an `{type:"error"}` message must precede the close. */
  readonly message?: boolean;
  /** The client hangs up itself after its frames (the session is valid). */
  readonly clientCloses?: boolean;
}

class Gen {
  readonly rand: () => number;
  constructor(seed: number) {
    this.rand = prng(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
  /** Random text: ASCII, JSON punctuation and non-ASCII code points. */
  text(n: number): string {
    const alphabet = ['{', '}', '[', ']', '"', ':', ',', 'a', 'Z', '0', '9', ' ', '\\', 'é', '€', '𝄞', '\u0000', 'null', 'true', '-', 'e', '.'];
    let s = '';
    for (let i = 0; i < n; i++) s += this.rand() < 0.5 ? String.fromCharCode(this.int(32, 126)) : this.pick(alphabet);
    return s;
  }
  /** A byte sequence that is not valid UTF-8 (a lone continuation byte somewhere). */
  invalidUtf8(): Buffer {
    const b = Buffer.from(this.text(this.int(0, 20)));
    const at = this.int(0, b.length);
    return Buffer.concat([b.subarray(0, at), Buffer.from([this.pick([0x80, 0xbf, 0xc0, 0xff, 0xfe])]), b.subarray(at)]);
  }
  /** Short audio: up to ~0.25 s at 8 kHz mono, often of odd length. */
  audio(): Buffer {
    return this.rand() < 0.5 ? this.bytes(this.int(1, 4000)) : Buffer.alloc(this.int(1, 4000));
  }
  truncated(json: string): string {
    return json.slice(0, this.int(0, json.length - 1));
  }
  huge(): number | string {
    return this.pick([1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 64, -0.5, 0, 1e-300, 123456789012]);
  }
  wrongType(): unknown {
    return this.pick(['8000', true, [], {}, [8000], 'x', -1.5, { a: 1 }]);
  }
}

/** Random text as the first message: 1007 when it is not a JSON object, anything when it is. */
function randomTextCase(g: Gen, name: string): FuzzCase {
  const text = g.text(g.int(0, 200));
  let isObject = false;
  try {
    const v: unknown = JSON.parse(text);
    isObject = typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    // not JSON
  }
  return isObject ? { name, frames: [{ text }] } : { name, frames: [{ text }], code: 1007, message: true };
}

const NON_OBJECT_JSON = ['[]', '42', 'null', '"metadata"', 'true', '[{"sampleRate":8000}]', '1e400'];

function listenCase(g: Gen): FuzzCase {
  const meta = { callSid: `CA-fuzz-${g.int(0, 9)}`, sampleRate: g.pick([8000, 16000, 24000]), mixType: g.pick(['mono', 'mixed', 'stereo']) };
  const valid = { text: JSON.stringify(meta) };
  switch (g.int(0, 11)) {
    case 0:
      return { name: 'binary before metadata', frames: [{ binary: g.audio() }], code: 1008, message: true };
    case 1:
      return randomTextCase(g, 'random text as metadata');
    case 2:
      return { name: 'truncated metadata', frames: [{ text: g.truncated(valid.text) }], code: 1007, message: true };
    case 3: {
      const field = g.pick(['sampleRate', 'callSid', 'mixType', 'from', 'to', 'direction', 'language']);
      return { name: `metadata.${field} of the wrong type`, frames: [{ text: JSON.stringify({ ...meta, [field]: field === 'sampleRate' ? g.pick(['8000', true, [], {}]) : g.pick([5, true, [], { a: 1 }]) }) }], code: 1007, message: true };
    }
    case 4: {
      const bad = g.rand() < 0.6 ? { sampleRate: g.huge() } : { mixType: g.pick(['quad', '', 'MONO-ish', 'surround']) };
      return { name: 'unsupported format', frames: [{ text: JSON.stringify({ ...meta, ...bad }) }], code: 1003, message: true };
    }
    case 5:
      return { name: 'JSON that is not an object', frames: [{ text: g.pick(NON_OBJECT_JSON) }], code: 1007, message: true };
    case 6:
      return { name: 'invalid UTF-8 text', frames: [{ rawText: g.invalidUtf8() }], code: 1007 };
    case 7:
      return { name: 'audio then broken text', frames: [valid, { binary: g.audio() }, { binary: g.audio() }, { text: g.truncated('{"event":"dtmf","dtmf":"1"}') }], code: 1007, message: true };
    case 8:
      return { name: 'valid session, odd-sized audio', frames: [valid, { binary: g.audio() }, { binary: g.audio() }, { text: '{"event":"mark"}' }, { binary: g.audio() }], clientCloses: true };
    case 9:
      return { name: 'oversized frame', frames: [valid, { binary: Buffer.alloc(MAX_PAYLOAD + g.int(1, 5000)) }], code: 1009 };
    case 10:
      return { name: 'dtmf with a bad digit', frames: [valid, { binary: g.audio() }, { text: JSON.stringify({ event: 'dtmf', dtmf: g.pick(['11', '', 'x', 5, null]), duration: g.huge() }) }], code: 1007, message: true };
    default:
      return { name: 'random bytes after metadata then random text', frames: [valid, { binary: g.bytes(g.int(0, 3000)) }, { text: g.text(g.int(1, 50)) }] };
  }
}

function sttCase(g: Gen): FuzzCase {
  const start = { type: 'start', language: g.pick(['en-US', 'de-DE', 'xx', 'auto']), format: 'raw', encoding: 'LINEAR16', sampleRateHz: g.pick([8000, 16000]), interimResults: g.rand() < 0.5 };
  const valid = { text: JSON.stringify(start) };
  switch (g.int(0, 11)) {
    case 0:
      return { name: 'audio before start', frames: [{ binary: g.audio() }], code: 1008, message: true };
    case 1:
      return randomTextCase(g, 'random text');
    case 2:
      return { name: 'truncated start', frames: [{ text: g.truncated(valid.text) }], code: 1007, message: true };
    case 3: {
      const field = g.pick(['sampleRateHz', 'interimResults', 'language', 'encoding', 'format', 'type']);
      return { name: `start.${field} of the wrong type`, frames: [{ text: JSON.stringify({ ...start, [field]: g.pick([[], { a: 1 }, field === 'sampleRateHz' ? '8000' : 7]) }) }], code: 1007, message: true };
    }
    case 4: {
      const bad = g.pick([{ encoding: 'MULAW' }, { encoding: 'OPUS' }, { format: 'wav' }, { sampleRateHz: g.huge() }, { type: 'pause' }, { type: '' }]);
      return { name: 'unsupported start', frames: [{ text: JSON.stringify({ ...start, ...bad }) }], code: 1003, message: true };
    }
    case 5:
      return { name: 'stop before start', frames: [{ text: '{"type":"stop"}' }], code: 1008, message: true };
    case 6:
      return { name: 'start twice', frames: [valid, { binary: g.audio() }, valid], code: 1008, message: true };
    case 7:
      return { name: 'JSON that is not an object', frames: [{ text: g.pick(NON_OBJECT_JSON) }], code: 1007, message: true };
    case 8:
      return { name: 'invalid UTF-8 text', frames: [valid, { rawText: g.invalidUtf8() }], code: 1007 };
    case 9:
      return { name: 'valid session', frames: [valid, { binary: g.audio() }, { binary: g.audio() }, { text: '{"type":"stop"}' }], code: 1000 };
    case 10:
      return { name: 'oversized frame', frames: [valid, { binary: Buffer.alloc(MAX_PAYLOAD + g.int(1, 5000)) }], code: 1009 };
    default:
      return { name: 'random text after audio', frames: [valid, { binary: g.audio() }, { text: g.text(g.int(1, 80)) }] };
  }
}

function twilioCase(g: Gen): FuzzCase {
  const streamSid = `MZ-fuzz-${g.int(0, 9)}`;
  const startMsg = {
    event: 'start',
    sequenceNumber: '1',
    start: { streamSid, accountSid: 'AC', callSid: `CA-${g.int(0, 9)}`, tracks: g.pick([['inbound'], ['inbound', 'outbound']]), customParameters: {}, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } },
    streamSid,
  };
  const valid = { text: JSON.stringify(startMsg) };
  const media = (payload: string, extra: Record<string, unknown> = {}): Frame => ({
    text: JSON.stringify({ event: 'media', sequenceNumber: '2', media: { track: 'inbound', chunk: '1', timestamp: '0', payload }, streamSid, ...extra }),
  });
  const goodPayload = (): string => g.bytes(g.int(0, 400)).toString('base64');
  switch (g.int(0, 12)) {
    case 0:
      return { name: 'binary frame', frames: g.rand() < 0.5 ? [{ binary: g.audio() }] : [valid, { binary: g.audio() }], code: 1003, message: true };
    case 1:
      return randomTextCase(g, 'random text');
    case 2:
      return { name: 'truncated start', frames: [{ text: g.truncated(valid.text) }], code: 1007, message: true };
    case 3:
      return { name: 'unknown event', frames: [{ text: JSON.stringify({ event: g.pick(['clear', 'foo', '', 'START']), streamSid }) }], code: 1003, message: true };
    case 4:
      return { name: 'event before start', frames: [g.pick([media(goodPayload()), { text: '{"event":"dtmf","dtmf":{"digit":"1"}}' }, { text: '{"event":"stop","stop":{}}' }])], code: 1008, message: true };
    case 5: {
      const format = g.pick([{ encoding: 'audio/x-alaw' }, { sampleRate: 16000 }, { sampleRate: g.huge() }, { channels: 2 }]);
      return { name: 'other media format', frames: [{ text: JSON.stringify({ ...startMsg, start: { ...startMsg.start, mediaFormat: { ...startMsg.start.mediaFormat, ...format } } }) }], code: 1003, message: true };
    }
    case 6: {
      const bad = g.pick<Record<string, unknown>>([{ tracks: 'inbound' }, { tracks: [1] }, { tracks: ['sideways'] }, { tracks: [] }, { mediaFormat: 'x' }, { streamSid: 5 }, { customParameters: [] }, { callSid: {} }]);
      const msg = g.rand() < 0.2 ? { ...startMsg, start: g.wrongType() } : { ...startMsg, start: { ...startMsg.start, ...bad } };
      return { name: 'start of the wrong shape', frames: [{ text: JSON.stringify(msg) }], code: 1007, message: true };
    }
    case 7: {
      const b64 = g.bytes(g.int(1, 300)).toString('base64');
      const broken = g.rand() < 0.5 ? b64.slice(0, b64.length - g.int(1, 3)) || 'A' : `${b64.slice(0, 4)}${g.pick(['!', ' ', '-', '_', '\n', 'é'])}${b64.slice(4)}`;
      return { name: 'bad base64', frames: [valid, media(goodPayload()), media(broken)], code: 1007, message: true };
    }
    case 8:
      return {
        name: 'valid session, huge numbers',
        frames: [{ text: '{"event":"connected","protocol":"Call","version":"1.0.0"}' }, valid, media(goodPayload(), { sequenceNumber: g.huge() }), { text: `{"event":"mark","sequenceNumber":1e400,"mark":{"name":"m"}}` }, media(goodPayload()), { text: '{"event":"stop","stop":{}}' }],
        code: 1000,
      };
    case 9:
      return { name: 'dtmf with a bad digit', frames: [valid, { text: JSON.stringify({ event: 'dtmf', dtmf: { track: 'inbound_track', digit: g.pick(['', '55', 'z', 7, null]) } }) }], code: 1007, message: true };
    case 10:
      return { name: 'start twice', frames: [valid, media(goodPayload()), valid], code: 1008, message: true };
    case 11:
      return { name: 'invalid UTF-8 text', frames: [{ rawText: g.invalidUtf8() }], code: 1007 };
    default:
      return { name: 'oversized frame', frames: [valid, { text: 'x'.repeat(MAX_PAYLOAD + g.int(1, 5000)) }], code: 1009 };
  }
}

interface FuzzResult {
  readonly c: FuzzCase;
  readonly code: number;
  readonly messages: Record<string, unknown>[];
}

async function runCase(path: string, c: FuzzCase): Promise<FuzzResult> {
  const client = await connect(path);
  for (const f of c.frames) {
    if (client.ws.readyState !== WebSocket.OPEN) break;
    if ('text' in f) client.ws.send(f.text);
    else if ('binary' in f) client.ws.send(f.binary);
    else client.ws.send(f.rawText, { binary: false });
  }
  // A session that is valid (by design or by chance) stays open: the client hangs up.
  const timer = setTimeout(() => client.ws.close(1000), c.clientCloses ? 50 : 1500);
  const code = await client.closed;
  clearTimeout(timer);
  return { c, code, messages: client.messages };
}

async function fuzz(path: string, seed: number, count: number, make: (g: Gen) => FuzzCase): Promise<void> {
  const g = new Gen(seed);
  const cases = Array.from({ length: count }, () => make(g));
  const firstEvent = events.length;
  const errorsBefore = ingest.stats().protocolErrors;
  const results: FuzzResult[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < cases.length) results.push(await runCase(path, cases[next++]!));
    }),
  );
  expect(results).toHaveLength(count);
  let expectedErrors = 0;
  for (const r of results) {
    const label = `${path} ${r.c.name} → ${r.code} ${JSON.stringify(r.messages).slice(0, 200)}`;
    expect([1000, 1003, 1007, 1008, 1009], label).toContain(r.code);
    if (r.c.code !== undefined) expect(r.code, label).toBe(r.c.code);
    if (r.c.message) {
      expect(r.messages[0], label).toMatchObject({ type: 'error', error: expect.any(String) });
    }
    // Every close other than a normal one tells the client what was wrong, unless ws itself closed
    // the socket on a framing error (too big, invalid UTF-8), before any message existed.
    const framing = r.code === 1009 || r.c.name === 'invalid UTF-8 text';
    if (r.code !== 1000) {
      expectedErrors++;
      if (!framing) expect(r.messages.some((m) => m.type === 'error'), label).toBe(true);
    }
  }
  // Every connection and call is released; every call that started ended.
  await until(() => ingest.stats().connections === 0, 15_000, 'every fuzz connection to be released');
  const mine = events.slice(firstEvent);
  const started = mine.filter((e) => e.kind === 'call.started').map((e) => e.callId);
  const ended = new Set(mine.filter((e) => e.kind === 'call.ended').map((e) => e.callId));
  expect(started.filter((id) => !ended.has(id))).toEqual([]);
  expect(ingest.stats().protocolErrors - errorsBefore).toBe(expectedErrors);
  expect(vad.stats.streams).toBe(0);
}

describe('ingest fuzz: bad input ends the connection, never the gateway', () => {
  it('/v1/listen: 300 seeded random sessions', async () => {
    await fuzz('/v1/listen', 0x1157e9, 300, listenCase);
  }, 60_000);

  it('/v1/stt: 300 seeded random sessions', async () => {
    await fuzz('/v1/stt', 0x5771, 300, sttCase);
  }, 60_000);

  it('/v1/twilio: 300 seeded random sessions', async () => {
    await fuzz('/v1/twilio', 0x7a110, 300, twilioCase);
  }, 60_000);

  it('still transcribes after the fuzz', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/health`);
    expect(res.status).toBe(200);
    const c = await connect('/v1/stt');
    c.ws.send(JSON.stringify({ type: 'start', language: 'en-US', format: 'raw', encoding: 'LINEAR16', sampleRateHz: 16000, interimResults: false }));
    const pcm = s16le(speech16k);
    await sendRealtime(pcm.length, 32, (from, to) => c.ws.send(pcm.subarray(from, to)));
    c.ws.send(JSON.stringify({ type: 'stop' }));
    expect(await c.closed).toBe(1000);
    const finals = c.messages.filter((m) => m.type === 'transcription' && m.is_final === true);
    expect(finals.length).toBeGreaterThanOrEqual(1);
    expectWholeCall(startedCall('ingest:stt'), 'hangup');
  }, 40_000);
});
