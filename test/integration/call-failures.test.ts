/**
 * Calls that fail during set-up, end to end below SIP: a real rtpengine, the real transcript store
 * and event hub, the supervisor WebSocket feed and the history API on loopback, fake SIP legs.
 * A failed call is stored, listed in history with how it ended, and shown to the supervisors whose
 * scope covers it (and to no one else).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { CallRule } from '../../src/call/rule.js';
import { loadConfig } from '../../src/config/load.js';
import { SupervisorFeed } from '../../src/feeds/supervisor.js';
import { TokenAuth } from '../../src/http/auth.js';
import { historyRoutes } from '../../src/http/history.js';
import { GatewayHttpServer } from '../../src/http/server.js';
import { SpeechRuntime } from '../../src/pipeline/speech-runtime.js';
import { CallEventHub } from '../../src/transcripts/event-hub.js';
import { TranscriptStore } from '../../src/transcripts/store.js';
import { newTestCall, startCallHarness, type CallHarness } from '../support/calls.js';
import { RejectingDialer } from '../support/fake-sip.js';
import { waitFor } from '../support/net.js';

const log = pino({ level: 'silent' });
const QUEUE_A = 'queue-a-token-0123456789';
const QUEUE_B = 'queue-b-token-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'wl-call-failures-'));
let h: CallHarness;
let store: TranscriptStore;
let hub: CallEventHub;
let feed: SupervisorFeed;
let server: GatewayHttpServer;
let speech: SpeechRuntime;

beforeAll(async () => {
  h = await startCallHarness();
  store = TranscriptStore.open(join(dir, 'transcripts.db'));
  hub = new CallEventHub({ store, logger: log });
  speech = new SpeechRuntime({ vad: h.vad, recognizerFor: () => h.engine, vadConfig: h.config.vad, transcripts: h.config.transcripts, publish: (e) => hub.publish(e) });
  const auth = new TokenAuth([
    { name: 'queue-a', token: QUEUE_A, labels: ['queue-a'] },
    { name: 'queue-b', token: QUEUE_B, labels: ['queue-b'] },
  ]);
  feed = new SupervisorFeed({ hub, store, auth, config: loadConfig({ env: {} }).supervisor, logger: log });
  server = await GatewayHttpServer.start({
    host: '127.0.0.1',
    port: 0,
    health: () => ({ status: 'ok' }),
    logger: log,
    upgrades: { '/v1/supervisor': feed.handleUpgrade },
    routes: historyRoutes({ store, auth, allowedOrigins: [], logger: log }),
  });
}, 300_000);

afterAll(async () => {
  await feed?.close();
  await server?.close();
  store?.close();
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A supervisor client: every message it receives. */
async function supervisor(token: string): Promise<{ messages: Record<string, unknown>[]; close(): void }> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/v1/supervisor?token=${token}`);
  const messages: Record<string, unknown>[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  await waitFor('hello', () => messages.some((m) => m.type === 'hello'));
  return { messages, close: () => ws.close() };
}

describe('a call that fails during set-up', () => {
  it("a callee's 486: the caller gets 486; the call is stored, in history with its reason and status, and a scoped supervisor saw it", async () => {
    const a = await supervisor(QUEUE_A);
    const b = await supervisor(QUEUE_B);
    const rule: CallRule = { name: 'sales', action: 'bridge', target: 'sip:agents@127.0.0.1', labels: ['queue-a'] };
    const { session, leg, caller } = await newTestCall(h, rule, { dialer: new RejectingDialer(486, 'Busy Here'), services: { ...h.services(), speech } });
    await expect(session.start()).rejects.toMatchObject({ code: 'CALLEE_REJECTED' });
    caller.close();
    expect(leg.rejected).toMatchObject({ status: 486, reason: 'Busy Here' });

    // The scoped supervisor saw it start and end, with why.
    await waitFor('call.ended on the feed', () => a.messages.some((m) => m.type === 'call.ended' && m.callId === leg.callId));
    const seen = a.messages.filter((m) => m.callId === leg.callId);
    expect(seen.map((m) => m.type)).toEqual(['call.started', 'transcript.ended', 'call.ended']);
    expect(seen[0]).toMatchObject({ rule: 'sales', labels: ['queue-a'] });
    expect(seen.at(-1)).toMatchObject({ reason: 'failed', sipStatus: 486, durationMs: 0, error: { code: 'CALLEE_REJECTED' } });
    expect(typeof seen.at(-1)!.cursor).toBe('number');
    // The other queue's supervisor saw nothing of it.
    await new Promise((r) => setTimeout(r, 100));
    expect(b.messages.filter((m) => m.callId === leg.callId)).toEqual([]);

    // History: listed for queue A with how it ended, absent for queue B; its events readable.
    const get = async (path: string, token: string): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const listA = await get('/v1/calls', QUEUE_A);
    expect(listA.status).toBe(200);
    const listed = (listA.body.calls as Record<string, unknown>[]).find((c) => c.id === leg.callId);
    expect(listed).toMatchObject({ rule: 'sales', endReason: 'failed', endStatus: 486, endError: { code: 'CALLEE_REJECTED' }, durationMs: 0, live: false });
    const listB = await get('/v1/calls', QUEUE_B);
    expect((listB.body.calls as { id: string }[]).some((c) => c.id === leg.callId)).toBe(false);
    const one = await get(`/v1/calls/${encodeURIComponent(leg.callId)}`, QUEUE_A);
    expect((one.body.events as { type: string }[]).map((e) => e.type)).toEqual(['call.started', 'transcript.ended', 'call.ended']);
    a.close();
    b.close();
    expect(await h.rtpe.numSessions()).toBe(0);
  });

  it("a CANCEL that wins the race with the 200 OK: a normal ending (cancel, 487), no error, nothing left in rtpengine", async () => {
    const a = await supervisor(QUEUE_A);
    const rule: CallRule = { name: 'sales', action: 'answer', labels: ['queue-a'] };
    const { session, leg, caller } = await newTestCall(h, rule, { services: { ...h.services(), speech } });
    leg.cancelDuringAnswer = true;
    await expect(session.start()).rejects.toMatchObject({ code: 'CALL_ENDED' });
    caller.close();
    // Nothing more is sent to the caller: the SIP stack already answered the CANCEL.
    expect(leg.rejected).toBeUndefined();
    expect(leg.byes).toBe(0);
    await waitFor('call.ended on the feed', () => a.messages.some((m) => m.type === 'call.ended' && m.callId === leg.callId));
    const ended = a.messages.find((m) => m.type === 'call.ended' && m.callId === leg.callId)!;
    expect(ended).toMatchObject({ reason: 'cancel', sipStatus: 487 });
    expect(ended.error).toBeUndefined();
    const stored = store.call(leg.callId);
    expect(stored).toMatchObject({ endReason: 'cancel', endStatus: 487 });
    a.close();
    expect(await h.rtpe.numSessions()).toBe(0);
  });
});
