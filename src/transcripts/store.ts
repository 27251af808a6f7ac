import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { CallEndReason, CallEvent, CallFailure, CallParty } from './events.js';
import { WhisperlineError } from '../errors.js';

/**
 * The transcript store: every call and every event it published, in one SQLite file (WAL).
 *
 * Contract: `record()` is synchronous and durable enough to survive a process crash (WAL,
 * synchronous=NORMAL; an OS crash may lose the last transactions). Whoever publishes events
 * records a final *before* publishing it, so a client that saw `seq` N can always resume from
 * the store with `eventsAfter(callId, N)` and miss nothing that was ever shown.
 *
 * Partials are not stored: they are previews superseded by the final. Their `seq` numbers are
 * therefore gaps in a call's stored sequence; readers must not expect consecutive numbers.
 *
 * Recording is idempotent: an event is keyed on (callId, seq), and recording it again changes
 * nothing (neither the event nor the call row).
 */

const SCHEMA_VERSION = 3;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
  id          TEXT PRIMARY KEY,
  rule        TEXT,
  labels      TEXT NOT NULL DEFAULT '[]',
  started_at  INTEGER NOT NULL,
  ended_at    INTEGER,
  end_reason  TEXT,
  duration_ms INTEGER,
  end_status  INTEGER,
  end_error   TEXT,
  parties     TEXT NOT NULL DEFAULT '[]',
  stats       TEXT,
  owner       TEXT
);
CREATE INDEX IF NOT EXISTS calls_started_at ON calls (started_at);
CREATE INDEX IF NOT EXISTS calls_ended_at ON calls (ended_at);
CREATE TABLE IF NOT EXISTS parties (
  call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
  name    TEXT NOT NULL,
  label   TEXT,
  PRIMARY KEY (call_id, name)
);
-- id is the store-wide cursor: AUTOINCREMENT so that it never goes back, even after a purge.
CREATE TABLE IF NOT EXISTS events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  call_id     TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  kind        TEXT NOT NULL,
  party       TEXT,
  start_ms    INTEGER,
  end_ms      INTEGER,
  text        TEXT,
  payload     TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  UNIQUE (call_id, seq)
);
`;

/** Steps from each older schema version to the next one (index = the version they leave). */
const MIGRATIONS: Readonly<Record<number, string>> = {
  // v2: the SIP status and the error of a call that ended during set-up.
  1: `ALTER TABLE calls ADD COLUMN end_status INTEGER; ALTER TABLE calls ADD COLUMN end_error TEXT;`,
  // v3: the gateway instance that wrote the call, so a restart closes only its own orphans.
  2: `ALTER TABLE calls ADD COLUMN owner TEXT;`,
};

const DAY_MS = 86_400_000;

export interface StoreOptions {
  /** Calls that ended more than this many days ago are removed by `purge()`; 0 = keep forever. */
  readonly retentionDays?: number;
  /** Wall clock (ms since the epoch) for `started_at`/`ended_at`; injectable for tests. */
  readonly now?: () => number;
  /** The gateway instance writing calls (`store.instance`); calls are stamped with it. */
  readonly owner?: string;
}

/** A call this instance started and never ended (it crashed, or lost power): see `openCalls`. */
export interface OrphanedCall {
  readonly callId: string;
  /** Its last stored event's seq: the ending it gets is the next one. */
  readonly lastSeq: number;
  readonly startedAt: number;
  /** When its last event was stored (ms since the epoch). */
  readonly lastEventAt: number;
}

/** One stored event with its store-wide cursor (for `eventsSince`). */
export interface StoredEvent {
  readonly cursor: number;
  readonly recordedAt: number;
  readonly event: CallEvent;
}

export interface CallRecord {
  readonly id: string;
  /** The dialplan rule; undefined for calls that never recorded `call.started` (file, ingest). */
  readonly rule: string | undefined;
  readonly labels: readonly string[];
  /** Every party seen: those of `call.started` (with their labels) and any that spoke later. */
  readonly parties: readonly CallParty[];
  /** ms since the epoch. */
  readonly startedAt: number;
  readonly endedAt: number | undefined;
  readonly endReason: CallEndReason | undefined;
  /** The SIP final status of a call that ended unanswered (486, 503, 487...). */
  readonly endStatus: number | undefined;
  /** What failed, for calls that ended `failed`. */
  readonly endError: CallFailure | undefined;
  readonly durationMs: number | undefined;
  /** Per-party RTP statistics from `call.ended`. */
  readonly stats: Readonly<Record<string, unknown>> | undefined;
}

export interface ListCallsOptions {
  readonly limit: number;
  /**
   * Paging: only calls that come after this position in the list's order (newest first, calls
   * started in the same millisecond by id, descending): the oldest call seen's start time and,
   * with it, its id, so that calls sharing a millisecond are neither repeated nor skipped.
   */
  readonly before?: number;
  readonly beforeId?: string;
  /** Only calls with a final whose text contains this (case-insensitive for ASCII). */
  readonly search?: string;
  /**
   * Only calls carrying any of these labels (a supervisor token's scope, see `canSee`); undefined
   * or empty = every call, as for a token without labels.
   */
  readonly labels?: readonly string[];
}

interface CallRow {
  id: string;
  rule: string | null;
  labels: string;
  started_at: number;
  ended_at: number | null;
  end_reason: string | null;
  duration_ms: number | null;
  end_status: number | null;
  end_error: string | null;
  stats: string | null;
}

interface EventRow {
  id: number;
  payload: string;
  recorded_at: number;
}

interface PartyRow {
  name: string;
  label: string | null;
}

type Params = Record<string, string | number | null>;

const toStored = (r: EventRow): StoredEvent => ({ cursor: r.id, recordedAt: r.recorded_at, event: JSON.parse(r.payload) as CallEvent });

/** `%`, `_` and `\` in a search are literal characters, not LIKE wildcards. */
const likePattern = (s: string): string => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export class TranscriptStore {
  private readonly retentionMs: number;
  private readonly now: () => number;
  private readonly owner: string | null;
  private readonly stmt;
  private readonly recordTx: (event: CallEvent, at: number) => number | undefined;

  private constructor(
    private readonly db: Database.Database,
    options: StoreOptions,
  ) {
    this.retentionMs = (options.retentionDays ?? 0) * DAY_MS;
    this.now = options.now ?? Date.now;
    this.owner = options.owner ?? null;
    const p = <R = unknown>(sql: string) => db.prepare<[Params], R>(sql);
    this.stmt = {
      insertEvent: p(`INSERT OR IGNORE INTO events (call_id, seq, kind, party, start_ms, end_ms, text, payload, recorded_at)
        VALUES (@callId, @seq, @kind, @party, @startMs, @endMs, @text, @payload, @at)`),
      ensureCall: p(`INSERT OR IGNORE INTO calls (id, started_at, owner) VALUES (@callId, @at, @owner)`),
      openCalls: p<{ id: string; started_at: number; last_seq: number | null; last_at: number | null }>(`SELECT c.id, c.started_at,
          (SELECT max(seq) FROM events e WHERE e.call_id = c.id) AS last_seq,
          (SELECT max(recorded_at) FROM events e WHERE e.call_id = c.id) AS last_at
        FROM calls c WHERE c.ended_at IS NULL AND (c.owner = @owner OR c.owner IS NULL) ORDER BY c.started_at`),
      startCall: p(`INSERT INTO calls (id, rule, labels, started_at, parties) VALUES (@callId, @rule, @labels, @at, @parties)
        ON CONFLICT (id) DO UPDATE SET rule = excluded.rule, labels = excluded.labels, parties = excluded.parties,
          started_at = min(started_at, excluded.started_at)`),
      endCall: p(`UPDATE calls SET ended_at = @at, end_reason = @reason, duration_ms = @durationMs, end_status = @status, end_error = @error, stats = @stats WHERE id = @callId`),
      upsertParty: p(`INSERT INTO parties (call_id, name, label) VALUES (@callId, @name, @label)
        ON CONFLICT (call_id, name) DO UPDATE SET label = coalesce(excluded.label, label)`),
      ensureParty: p(`INSERT OR IGNORE INTO parties (call_id, name, label) VALUES (@callId, @name, NULL)`),
      eventsAfter: p<EventRow>(`SELECT id, payload, recorded_at FROM events WHERE call_id = @callId AND seq > @afterSeq ORDER BY seq LIMIT @limit`),
      eventsSince: p<EventRow>(`SELECT id, payload, recorded_at FROM events WHERE id > @cursor ORDER BY id LIMIT @limit`),
      call: p<CallRow>(`SELECT * FROM calls WHERE id = @callId`),
      parties: p<PartyRow>(`SELECT name, label FROM parties WHERE call_id = @callId ORDER BY rowid`),
      list: p<CallRow>(`SELECT * FROM calls WHERE (started_at < @before OR (started_at = @before AND id < @beforeId))
        AND (@search IS NULL OR EXISTS (SELECT 1 FROM events e WHERE e.call_id = calls.id AND e.kind = 'final'
          AND e.text LIKE @search ESCAPE '\\'))
        AND (@labels IS NULL OR EXISTS (SELECT 1 FROM json_each(calls.labels) l WHERE l.value IN (SELECT value FROM json_each(@labels))))
        ORDER BY started_at DESC, id DESC LIMIT @limit`),
      purge: p(`DELETE FROM calls WHERE coalesce(ended_at, started_at) < @cutoff`),
      lastCursor: db.prepare<[], { c: number | null }>(`SELECT max(id) AS c FROM events`),
    };
    this.recordTx = db.transaction((event: CallEvent, at: number) => this.write(event, at));
  }

  /** Opens (creating directories, file and schema as needed) the store at `path`. */
  static open(path: string, options: StoreOptions = {}): TranscriptStore {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      db.transaction(() => {
        db.exec(SCHEMA);
        const row = db.prepare<[], { version: number }>('SELECT max(version) AS version FROM schema_version').get();
        const version = row?.version ?? null;
        if (version === null) db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION);
        else if (version > SCHEMA_VERSION) {
          throw new WhisperlineError('CONFIG_INVALID', `transcript store ${path} has schema version ${version}, newer than this whisperline (${SCHEMA_VERSION})`);
        } else if (version < SCHEMA_VERSION) {
          for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
          db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION);
        }
      }).immediate();
    } catch (err) {
      db.close();
      throw err;
    }
    return new TranscriptStore(db, options);
  }

  /**
   * Writes one event (and what it says about its call) before returning. Partials are ignored.
   * `at` is the wall-clock time of the event (ms since the epoch). Returns the event's store-wide
   * cursor, or undefined for a partial or an event recorded before (same callId and seq).
   */
  record(event: CallEvent, at: number = this.now()): number | undefined {
    if (event.kind === 'partial') return undefined;
    return this.recordTx(event, at);
  }

  private write(event: CallEvent, at: number): number | undefined {
    const callId = event.callId;
    this.stmt.ensureCall.run({ callId, at, owner: this.owner });
    const party = 'party' in event ? (event.party ?? null) : null;
    const timed = event.kind === 'final' || event.kind === 'translation' || event.kind === 'alert';
    const inserted = this.stmt.insertEvent.run({
      callId,
      seq: event.seq,
      kind: event.kind,
      party,
      startMs: timed ? event.startMs : null,
      endMs: timed ? event.endMs : null,
      text: timed ? event.text : event.kind === 'dtmf' ? event.digit : null,
      payload: JSON.stringify(event),
      at,
    });
    if (inserted.changes === 0) return undefined; // a replay: the call row already reflects this event
    if (party !== null) this.stmt.ensureParty.run({ callId, name: party });
    switch (event.kind) {
      case 'call.started':
        this.stmt.startCall.run({
          callId,
          rule: event.rule,
          labels: JSON.stringify(event.labels),
          parties: JSON.stringify(event.parties),
          at,
        });
        for (const p of event.parties) this.stmt.upsertParty.run({ callId, name: p.name, label: p.label ?? null });
        break;
      case 'call.updated':
        // Recording metadata that names the parties (late, Oracle/Acme style, or after a
        // transfer): the stored parties are shown by those names from now on.
        for (const p of event.participants ?? []) {
          if (p.name !== undefined && p.name !== p.party) this.stmt.upsertParty.run({ callId, name: p.party, label: p.name });
        }
        break;
      case 'call.ended':
        this.stmt.endCall.run({
          callId,
          at,
          reason: event.reason,
          durationMs: event.durationMs,
          status: event.sipStatus ?? null,
          error: event.error ? JSON.stringify(event.error) : null,
          stats: JSON.stringify(event.parties),
        });
        break;
      default:
        break;
    }
    return Number(inserted.lastInsertRowid);
  }

  /** A call's stored events with `seq` greater than `afterSeq`, in `seq` order. */
  eventsAfter(callId: string, afterSeq: number, limit = 1000): StoredEvent[] {
    return this.stmt.eventsAfter.all({ callId, afterSeq, limit }).map(toStored);
  }

  /** Events of all calls recorded after `cursor` (0 = from the start), in recording order. */
  eventsSince(cursor: number, limit = 1000): StoredEvent[] {
    return this.stmt.eventsSince.all({ cursor, limit }).map(toStored);
  }

  /**
   * Calls of this instance (and calls stored before instances were recorded) that have no
   * ending: at start-up, before any call of this run exists, these are the ones a crash left.
   */
  openCalls(): OrphanedCall[] {
    return this.stmt.openCalls.all({ owner: this.owner }).map((r) => ({
      callId: r.id,
      lastSeq: r.last_seq ?? 0,
      startedAt: r.started_at,
      lastEventAt: r.last_at ?? r.started_at,
    }));
  }

  /** The cursor of the newest stored event (0 when there is none): where a live feed starts. */
  lastCursor(): number {
    return this.stmt.lastCursor.get()?.c ?? 0;
  }

  call(callId: string): CallRecord | undefined {
    const row = this.stmt.call.get({ callId });
    return row ? this.toCall(row) : undefined;
  }

  /** Newest first. */
  listCalls(options: ListCallsOptions): CallRecord[] {
    const rows = this.stmt.list.all({
      before: options.before ?? Number.MAX_SAFE_INTEGER,
      beforeId: options.before !== undefined ? (options.beforeId ?? null) : null,
      search: options.search ? likePattern(options.search) : null,
      labels: options.labels && options.labels.length > 0 ? JSON.stringify(options.labels) : null,
      limit: options.limit,
    });
    return rows.map((r) => this.toCall(r));
  }

  /**
   * Deletes calls (and their events) that ended more than the retention period before `now`.
   * Calls that never recorded an end (the gateway died) count from their start. Returns how many
   * calls were deleted; a no-op when retention is 0 (keep forever).
   */
  purge(now: number = this.now()): number {
    if (this.retentionMs <= 0) return 0;
    return this.stmt.purge.run({ cutoff: now - this.retentionMs }).changes;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private toCall(row: CallRow): CallRecord {
    const parties = this.stmt.parties.all({ callId: row.id }).map((p): CallParty => (p.label === null ? { name: p.name } : { name: p.name, label: p.label }));
    return {
      id: row.id,
      rule: row.rule ?? undefined,
      labels: JSON.parse(row.labels) as string[],
      parties,
      startedAt: row.started_at,
      endedAt: row.ended_at ?? undefined,
      endReason: (row.end_reason as CallEndReason | null) ?? undefined,
      endStatus: row.end_status ?? undefined,
      endError: row.end_error === null ? undefined : (JSON.parse(row.end_error) as CallFailure),
      durationMs: row.duration_ms ?? undefined,
      stats: row.stats === null ? undefined : (JSON.parse(row.stats) as Record<string, unknown>),
    };
  }
}
