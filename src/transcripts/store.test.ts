import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { CallEvent } from './events.js';
import { TranscriptStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'wl-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2026, 0, 15, 9, 0, 0);
const DAY = 86_400_000;

/** A whole call as the gateway publishes it: seq 1..10, with two partials (3 and 5). */
function syntheticCall(callId = 'call-1'): CallEvent[] {
  const final = (seq: number, party: string, text: string, startMs: number, endMs: number): CallEvent => ({
    kind: 'final', callId, seq, party, text, startMs, endMs, language: party === 'caller' ? 'de' : 'en', confidence: 0.9,
  });
  return [
    { kind: 'call.started', callId, seq: 1, rule: 'support', labels: ['support'], parties: [{ name: 'caller', label: 'Customer' }, { name: 'callee' }] },
    final(2, 'callee', ' Thanks for calling, how can I help?', 500, 2900),
    { kind: 'partial', callId, seq: 3, party: 'caller', text: 'Ich habe', startMs: 3000, endMs: 4000, language: 'de', confidence: 0.5 },
    final(4, 'caller', ' Ich habe eine Frage zu meiner Rechnung.', 3000, 5600),
    { kind: 'partial', callId, seq: 5, party: 'callee', text: 'Sure', startMs: 6000, endMs: 6500, language: 'en', confidence: 0.5 },
    { kind: 'translation', callId, seq: 6, party: 'caller', finalSeq: 4, text: 'I have a question about my bill.', sourceLanguage: 'de', language: 'en', provider: 'whisper', startMs: 3000, endMs: 5600 },
    { kind: 'dtmf', callId, seq: 7, party: 'caller', digit: '5', durationMs: 120, endLost: false },
    final(8, 'callee', 'Sure, let me look at that.', 6000, 7500),
    { kind: 'ended', callId, seq: 9, reason: 'bye' },
    {
      kind: 'call.ended', callId, seq: 10, reason: 'bye-caller', durationMs: 8000,
      parties: { caller: { packets: 400, bytes: 64000, lost: 0, late: 0, duplicate: 0, malformed: 0, rtcp: 0, unknownPayloadType: 0, undecodable: 0, ssrcChanges: 0 } } as never,
    },
  ];
}

const stores: TranscriptStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function open(name: string, retentionDays = 30, now = () => T0): TranscriptStore {
  const s = TranscriptStore.open(join(dir, name), { retentionDays, now });
  stores.push(s);
  return s;
}

function recordCall(store: TranscriptStore, events: CallEvent[], at = T0): void {
  // The call clock runs from `at`; enough for started/ended times.
  for (const e of events) store.record(e, e.kind === 'call.ended' ? at + e.durationMs : at);
}

describe('TranscriptStore', () => {
  it('keeps how a call that failed during set-up ended: its reason, SIP status and error', () => {
    const store = open('failed.db');
    store.record({ kind: 'call.started', callId: 'busy', seq: 1, rule: 'agents', labels: ['queue-a'], parties: [{ name: 'caller' }] }, T0);
    store.record({ kind: 'ended', callId: 'busy', seq: 2, reason: 'failed' }, T0 + 30);
    store.record({ kind: 'call.ended', callId: 'busy', seq: 3, reason: 'failed', durationMs: 0, sipStatus: 486, error: { code: 'CALLEE_REJECTED', message: 'the callee answered 486 Busy Here' }, parties: {} }, T0 + 31);
    expect(store.call('busy')).toMatchObject({ rule: 'agents', endReason: 'failed', endStatus: 486, endError: { code: 'CALLEE_REJECTED' }, durationMs: 0, endedAt: T0 + 31 });
    expect(store.listCalls({ limit: 10, labels: ['queue-a'] }).map((c) => [c.id, c.endStatus])).toEqual([['busy', 486]]);
    // An answered call has neither.
    for (const e of syntheticCall('answered')) store.record(e, T0 + 1000);
    expect(store.call('answered')).toMatchObject({ endReason: 'bye-caller', endStatus: undefined, endError: undefined });
  });

  it('migrates a schema version 1 file in place, keeping its calls', async () => {
    const path = join(dir, 'v1.db');
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path);
    db.exec(`CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);
      CREATE TABLE calls (id TEXT PRIMARY KEY, rule TEXT, labels TEXT NOT NULL DEFAULT '[]', started_at INTEGER NOT NULL, ended_at INTEGER,
        end_reason TEXT, duration_ms INTEGER, parties TEXT NOT NULL DEFAULT '[]', stats TEXT);
      INSERT INTO calls (id, rule, started_at, ended_at, end_reason, duration_ms) VALUES ('old', 'line', ${T0}, ${T0 + 5000}, 'bye-caller', 5000);`);
    db.close();
    const store = TranscriptStore.open(path);
    stores.push(store);
    expect(store.call('old')).toMatchObject({ rule: 'line', endReason: 'bye-caller', endStatus: undefined });
    store.record({ kind: 'call.ended', callId: 'new', seq: 1, reason: 'failed', durationMs: 0, sipStatus: 503, parties: {} }, T0 + 9000);
    expect(store.call('new')?.endStatus).toBe(503);
  });

  it('lists the calls an instance left open (a crash), its own and unowned ones only', async () => {
    const path = join(dir, 'orphans.db');
    // A call stored before calls had owners (schema v2) and never ended.
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path);
    db.exec(`CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (2);
      CREATE TABLE calls (id TEXT PRIMARY KEY, rule TEXT, labels TEXT NOT NULL DEFAULT '[]', started_at INTEGER NOT NULL, ended_at INTEGER,
        end_reason TEXT, duration_ms INTEGER, end_status INTEGER, end_error TEXT, parties TEXT NOT NULL DEFAULT '[]', stats TEXT);
      INSERT INTO calls (id, rule, started_at) VALUES ('unowned', 'line', ${T0 - 1000});`);
    db.close();
    const a = TranscriptStore.open(path, { owner: 'gw-a', now: () => T0 });
    stores.push(a);
    const b = TranscriptStore.open(path, { owner: 'gw-b', now: () => T0 });
    stores.push(b);
    const [started, final] = syntheticCall('a-live');
    a.record(started!, T0);
    a.record(final!, T0 + 2900);
    for (const e of syntheticCall('a-done')) a.record(e, T0);
    b.record(syntheticCall('b-live')[0]!, T0);
    expect(a.openCalls()).toEqual([
      { callId: 'unowned', lastSeq: 0, startedAt: T0 - 1000, lastEventAt: T0 - 1000 },
      { callId: 'a-live', lastSeq: 2, startedAt: T0, lastEventAt: T0 + 2900 },
    ]);
    expect(b.openCalls().map((c) => c.callId)).toEqual(['unowned', 'b-live']);
    a.record({ kind: 'call.ended', callId: 'a-live', seq: 3, reason: 'lost', durationMs: 2900, parties: {} }, T0 + 5000);
    expect(a.openCalls().map((c) => c.callId)).toEqual(['unowned']);
    expect(a.call('a-live')).toMatchObject({ endReason: 'lost', endedAt: T0 + 5000 });
  });

  it('creates its directories and file, in WAL mode', () => {
    const path = join(dir, 'nested', 'deeper', 'a.db');
    const s = TranscriptStore.open(path);
    stores.push(s);
    expect(existsSync(path)).toBe(true);
    s.record(syntheticCall()[0]!);
    expect(existsSync(`${path}-wal`)).toBe(true);
  });

  it('records a whole call: every event but partials, in seq order, with the call row', () => {
    const store = open('call.db');
    recordCall(store, syntheticCall());
    const stored = store.eventsAfter('call-1', 0, 100);
    expect(stored.map((s) => s.event.seq)).toEqual([1, 2, 4, 6, 7, 8, 9, 10]);
    expect(stored.map((s) => s.event.kind)).toEqual(['call.started', 'final', 'final', 'translation', 'dtmf', 'final', 'ended', 'call.ended']);
    expect(stored.every((s) => s.event.kind !== 'partial')).toBe(true);
    expect(stored[5]!.event).toEqual(syntheticCall()[7]);

    expect(store.call('call-1')).toEqual({
      id: 'call-1',
      rule: 'support',
      labels: ['support'],
      parties: [{ name: 'caller', label: 'Customer' }, { name: 'callee' }],
      startedAt: T0,
      endedAt: T0 + 8000,
      endReason: 'bye-caller',
      durationMs: 8000,
      stats: { caller: expect.objectContaining({ packets: 400 }) },
    });
    expect(store.call('nope')).toBeUndefined();
  });

  it('resumes per call after a seq and store-wide after a cursor, in pages', () => {
    const store = open('cursor.db');
    const a = syntheticCall('a');
    const b = syntheticCall('b');
    // Interleave two calls as the gateway would.
    for (let i = 0; i < a.length; i++) {
      store.record(a[i]!);
      store.record(b[i]!);
    }
    expect(store.eventsAfter('a', 4, 2).map((s) => s.event.seq)).toEqual([6, 7]);
    expect(store.eventsAfter('a', 10, 10)).toEqual([]);

    const all = store.eventsSince(0, 1000);
    expect(all).toHaveLength(16);
    const cursors = all.map((s) => s.cursor);
    expect(cursors).toEqual([...cursors].sort((x, y) => x - y));
    expect(new Set(cursors).size).toBe(16);
    expect(all.slice(0, 4).map((s) => `${s.event.callId}${s.event.seq}`)).toEqual(['a1', 'b1', 'a2', 'b2']);
    expect(store.lastCursor()).toBe(cursors[15]);

    // Paging with the cursor of the last event seen yields everything exactly once.
    const paged: number[] = [];
    for (let c = 0; ; ) {
      const page = store.eventsSince(c, 5);
      if (page.length === 0) break;
      paged.push(...page.map((s) => s.cursor));
      c = page[page.length - 1]!.cursor;
    }
    expect(paged).toEqual(cursors);
  });

  it('is idempotent: recording the same events again changes nothing', () => {
    const store = open('replay.db');
    recordCall(store, syntheticCall());
    const before = { events: store.eventsSince(0, 100), call: store.call('call-1') };
    // A replay later (another wall-clock time) must not move started/ended times either.
    recordCall(store, syntheticCall(), T0 + 60_000);
    expect(store.eventsSince(0, 100)).toEqual(before.events);
    expect(store.call('call-1')).toEqual(before.call);
  });

  it('stores events of a call that never announced itself (files, ingest)', () => {
    const store = open('bare.db');
    store.record({ kind: 'final', callId: 'file.wav', seq: 1, party: 'left', text: 'hi', startMs: 0, endMs: 900, language: 'en', confidence: 1 }, T0);
    expect(store.call('file.wav')).toMatchObject({ id: 'file.wav', rule: undefined, parties: [{ name: 'left' }], startedAt: T0, endedAt: undefined });
  });

  it('reads everything back after a restart (reopening the file)', () => {
    const path = join(dir, 'restart.db');
    const first = TranscriptStore.open(path);
    recordCall(first, syntheticCall());
    const events = first.eventsSince(0, 100);
    const call = first.call('call-1');
    first.close();
    first.close(); // harmless

    const second = TranscriptStore.open(path);
    stores.push(second);
    expect(second.eventsSince(0, 100)).toEqual(events);
    expect(second.call('call-1')).toEqual(call);
    // The cursor keeps growing across restarts.
    second.record({ kind: 'ended', callId: 'call-2', seq: 1, reason: 'x' });
    expect(second.eventsSince(events[events.length - 1]!.cursor, 10)).toHaveLength(1);
  });

  it('lists calls newest first, pages with `before`, and searches final text', () => {
    const store = open('list.db');
    recordCall(store, syntheticCall('old'), T0);
    recordCall(store, syntheticCall('mid'), T0 + 1000);
    recordCall(store, [{ kind: 'call.started', callId: 'new', seq: 1, rule: 'r', labels: [], parties: [] }], T0 + 2000);
    expect(store.listCalls({ limit: 10 }).map((c) => c.id)).toEqual(['new', 'mid', 'old']);
    expect(store.listCalls({ limit: 2 }).map((c) => c.id)).toEqual(['new', 'mid']);
    expect(store.listCalls({ limit: 2, before: T0 + 1000 }).map((c) => c.id)).toEqual(['old']);
    expect(store.listCalls({ limit: 10, search: 'rechnung' }).map((c) => c.id)).toEqual(['mid', 'old']);
    // Partials and translations are not searched; LIKE wildcards are literal.
    expect(store.listCalls({ limit: 10, search: 'Ich habe eine' })).toHaveLength(2);
    expect(store.listCalls({ limit: 10, search: 'question about' })).toEqual([]);
    expect(store.listCalls({ limit: 10, search: '%' })).toEqual([]);
  });

  it('pages through calls started in the same millisecond without repeating or skipping one', () => {
    const store = open('ties.db');
    const ids = ['t1', 't2', 't3', 't4', 't5', 't6', 't7'];
    for (const id of ids) recordCall(store, [{ kind: 'call.started', callId: id, seq: 1, rule: 'r', labels: [], parties: [] }], T0);
    recordCall(store, [{ kind: 'call.started', callId: 'earlier', seq: 1, rule: 'r', labels: [], parties: [] }], T0 - 1);
    const seen: string[] = [];
    let page = store.listCalls({ limit: 3 });
    while (page.length > 0) {
      seen.push(...page.map((c) => c.id));
      const last = page[page.length - 1]!;
      page = store.listCalls({ limit: 3, before: last.startedAt, beforeId: last.id });
    }
    expect(seen).toEqual(['t7', 't6', 't5', 't4', 't3', 't2', 't1', 'earlier']);
  });

  it('lists only calls carrying any of the given labels, in SQL so that pages stay full', () => {
    const store = open('list-labels.db');
    const started = (callId: string, labels: string[]): CallEvent => ({ kind: 'call.started', callId, seq: 1, rule: 'r', labels, parties: [] });
    store.record(started('a', ['queue-a']), T0);
    store.record(started('b', ['queue-b']), T0 + 1000);
    store.record(started('ab', ['queue-b', 'queue-a']), T0 + 2000);
    store.record(started('none', []), T0 + 3000);
    // Another label's calls, newer than all of them: a page of 2 for queue-a is still 2 calls.
    for (let i = 0; i < 5; i++) store.record(started(`c${i}`, ['queue-c']), T0 + 4000 + i);
    recordCall(store, syntheticCall('searched'), T0 + 5000); // labels ['support']
    const ids = (labels?: readonly string[], extra: { limit?: number; before?: number; search?: string } = {}) =>
      store.listCalls({ limit: 10, ...extra, ...(labels ? { labels } : {}) }).map((c) => c.id);
    expect(ids(['queue-a'], { limit: 2 })).toEqual(['ab', 'a']);
    expect(ids(['queue-a', 'queue-b'])).toEqual(['ab', 'b', 'a']);
    expect(ids(['queue-b'], { before: T0 + 2000 })).toEqual(['b']);
    expect(ids(['nobody'])).toEqual([]);
    // Labels are matched whole, not as substrings or JSON text.
    expect(ids(['queue'])).toEqual([]);
    expect(ids(['"queue-a"'])).toEqual([]);
    // Combined with the text search.
    expect(ids(['support'], { search: 'rechnung' })).toEqual(['searched']);
    expect(ids(['queue-a'], { search: 'rechnung' })).toEqual([]);
    // No labels (or none given) = every call, as for a token without labels.
    expect(ids([])).toHaveLength(10);
    expect(ids(undefined, { limit: 20 })).toHaveLength(10);
  });

  it('purges calls that ended more than retentionDays ago, with their events', () => {
    const store = open('purge.db', 30);
    recordCall(store, syntheticCall('ancient'), T0 - 40 * DAY);
    recordCall(store, syntheticCall('recent'), T0 - 10 * DAY);
    // Started long ago but never ended (the gateway died): counts from its start.
    store.record(syntheticCall('orphan')[0]!, T0 - 31 * DAY);
    expect(store.purge(T0)).toBe(2);
    expect(store.call('ancient')).toBeUndefined();
    expect(store.call('orphan')).toBeUndefined();
    expect(store.eventsAfter('ancient', 0, 100)).toEqual([]);
    expect(store.eventsSince(0, 100).every((s) => s.event.callId === 'recent')).toBe(true);
    expect(store.purge(T0 + 21 * DAY)).toBe(1);
    expect(store.listCalls({ limit: 10 })).toEqual([]);
  });

  it('keeps everything when retentionDays is 0', () => {
    const store = open('forever.db', 0);
    recordCall(store, syntheticCall('ancient'), T0 - 4000 * DAY);
    expect(store.purge(T0)).toBe(0);
    expect(store.call('ancient')).toBeDefined();
  });
});
