import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { CallEvent, CallParty } from '../transcripts/events.js';
import type { SupervisorConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { StoredEvent, TranscriptStore } from '../transcripts/store.js';
import { canSee, originAllowed, type Principal, type TokenAuth } from '../http/auth.js';
import type { CallEventHub } from '../transcripts/event-hub.js';
import { rejectUpgrade } from '../http/server.js';
import { toWire } from '../transcripts/wire.js';

export interface SupervisorFeedDeps {
  readonly hub: CallEventHub;
  readonly store: TranscriptStore;
  readonly auth: TokenAuth;
  readonly config: SupervisorConfig;
  readonly logger: Logger;
}

/** A call in progress, as `hello` lists it. */
export interface LiveCallSummary {
  readonly callId: string;
  readonly rule: string;
  readonly labels: readonly string[];
  readonly parties: readonly CallParty[];
  readonly startedAt: number;
  lastSeq: number;
}

/** Where a reconnecting client resumes: after a store cursor, or after a seq per call. */
export type ResumePoint = { readonly kind: 'none' } | { readonly kind: 'cursor'; readonly cursor: number } | { readonly kind: 'calls'; readonly calls: ReadonlyMap<string, number> };

export interface SupervisorFeedStats {
  readonly clients: number;
  readonly accepted: number;
  readonly refused: number;
  readonly eventsSent: number;
  readonly replayed: number;
  /** Partials not sent to a client whose send buffer was above `partialDropBytes`. */
  readonly partialsDropped: number;
  /** Clients disconnected because their send buffer passed `maxBufferedBytes`. */
  readonly slowDisconnects: number;
  readonly heartbeatTimeouts: number;
  readonly badMessages: number;
}

/** Close codes the feed uses besides the standard ones. */
export const FEED_CLOSE = {
  /** The client did not read fast enough; it should reconnect with its last cursor. */
  SLOW_CONSUMER: 4008,
  /** The gateway is shutting down (1001, "going away"). */
  SHUTDOWN: 1001,
} as const;

/** Stored events read per store query while replaying. */
const REPLAY_PAGE = 500;
/** Client messages are tiny control objects. */
const MAX_CLIENT_MESSAGE = 4096;
/** A client closed for being slow gets this long to take the close frame before its socket is cut. */
const CLOSE_GRACE_MS = 1000;

/** Parses `cursor=` / `resume=` of the upgrade URL; throws a message naming what was wrong. */
export function parseResume(url: URL): ResumePoint {
  const cursor = url.searchParams.get('cursor');
  const resume = url.searchParams.get('resume');
  if (cursor !== null && resume !== null) throw new Error('give either cursor or resume, not both');
  if (cursor !== null) {
    if (!/^\d{1,15}$/.test(cursor)) throw new Error('cursor must be a non-negative integer');
    return { kind: 'cursor', cursor: Number(cursor) };
  }
  if (resume !== null) {
    const calls = new Map<string, number>();
    for (const item of resume.split(',')) {
      const colon = item.lastIndexOf(':');
      const callId = item.slice(0, colon);
      const seq = item.slice(colon + 1);
      if (colon <= 0 || !/^\d{1,15}$/.test(seq)) throw new Error('resume must be callId:seq[,callId:seq...]');
      calls.set(callId, Number(seq));
    }
    if (calls.size > 1000) throw new Error('resume names more than 1000 calls');
    return { kind: 'calls', calls };
  }
  return { kind: 'none' };
}

class FeedClient {
  alive = true;
  /** False while replaying: live events are not sent (the replay reads them from the store). */
  live = false;
  closed = false;
  /** During a per-call resume, the calls being replayed; live events of other calls flow meanwhile. */
  replaying: ReadonlySet<string> | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly principal: Principal,
    readonly partials: boolean,
    readonly id: number,
  ) {}
}

