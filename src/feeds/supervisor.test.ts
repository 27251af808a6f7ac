/**
 * The supervisor feed with real `ws` clients, a real HTTP server and a real SQLite store file.
 * Events are published through the hub as the gateway publishes them; no speech is involved.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { CallEvent } from '../transcripts/events.js';
import type { SupervisorConfig } from '../config/schema.js';
import { TranscriptStore } from '../transcripts/store.js';
import { TokenAuth } from '../http/auth.js';
import { CallEventHub } from '../transcripts/event-hub.js';
import { GatewayHttpServer } from '../http/server.js';
import { FEED_CLOSE, parseResume, SupervisorFeed } from './supervisor.js';
import type { WireEvent } from '../transcripts/wire.js';

const log = pino({ level: 'silent' });
const ALL = 'all-calls-token-0123456789';
const QUEUE_A = 'queue-a-token-0123456789';
const auth = new TokenAuth([
  { name: 'all', token: ALL, labels: [] },
  { name: 'queue-a', token: QUEUE_A, labels: ['queue-a'] },
]);
const baseConfig: SupervisorConfig = {
  tokens: [],
  allowedOrigins: ['https://wallboard.example.com'],
  heartbeatMs: 60_000,
  partialDropBytes: 64 * 1024,
  maxBufferedBytes: 512 * 1024,
  replayLimit: 100_000,
};

/** One gateway's worth of feed parts over a store file; `restart()` replaces them all. */
class Rig {
  store!: TranscriptStore;
  hub!: CallEventHub;
  feed!: SupervisorFeed;
  http!: GatewayHttpServer;
  private readonly seqs = new Map<string, number>();

  constructor(
    readonly dbPath: string,
    readonly config: SupervisorConfig = baseConfig,
  ) {}

  async start(): Promise<this> {
    this.store = TranscriptStore.open(this.dbPath);
    this.hub = new CallEventHub({ store: this.store, logger: log });
    this.feed = new SupervisorFeed({ hub: this.hub, store: this.store, auth, config: this.config, logger: log });
    this.http = await GatewayHttpServer.start({ host: '127.0.0.1', port: 0, health: () => ({ status: 'ok' }), logger: log, upgrades: { '/v1/supervisor': this.feed.handleUpgrade } });
    return this;
  }

  async stop(): Promise<void> {
    await this.feed.close();
    await this.http.close();
    this.store.close();
  }

  /** Restarts every part on the same store file (what a gateway restart does). */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  url(query = ''): string {
    return `ws://127.0.0.1:${this.http.port}/v1/supervisor${query}`;
  }

  private next(callId: string): number {
    const seq = (this.seqs.get(callId) ?? 0) + 1;
    this.seqs.set(callId, seq);
    return seq;
  }

  startCall(callId: string, labels: string[] = []): void {
    this.hub.publish({ kind: 'call.started', callId, seq: this.next(callId), rule: 'support', labels, parties: [{ name: 'caller', label: 'customer' }] });
  }

  final(callId: string, text: string): void {
    this.hub.publish({ kind: 'final', callId, seq: this.next(callId), party: 'caller', text, startMs: 0, endMs: 1000, language: 'en', confidence: 0.9 });
  }

  partial(callId: string, text: string): void {
    this.hub.publish({ kind: 'partial', callId, seq: this.next(callId), party: 'caller', text, startMs: 0, endMs: 500, language: 'en', confidence: 0.5 });
  }

  endCall(callId: string): void {
    this.hub.publish({ kind: 'call.ended', callId, seq: this.next(callId), reason: 'hangup', durationMs: 1000, parties: {} });
  }

  publish(event: CallEvent): void {
    this.hub.publish(event);
  }
}

/** Anything the feed sends: events, and hello / replay.done / error / pong control messages. */
type FeedMessage = { readonly type: string; readonly [field: string]: unknown };

/** A real `ws` client that records every message. */
class Client {
  readonly messages: FeedMessage[] = [];
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}) {
    this.ws = new WebSocket(url, options);
    this.ws.on('message', (data) => this.messages.push(JSON.parse(data.toString()) as FeedMessage));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  events(type?: string): WireEvent[] {
    return this.messages.filter((m) => m.callId !== undefined && (type === undefined || m.type === type)) as WireEvent[];
  }

  async waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages.map((m) => m.type))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }
}

/** The HTTP status of a refused upgrade. */
function refusal(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => reject(new Error('upgrade was accepted')));
    ws.on('error', () => undefined);
  });
}

let dir: string;
let rig: Rig;
const clients: Client[] = [];
const connect = async (url: string, options?: ConstructorParameters<typeof WebSocket>[2]): Promise<Client> => {
  const c = new Client(url, options);
  clients.push(c);
  await c.opened;
  return c;
};

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'whisperline-feed-'));
  rig = await new Rig(join(dir, 'transcripts.db')).start();
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await rig.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('supervisor feed: authentication and scope', () => {
  it('refuses a missing or unknown token with 401 and a foreign browser origin with 403, before the upgrade', async () => {
    expect(await refusal(rig.url())).toBe(401);
    expect(await refusal(rig.url('?token=not-a-token-at-all'))).toBe(401);
    expect(await refusal(rig.url(), { authorization: 'Bearer wrong-token-0123456789' })).toBe(401);
    expect(await refusal(rig.url(`?token=${ALL}`), { origin: 'https://evil.example.com' })).toBe(403);
    expect(await refusal(rig.url(`?token=${ALL}&cursor=-1`))).toBe(400);
    expect(rig.feed.stats()).toMatchObject({ clients: 0, accepted: 0, refused: 5 });
  });

  it('accepts a bearer header, a query token, its own origin and configured origins; hello lists the live calls it may see', async () => {
    rig.startCall('call-a', ['queue-a']);
    rig.startCall('call-b', ['queue-b']);
    const all = await connect(rig.url(), { headers: { authorization: `Bearer ${ALL}` } });
    const scoped = await connect(rig.url(`?token=${QUEUE_A}`), { headers: { origin: `http://127.0.0.1:${rig.http.port}` } });
    const wallboard = await connect(rig.url(`?token=${QUEUE_A}`), { headers: { origin: 'https://wallboard.example.com' } });
    for (const c of [all, scoped, wallboard]) await c.waitFor('hello', () => c.messages.length > 0);
    expect(all.messages[0]).toMatchObject({ type: 'hello', principal: 'all', cursor: 2 });
    expect((all.messages[0]!.calls as { callId: string }[]).map((c) => c.callId)).toEqual(['call-a', 'call-b']);
    expect((scoped.messages[0]!.calls as { callId: string; parties: unknown }[]).map((c) => c.callId)).toEqual(['call-a']);
    expect(scoped.messages[0]!.calls).toEqual([expect.objectContaining({ rule: 'support', labels: ['queue-a'], parties: [{ name: 'caller', label: 'customer' }], lastSeq: 1 })]);
    expect(wallboard.messages[0]).toMatchObject({ type: 'hello', principal: 'queue-a' });
  });

  it('sends each client only the calls its token selects, live', async () => {
    const all = await connect(rig.url(`?token=${ALL}`));
    const scoped = await connect(rig.url(`?token=${QUEUE_A}`));
    rig.startCall('call-a', ['queue-a', 'tenant-1']);
    rig.startCall('call-b', ['queue-b']);
    rig.final('call-a', 'hello from a');
    rig.final('call-b', 'hello from b');
    rig.endCall('call-b');
    await all.waitFor('five events', () => all.events().length === 5);
    await scoped.waitFor('call-a events', () => scoped.events().length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(scoped.events().map((e) => [e.type, e.callId])).toEqual([
      ['call.started', 'call-a'],
      ['transcript.final', 'call-a'],
    ]);
    expect(all.events('transcript.final')[1]).toMatchObject({ callId: 'call-b', seq: 2, cursor: 4, party: 'caller', text: 'hello from b', at: expect.any(Number) as number });
    expect(all.events('transcript.final')[1]!.replay).toBeUndefined();
  });
});

describe('supervisor feed: resume without loss', () => {
  it('a client that drops mid-call and resumes from its cursor gets every missed event once, in order, then live', async () => {
    const first = await connect(rig.url(`?token=${ALL}`));
    rig.startCall('call-1');
    rig.final('call-1', 'one');
    rig.partial('call-1', 'tw');
    rig.final('call-1', 'two');
    await first.waitFor('three stored events', () => first.events().length === 4);
    const lastCursor = Math.max(...first.events().map((e) => e.cursor ?? 0));
    await first.close();

    // Missed while away: finals of this call, and a whole other call.
    rig.final('call-1', 'three');
    rig.partial('call-1', 'fo');
    rig.final('call-1', 'four');
    rig.startCall('call-2');
    rig.final('call-2', 'other');

    const again = await connect(rig.url(`?token=${ALL}&cursor=${lastCursor}`));
    await again.waitFor('replay.done', () => again.messages.some((m) => m.type === 'replay.done'));
    rig.final('call-1', 'five');
    await again.waitFor('live final', () => again.events('transcript.final').some((e) => e.text === 'five'));
    const finals = again.events('transcript.final');
    expect(finals.map((e) => e.text)).toEqual(['three', 'four', 'other', 'five']);
    expect(finals.slice(0, 3).every((e) => e.replay === true)).toBe(true);
    expect(finals[3]!.replay).toBeUndefined();
    // Replayed partials do not exist: they were never stored.
    expect(again.events('transcript.partial')).toEqual([]);
    const cursors = again.events().map((e) => e.cursor!);
    expect(cursors).toEqual([...cursors].sort((a, b) => a - b));
    expect(new Set(cursors).size).toBe(cursors.length);
    expect(again.messages.find((m) => m.type === 'replay.done')).toMatchObject({ replayed: 4 });
  });

  it('resumes across a gateway restart: the new process replays from the same store file', async () => {
    const client = await connect(rig.url(`?token=${QUEUE_A}`));
    rig.startCall('call-r', ['queue-a']);
    rig.final('call-r', 'before restart 1');
    await client.waitFor('final', () => client.events('transcript.final').length === 1);
    const seen = client.events();
    const lastSeq = Math.max(...seen.map((e) => e.seq));
    const lastCursor = Math.max(...seen.map((e) => e.cursor!));
    // Published and stored, but this client never saw them: it was cut off first.
    client.ws.terminate();
    rig.final('call-r', 'before restart 2');
    rig.final('call-r', 'before restart 3');
    const shutdown = await connect(rig.url(`?token=${ALL}`));
    const byShutdown = shutdown.closed;
    await rig.restart();
    expect((await byShutdown).code).toBe(FEED_CLOSE.SHUTDOWN);

    // The same call's later events come from the new process (its seq counter lives in the call's owner).
    rig.publish({ kind: 'final', callId: 'call-r', seq: lastSeq + 3, party: 'caller', text: 'after restart', startMs: 0, endMs: 1, language: 'en', confidence: 1 });
    const byCursor = await connect(rig.url(`?token=${QUEUE_A}&cursor=${lastCursor}`));
    const bySeq = await connect(rig.url(`?token=${QUEUE_A}&resume=call-r:${lastSeq}`));
    for (const c of [byCursor, bySeq]) {
      await c.waitFor('replay.done', () => c.messages.some((m) => m.type === 'replay.done'));
      expect(c.events('transcript.final').map((e) => e.text)).toEqual(['before restart 2', 'before restart 3', 'after restart']);
      expect(c.events().map((e) => e.seq)).toEqual([lastSeq + 1, lastSeq + 2, lastSeq + 3]);
    }
  });

  it('per-call resume replays only the named calls and lets other calls flow live meanwhile', async () => {
    rig.startCall('call-x');
    for (let i = 0; i < 20; i++) rig.final('call-x', `x${i}`);
    const client = await connect(rig.url(`?token=${ALL}&resume=call-x:15`));
    await client.waitFor('replay.done', () => client.messages.some((m) => m.type === 'replay.done'));
    expect(client.events().map((e) => e.seq)).toEqual([16, 17, 18, 19, 20, 21]);
    rig.startCall('call-y');
    await client.waitFor('live call', () => client.events('call.started').length === 1);
  });

  it('tells a client too far behind to reload instead of replaying without bound', async () => {
    await rig.stop();
    rig = await new Rig(rig.dbPath, { ...baseConfig, replayLimit: 10 }).start();
    rig.startCall('call-z');
    for (let i = 0; i < 20; i++) rig.final('call-z', `z${i}`);
    const client = await connect(rig.url(`?token=${ALL}&cursor=0`));
    const { code } = await client.closed;
    expect(code).toBe(4009);
    expect(client.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'REPLAY_TOO_FAR' });
  });
});