/**
 * `GET /v1/supervisor`: the authenticated WebSocket feed of every call's events.
 *
 * Contracts:
 * - Refusals happen before the upgrade: 403 for a browser origin not allowed, 401 for a missing
 *   or unknown token, 400 for a malformed resume; a client only ever sees calls its token's
 *   labels select.
 * - Resume is exact: a client that gives the last store cursor it saw (or the last seq per call)
 *   gets every stored event after it, once, in order, then live events. The replay reads the
 *   store in pages with back-pressure; live events are not sent during it because the replay
 *   reads them from the store too, and the switch to live happens in the same synchronous step
 *   as the last (empty) store read, so nothing falls between the two. Partials published during
 *   a replay are skipped: they are previews, superseded by finals.
 * - Slow clients never stall the gateway or other clients: above `partialDropBytes` waiting in a
 *   client's socket its partials are skipped (counted); above `maxBufferedBytes` it is closed with
 *   4008 and can resume from its cursor. Finals are never dropped silently.
 * - Heartbeats: a WebSocket ping every `heartbeatMs`; a client that missed the previous pong is
 *   terminated. Browsers, which cannot see pings, may send `{"type":"ping"}` for a `pong`.
 */
export class SupervisorFeed {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_MESSAGE, perMessageDeflate: false, clientTracking: false });
  private readonly clients = new Set<FeedClient>();
  private readonly liveCalls = new Map<string, LiveCallSummary>();
  /** Labels of calls seen recently (live or replayed), so scoping does not query the store per event. */
  private readonly labelCache = new Map<string, readonly string[]>();
  private readonly heartbeat: NodeJS.Timeout;
  private nextClientId = 1;
  private closing = false;
  private counters = { accepted: 0, refused: 0, eventsSent: 0, replayed: 0, partialsDropped: 0, slowDisconnects: 0, heartbeatTimeouts: 0, badMessages: 0 };
  private readonly onHubEvent = (event: CallEvent, cursor: number | undefined, at: number): void => this.publish(event, cursor, at);

  constructor(private readonly deps: SupervisorFeedDeps) {
    deps.hub.on('event', this.onHubEvent);
    this.heartbeat = setInterval(() => this.beat(), deps.config.heartbeatMs);
    this.heartbeat.unref();
  }

  /** The upgrade handler for `/v1/supervisor`. */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void => {
    const refuse = (status: number, message: string): void => {
      this.counters.refused++;
      this.deps.logger.info({ status, reason: message, remote: req.socket.remoteAddress }, 'supervisor connection refused');
      rejectUpgrade(socket, status, message, status === 401 ? { 'WWW-Authenticate': 'Bearer realm="whisperline"' } : {});
    };
    if (this.closing) return refuse(503, 'gateway shutting down');
    if (!originAllowed(req, this.deps.config.allowedOrigins)) return refuse(403, `origin ${req.headers.origin} is not allowed`);
    const principal = this.deps.auth.authenticate(req, url);
    if (!principal) return refuse(401, 'a valid bearer token is required');
    let resume: ResumePoint;
    try {
      resume = parseResume(url);
    } catch (err) {
      return refuse(400, (err as Error).message);
    }
    const partials = url.searchParams.get('partials') !== '0';
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, principal, resume, partials));
  };

  get clientCount(): number {
    return this.clients.size;
  }

  stats(): SupervisorFeedStats {
    return { clients: this.clients.size, ...this.counters };
  }

  /** Calls in progress (all of them; `hello` filters by token). */
  liveCallIds(): ReadonlySet<string> {
    return new Set(this.liveCalls.keys());
  }

  /** Closes every client with 1001 and stops listening to the hub. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.heartbeat);
    this.deps.hub.off('event', this.onHubEvent);
    const gone = [...this.clients].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === WebSocket.CLOSED) return resolve();
          c.ws.once('close', () => resolve());
          this.closeClient(c, FEED_CLOSE.SHUTDOWN, 'gateway shutting down');
        }),
    );
    await Promise.all(gone);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private accept(ws: WebSocket, principal: Principal, resume: ResumePoint, partials: boolean): void {
    const client = new FeedClient(ws, principal, partials, this.nextClientId++);
    this.counters.accepted++;
    this.clients.add(client);
    const log = this.deps.logger.child({ feedClient: client.id, principal: principal.name });
    log.info({ resume: resume.kind }, 'supervisor connected');
    ws.on('pong', () => (client.alive = true));
    ws.on('message', (data, isBinary) => this.onClientMessage(client, data, isBinary));
    ws.on('error', (err) => log.debug({ err }, 'supervisor socket error'));
    ws.on('close', (code) => {
      client.closed = true;
      this.clients.delete(client);
      log.info({ code }, 'supervisor disconnected');
    });
    const calls = [...this.liveCalls.values()].filter((c) => canSee(principal, c.labels));
    this.sendControl(client, { type: 'hello', cursor: this.deps.store.lastCursor(), heartbeatMs: this.deps.config.heartbeatMs, principal: principal.name, calls });
    if (resume.kind === 'none') {
      client.live = true;
      return;
    }
    this.replay(client, resume).catch((err: unknown) => {
      log.error({ err }, 'supervisor replay failed');
      this.sendControl(client, { type: 'error', code: 'REPLAY_FAILED', message: 'replay from the transcript store failed' });
      this.closeClient(client, 1011, 'replay failed');
    });
  }

  /**
   * Sends the stored events after the resume point, page by page, waiting while the client's
   * socket is above `partialDropBytes`, then switches the client to live in the same synchronous
   * step as the store read that found nothing more.
   */
  private async replay(client: FeedClient, resume: Exclude<ResumePoint, { kind: 'none' }>): Promise<void> {
    const { store, config } = this.deps;
    let replayed = 0;
    // Per-call positions advance as events are sent; the cursor mode keeps one position.
    let cursor = resume.kind === 'cursor' ? resume.cursor : 0;
    const perCall = resume.kind === 'calls' ? new Map(resume.calls) : undefined;
    if (perCall) client.replaying = new Set(perCall.keys());
    const readPage = (): StoredEvent[] => {
      if (!perCall) return store.eventsSince(cursor, REPLAY_PAGE);
      for (const [callId, seq] of perCall) {
        const rows = store.eventsAfter(callId, seq, REPLAY_PAGE);
        if (rows.length > 0) return rows;
      }
      return [];
    };
    for (;;) {
      if (client.closed || this.closing) return;
      const page = readPage();
      if (page.length === 0) break;
      for (const row of page) {
        cursor = Math.max(cursor, row.cursor);
        perCall?.set(row.event.callId, row.event.seq);
        if (!canSee(client.principal, this.labelsOf(row.event.callId, row.event))) continue;
        if (++replayed > config.replayLimit) {
          this.sendControl(client, {
            type: 'error',
            code: 'REPLAY_TOO_FAR',
            message: `more than ${config.replayLimit} events to replay: load the history over HTTP and reconnect without a resume point`,
          });
          this.closeClient(client, 4009, 'replay too far');
          return;
        }
        this.sendRaw(client, JSON.stringify(toWire(row.event, row.cursor, row.recordedAt, true)));
      }
      this.counters.replayed += page.length;
      // Back-pressure: let the socket drain before the next page.
      while (!client.closed && client.ws.bufferedAmount > config.partialDropBytes) await new Promise((r) => setTimeout(r, 5));
      await yieldToLoop();
    }
    // Nothing more in the store: from here on live events carry on where the replay stopped.
    client.live = true;
    client.replaying = undefined;
    this.sendControl(client, { type: 'replay.done', cursor: store.lastCursor(), replayed: Math.min(replayed, config.replayLimit) });
  }

  /** Fans one hub event out to every live client that may see its call. */
  private publish(event: CallEvent, cursor: number | undefined, at: number): void {
    this.track(event, at);
    if (this.clients.size === 0) return;
    const labels = this.labelsOf(event.callId, event);
    const partial = event.kind === 'partial';
    // Serialised once for every client.
    const frame = Buffer.from(JSON.stringify(toWire(event, cursor, at)));
    const { partialDropBytes, maxBufferedBytes } = this.deps.config;
    for (const client of this.clients) {
      if (client.closed) continue;
      if (!client.live && !(client.replaying && !client.replaying.has(event.callId))) continue;
      if (partial && !client.partials) continue;
      if (!canSee(client.principal, labels)) continue;
      const buffered = client.ws.bufferedAmount;
      if (buffered > maxBufferedBytes) {
        this.counters.slowDisconnects++;
        this.deps.logger.warn({ feedClient: client.id, principal: client.principal.name, bufferedBytes: buffered }, 'supervisor client too slow: disconnecting');
        this.closeClient(client, FEED_CLOSE.SLOW_CONSUMER, 'too slow: reconnect with your last cursor');
        continue;
      }
      if (partial && buffered > partialDropBytes) {
        this.counters.partialsDropped++;
        continue;
      }
      this.sendRaw(client, frame);
    }
  }

  /** Keeps the live-call list and the label cache current. */
  private track(event: CallEvent, at: number): void {
    switch (event.kind) {
      case 'call.started':
        this.liveCalls.set(event.callId, { callId: event.callId, rule: event.rule, labels: event.labels, parties: event.parties, startedAt: at, lastSeq: event.seq });
        this.cacheLabels(event.callId, event.labels);
        return;
      case 'call.ended':
        this.liveCalls.delete(event.callId);
        return;
      default: {
        const live = this.liveCalls.get(event.callId);
        if (live && event.seq > live.lastSeq) live.lastSeq = event.seq;
      }
    }
  }

  private labelsOf(callId: string, event: CallEvent): readonly string[] {
    if (event.kind === 'call.started') return event.labels;
    const cached = this.liveCalls.get(callId)?.labels ?? this.labelCache.get(callId);
    if (cached) return cached;
    const labels = this.deps.store.call(callId)?.labels ?? [];
    this.cacheLabels(callId, labels);
    return labels;
  }

  private cacheLabels(callId: string, labels: readonly string[]): void {
    // Bounded: dropping the cache only costs a store lookup per call on its next event.
    if (this.labelCache.size >= 10_000) this.labelCache.clear();
    this.labelCache.set(callId, labels);
  }

  private onClientMessage(client: FeedClient, data: RawData, isBinary: boolean): void {
    let message: unknown;
    try {
      message = isBinary ? undefined : JSON.parse(data.toString());
    } catch {
      message = undefined;
    }
    if (typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'ping') {
      this.sendControl(client, { type: 'pong' });
      return;
    }
    this.counters.badMessages++;
    this.sendControl(client, { type: 'error', code: 'BAD_MESSAGE', message: 'the feed accepts only {"type":"ping"} from clients' });
  }

  private beat(): void {
    for (const client of this.clients) {
      if (!client.alive) {
        this.counters.heartbeatTimeouts++;
        this.deps.logger.info({ feedClient: client.id, principal: client.principal.name }, 'supervisor client missed its heartbeat');
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      client.ws.ping();
    }
  }

  private sendControl(client: FeedClient, message: Record<string, unknown>): void {
    this.sendRaw(client, JSON.stringify(message));
  }

  private sendRaw(client: FeedClient, frame: string | Buffer): void {
    if (client.closed || client.ws.readyState !== WebSocket.OPEN) return;
    client.ws.send(frame, { binary: false });
    this.counters.eventsSent++;
  }

  /** Sends a close frame and cuts the socket if the client does not take it in time. */
  private closeClient(client: FeedClient, code: number, reason: string): void {
    if (client.closed) return;
    client.closed = true;
    client.ws.close(code, reason);
    setTimeout(() => client.ws.terminate(), CLOSE_GRACE_MS).unref();
  }
}