describe('supervisor feed: slow clients, heartbeats, bad messages', () => {
  it('cuts off a client that stops reading without stalling the others; its partials go first', async () => {
    const fast = await connect(rig.url(`?token=${ALL}`));
    const slow = await connect(rig.url(`?token=${ALL}`));
    await slow.waitFor('hello', () => slow.messages.length > 0);
    // The slow client's process stops reading its socket: bytes pile up in the gateway.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    rig.startCall('call-flood');
    const text = 'x'.repeat(4000);
    let published = 0;
    const started = Date.now();
    while (rig.feed.stats().slowDisconnects === 0 && Date.now() - started < 20_000) {
      // A supervisor's pace: small bursts, with time for the fast client (in this same process) to read.
      for (let i = 0; i < 4; i++) {
        rig.partial('call-flood', text);
        rig.final('call-flood', text);
        published += 2;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(rig.feed.stats().slowDisconnects).toBe(1);
    expect(rig.feed.stats().partialsDropped).toBeGreaterThan(0);
    rig.final('call-flood', 'after the cut');
    await fast.waitFor('every event', () => fast.events().some((e) => e.text === 'after the cut'), 10_000);
    // The fast client lost nothing: partials included, all in seq order.
    expect(fast.events().length).toBe(published + 2);
    const seqs = fast.events().map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    // The slow client never reads the close frame: its socket is cut after the grace period.
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await slow.closed).code).toBe(FEED_CLOSE.SLOW_CONSUMER);
    await fast.waitFor('the server to drop the slow client', () => rig.feed.clientCount === 1);
  });

  it('terminates a client that stops answering pings', async () => {
    await rig.stop();
    rig = await new Rig(rig.dbPath, { ...baseConfig, heartbeatMs: 100 }).start();
    const mute = await connect(rig.url(`?token=${ALL}`), { autoPong: false });
    const healthy = await connect(rig.url(`?token=${ALL}`));
    const { code } = await mute.closed;
    expect(code).toBe(1006);
    expect(rig.feed.stats().heartbeatTimeouts).toBe(1);
    await new Promise((r) => setTimeout(r, 350));
    expect(healthy.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('answers a JSON ping, rejects other client messages with an error and keeps the connection', async () => {
    const client = await connect(rig.url(`?token=${ALL}`));
    client.ws.send(JSON.stringify({ type: 'ping' }));
    client.ws.send('{not json');
    client.ws.send(Buffer.from([1, 2, 3]));
    client.ws.send(JSON.stringify({ type: 'subscribe' }));
    await client.waitFor('replies', () => client.messages.length === 5);
    expect(client.messages.slice(1).map((m) => [m.type, m.code])).toEqual([
      ['pong', undefined],
      ['error', 'BAD_MESSAGE'],
      ['error', 'BAD_MESSAGE'],
      ['error', 'BAD_MESSAGE'],
    ]);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    // Oversized messages close the socket with 1009 (message too big).
    client.ws.send('x'.repeat(10_000));
    expect((await client.closed).code).toBe(1009);
  });
});

describe('parseResume', () => {
  it('reads cursor and per-call positions, and names what is malformed', () => {
    expect(parseResume(new URL('ws://g/v1/supervisor'))).toEqual({ kind: 'none' });
    expect(parseResume(new URL('ws://g/v1/supervisor?cursor=42'))).toEqual({ kind: 'cursor', cursor: 42 });
    expect(parseResume(new URL('ws://g/v1/supervisor?resume=a:1,b%3Ac:2'))).toEqual({
      kind: 'calls',
      calls: new Map([
        ['a', 1],
        ['b:c', 2],
      ]),
    });
    expect(() => parseResume(new URL('ws://g/?cursor=x'))).toThrow(/cursor/);
    expect(() => parseResume(new URL('ws://g/?resume=a'))).toThrow(/callId:seq/);
    expect(() => parseResume(new URL('ws://g/?resume=a:1&cursor=1'))).toThrow(/either/);
  });
});
