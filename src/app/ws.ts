/**
 * A voice application over a WebSocket, speaking jambonz's `ws.jambonz.org` protocol as the
 * feature-server does (its `WsRequestor`), so applications built with `@jambonz/node-client-ws`
 * run unchanged.
 *
 * Wire (text frames of JSON):
 * - to the app: `{type, msgid, call_sid, data}`, plus `hook` on `verb:hook`:
 *   `session:new` (data: the call attributes) and `verb:hook` (data: the attributes with the
 *   hook's payload merged over them) wait for the app's `{type:'ack', msgid, data?}` (data: verbs);
 *   `call:status` (data: the attributes with the change merged over them) and `jambonz:error`
 *   (data: `{msg, ...details}`) are notifications, never acked.
 * - from the app: `ack` (above) and `{type:'command', command, queueCommand?, data}`: `redirect`
 *   carries verbs (normalised here; `queueCommand: true` appends them instead of replacing), the
 *   others (`mute:status`, `llm:update`, …) go to `onCommand` as they came. A message that is not
 *   JSON, has no type or an unknown one, or a redirect whose data are not verbs is answered with
 *   `jambonz:error` `{msg:'InvalidMessage', details, content}`, as jambonz answers it.
 *
 * Contract:
 * - `start` opens the socket (subprotocol `ws.jambonz.org`, `spec.auth` as the upgrade's
 *   Authorization header), sends `session:new` and resolves with the verbs of its ack; like a
 *   webhook's first reply they must be a non-empty verb array (jambonz ends the call otherwise).
 *   Connecting may take `connectTimeoutMs`, each ack `spec.timeoutMs` (both default 5000): later
 *   is APP_FAILED "timed out". A refused upgrade (HTTP status), a server that does not select the
 *   subprotocol or an unreachable host are APP_FAILED saying which.
 * - `hook` resolves with the ack's verbs, or undefined when the ack has none or `[]` (the remaining
 *   verbs go on, as in jambonz). An absolute http(s) hook URL is sent as a webhook, as jambonz does.
 * - a socket that fails mid-call, or that the app closes with any code but 1000, is reconnected as
 *   jambonz does it: after 0.5 s, 1 s, 2 s, 4 s, 4 s (`maxReconnects`, 5), then `session:reconnect`
 *   with the call's attributes, which waits for its ack. Meanwhile requests and notifications
 *   wait (notifications up to MAX_QUEUED, the oldest dropped and logged); what was in flight when
 *   the socket dropped is sent again, with its msgid, over the new socket; each request's ack
 *   timeout runs from its first sending. When every reconnect fails, or after a close with 1000,
 *   what waits is rejected with APP_FAILED and every later `start`/`hook` rejects at once.
 * - `close()` closes with 1000 (waiting at most CLOSE_WAIT_MS for the app's reply), rejects what
 *   waits, and is idempotent.
 */
import { randomUUID } from 'node:crypto';
import { WebSocket, type RawData } from 'ws';
import { WhisperlineError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AppChannel, AppCommand, CallAttributes, Verb } from '../call/app-channel.js';
import type { AppTransportSpec } from './spec.js';
import { normaliseVerbs } from './verbs.js';
import { DEFAULT_TIMEOUT_MS, authorization, hookObject, parseUrl, requestJson } from './webhook.js';

export const SUBPROTOCOL = 'ws.jambonz.org';

export interface WsChannelOptions {
  readonly logger?: Logger;
  /** Time allowed for the WebSocket handshake. Default `spec.timeoutMs`, else 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** Reconnects after a dropped socket before the channel gives up (jambonz's MAX_RECONNECTS). Default 5. */
  readonly maxReconnects?: number;
  /** The first wait before reconnecting; doubled each time up to 4 s. Default 500 ms. */
  readonly reconnectBackoffMs?: number;
}

/** A command as this transport delivers it: `redirect`'s data are normalised verbs. */
export interface JambonzCommand extends AppCommand {
  /** `redirect`: true appends the verbs to those running, false (default) replaces them. */
  readonly queueCommand: boolean;
  /** Set when the app addresses another call of its session (jambonz's `callSid`). */
  readonly callSid?: string;
}

/** How long `close()` waits for the application to answer the close frame. */
const CLOSE_WAIT_MS = 250;
/** The largest message taken from the application. */
const MAX_MESSAGE_BYTES = 1024 * 1024;
/** Notifications kept while the socket is being reconnected. */
const MAX_QUEUED = 50;
const MAX_BACKOFF_MS = 4000;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

interface Pending {
  readonly what: string;
  /** The message as sent: sent again over a reconnected socket until it is acked. */
  readonly message: Readonly<Record<string, unknown>>;
  readonly resolve: (data: unknown) => void;
  readonly reject: (err: WhisperlineError) => void;
  readonly timer: NodeJS.Timeout;
}

/** A call's channel to a WebSocket application: implements the call level's `AppChannel` port. */
export class WsChannel implements AppChannel {
  private ws: WebSocket | undefined;
  private attributes: CallAttributes | undefined;
  /** Why the channel is unusable (closed by us, by the app, failed): later calls reject with it. */
  private ended: string | undefined;
  private closing: Promise<void> | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners: Array<(command: AppCommand) => void> = [];
  private readonly timeoutMs: number;
  private readonly log: Logger | undefined;
  private readonly url: URL;
  /** Set once session:new was acked: from then on a dropped socket is reconnected. */
  private sessionUp = false;
  /** Set while a dropped socket is being reconnected: requests and notifications wait for it. */
  private reconnecting: Promise<void> | undefined;
  /** Notifications made while reconnecting, sent once the new socket is up. */
  private readonly queued: Record<string, unknown>[] = [];

  constructor(
    private readonly spec: AppTransportSpec,
    private readonly options: WsChannelOptions = {},
  ) {
    this.url = new URL(spec.url);
    this.timeoutMs = spec.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.log = options.logger?.child({ app: `${this.url.origin}${this.url.pathname}`, call_sid: spec.callSid });
  }

  async start(attributes: CallAttributes): Promise<Verb[]> {
    this.usable('session:new');
    if (this.attributes) throw new WhisperlineError('APP_FAILED', 'session:new was already sent on this channel');
    this.attributes = attributes;
    await this.connect();
    const data = await this.request('session:new', { data: attributes });
    this.sessionUp = true;
    const what = 'the ack of session:new';
    if (data === undefined) throw new WhisperlineError('APP_FAILED', `${what} has no verbs (jambonz needs them to run the call)`);
    const verbs = normaliseVerbs(data, what);
    if (verbs.length === 0) throw new WhisperlineError('APP_FAILED', `${what} is an empty verb array (no application to run)`);
    return verbs;
  }

  async hook(hook: string | { readonly url: string; readonly method?: string }, payload: Readonly<Record<string, unknown>>): Promise<Verb[] | undefined> {
    const h = hookObject(hook);
    const what = `verb:hook ${h.url}`;
    this.usable(what);
    const data = { ...this.attributes, ...payload };
    let body: unknown;
    if (/^https?:\/\//i.test(h.url)) {
      // jambonz sends an absolute http(s) hook of a WebSocket app as a webhook, credentials only from the hook.
      const own = h.username !== undefined && h.password !== undefined ? authorization({ username: h.username, password: h.password }) : undefined;
      body = await requestJson({ url: parseUrl(h.url, 'the hook URL'), method: h.method ?? 'POST', body: data, authorization: own, timeoutMs: this.timeoutMs, what: `hook ${h.url}` });
    } else {
      if (!this.ws) throw new WhisperlineError('APP_FAILED', `${what}: session:new was not sent yet`);
      body = await this.request('verb:hook', { hook: h.url, data });
    }
    if (body === undefined) return undefined;
    const verbs = normaliseVerbs(body, `the ack of ${what}`);
    return verbs.length > 0 ? verbs : undefined;
  }

  status(payload: Readonly<Record<string, unknown>>): void {
    this.notify('call:status', { ...this.attributes, ...payload });
  }

  error(message: string, details?: Readonly<Record<string, unknown>>): void {
    // The feature-server's shape: `{msg, details}` (or `{msg, details, verb, id}` for a verb's error).
    this.notify('jambonz:error', { msg: message, ...details });
  }

  onCommand(listener: (command: AppCommand) => void): void {
    this.listeners.push(listener);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ------------------------------------------------------------------------------------------

  private usable(what: string): void {
    if (this.ended !== undefined) throw new WhisperlineError('APP_FAILED', `${what}: ${this.ended}`);
  }

  private connect(reconnect = false): Promise<void> {
    const connectMs = this.options.connectTimeoutMs ?? this.spec.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const where = `connecting to ${this.url.origin}${this.url.pathname}`;
    const auth = authorization(this.spec.auth);
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(this.url, [SUBPROTOCOL], {
        handshakeTimeout: connectMs,
        maxPayload: MAX_MESSAGE_BYTES,
        followRedirects: false,
        ...(auth && { headers: { authorization: auth } }),
      });
      this.ws = ws;
      const failed = (message: string, err?: unknown, retryable = true): void => {
        if (settled) return;
        settled = true;
        // A failed reconnect is one attempt of several; a failed first connect ends the channel.
        if (this.ended === undefined && !reconnect) this.ended = message;
        reject(new WhisperlineError('APP_FAILED', message, { retryable, cause: err }));
      };
      ws.once('unexpected-response', (req, res) => {
        // The app refused the upgrade (no such path, bad credentials): its status says why.
        failed(`${where}: the application refused the WebSocket upgrade: HTTP ${res.statusCode ?? '?'}${res.statusMessage ? ` ${res.statusMessage}` : ''}`, undefined, (res.statusCode ?? 0) >= 500);
        res.resume();
        req.destroy();
      });
      ws.once('open', () => {
        if (settled) return;
        if (ws.protocol !== SUBPROTOCOL) {
          failed(`${where}: the application did not accept the ${SUBPROTOCOL} subprotocol`, undefined, false);
          ws.close(1002);
          return;
        }
        settled = true;
        resolve();
      });
      ws.on('error', (err) => {
        const timedOut = /timed out|timeout/i.test(err.message);
        if (!settled) failed(timedOut ? `${where} timed out after ${connectMs} ms` : `${where} failed: ${err.message}`, err);
        else this.dropped(ws, `the application's socket failed: ${err.message}`, undefined);
      });
      ws.on('close', (code, reason) => {
        if (!settled) failed(`${where}: the socket closed during the handshake (${code})`);
        else this.dropped(ws, `the application closed the socket (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`, code);
      });
      ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    });
  }

  /** Sends a message that waits for its ack; resolves with the ack's `data`. */
  private async request(type: 'session:new' | 'verb:hook', fields: { hook?: string; data: Readonly<Record<string, unknown>> }): Promise<unknown> {
    const what = fields.hook === undefined ? type : `${type} ${fields.hook}`;
    if (this.reconnecting) {
      await this.reconnecting;
      this.usable(what);
    }
    return this.send(type, what, fields);
  }

  /** Sends a message that waits for its ack, now, over the socket there is. */
  private send(type: 'session:new' | 'session:reconnect' | 'verb:hook', what: string, fields: { hook?: string; data: Readonly<Record<string, unknown>> }): Promise<unknown> {
    const msgid = randomUUID();
    const message = { type, msgid, call_sid: this.spec.callSid, ...fields };
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(msgid);
        reject(new WhisperlineError('APP_FAILED', `${what}: the application timed out (no ack in ${this.timeoutMs} ms)`, { retryable: true }));
      }, this.timeoutMs);
      this.pending.set(msgid, { what, message, resolve, reject, timer });
      this.sendJson(message, (err) => {
        // Sent while the socket dropped: it goes again over the reconnected one.
        if (this.reconnecting && type !== 'session:reconnect') return;
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(msgid);
        reject(new WhisperlineError('APP_FAILED', `${what}: sending failed: ${err.message}`, { retryable: true, cause: err }));
      });
    });
  }

  /** Sends a message jambonz does not expect an ack for; dropped (logged) when the socket is gone. */
  private notify(type: 'call:status' | 'jambonz:error', data: Readonly<Record<string, unknown>>): void {
    const message = { type, msgid: randomUUID(), call_sid: this.spec.callSid, data };
    if (this.ended === undefined && this.reconnecting) {
      if (this.queued.length >= MAX_QUEUED) this.log?.warn({ type: this.queued.shift()?.type }, 'application socket reconnecting: the oldest queued notification was dropped');
      this.queued.push(message);
      return;
    }
    if (this.ended !== undefined || this.ws?.readyState !== WebSocket.OPEN) {
      this.log?.debug({ type }, 'application socket not open: message dropped');
      return;
    }
    this.sendJson(message, (err) => {
      if (err) this.log?.warn({ err, type }, 'sending to the application failed');
    });
  }

  private sendJson(message: Record<string, unknown>, done: (err?: Error) => void): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      done(new Error('the socket is not open'));
      return;
    }
    ws.send(JSON.stringify(message), done);
  }

  private onMessage(raw: RawData, isBinary: boolean): void {
    const content = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw as ArrayBuffer);
    if (isBinary) {
      this.invalid('binary frames are not part of the ws.jambonz.org protocol', '');
      return;
    }
    const text = content.toString('utf8');
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch (err) {
      this.invalid(`not JSON: ${err instanceof Error ? err.message : String(err)}`, text);
      return;
    }
    if (!isRecord(msg) || typeof msg.type !== 'string') {
      this.invalid('type property not supplied', text);
      return;
    }
    if (msg.type === 'ack') {
      if (typeof msg.msgid !== 'string') return this.invalid('msgid not supplied', text);
      const p = this.pending.get(msg.msgid);
      if (!p) {
        this.log?.info({ msgid: msg.msgid }, 'ack to an unknown msgid (late or duplicate): discarded');
        return;
      }
      this.pending.delete(msg.msgid);
      clearTimeout(p.timer);
      p.resolve(msg.data);
      return;
    }
    if (msg.type === 'command') {
      if (typeof msg.command !== 'string') return this.invalid('command property not supplied', text);
      let data: unknown = msg.data;
      if (msg.command === 'redirect') {
        try {
          data = normaliseVerbs(msg.data, 'the verbs of a redirect command');
        } catch (err) {
          return this.invalid(err instanceof Error ? err.message : String(err), text);
        }
      }
      const command: JambonzCommand = {
        command: msg.command,
        data,
        queueCommand: msg.queueCommand === true,
        ...(typeof msg.callSid === 'string' && { callSid: msg.callSid }),
      };
      for (const listener of this.listeners) {
        try {
          listener(command);
        } catch (err) {
          this.log?.error({ err, command: command.command }, 'a command listener threw');
        }
      }
      return;
    }
    this.invalid(`invalid type property: ${msg.type}`, text);
  }

  /** A message jambonz would reject: logged, and the app told with `jambonz:error` as jambonz tells it. */
  private invalid(details: string, content: string): void {
    this.log?.warn({ details }, 'invalid message from the application');
    this.notify('jambonz:error', { msg: 'InvalidMessage', details, content: content.slice(0, 2000) });
  }

  /**
   * The socket `ws` dropped. Before the session is up, or after the app closed it with 1000 (it is
   * done with the call), that is the end; otherwise it is reconnected (once per drop: a failure
   * reports both an error and a close).
   */
  private dropped(ws: WebSocket, why: string, code: number | undefined): void {
    if (ws !== this.ws || this.ended !== undefined || this.closing) return;
    if (this.reconnecting) return;
    if (code === 1000 || !this.sessionUp) return this.lost(why);
    this.reconnecting = this.reconnect(why).finally(() => (this.reconnecting = undefined));
  }

  private async reconnect(why: string): Promise<void> {
    const attempts = this.options.maxReconnects ?? 5;
    let backoff = this.options.reconnectBackoffMs ?? 500;
    this.log?.warn({ why }, 'application socket dropped: reconnecting');
    for (let attempt = 1; attempt <= attempts; attempt++) {
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      if (this.ended !== undefined) return;
      try {
        await this.connect(true);
        if (this.ended !== undefined) {
          // Closed while reconnecting: the new socket goes too.
          this.ws?.terminate();
          return;
        }
        // jambonz's session:reconnect: the session's attributes again; its ack's verbs are not run.
        await this.send('session:reconnect', 'session:reconnect', { data: this.attributes ?? {} });
      } catch (err) {
        this.log?.info({ attempt, err: (err as Error).message }, 'reconnecting to the application failed');
        continue;
      }
      this.log?.info({ attempt }, 'application socket reconnected');
      for (const p of this.pending.values()) this.sendJson(p.message, () => undefined);
      for (const message of this.queued.splice(0)) this.sendJson(message, () => undefined);
      return;
    }
    this.lost(`${why}; ${attempts} reconnects failed`);
  }

  /** The socket is gone: what waits for an ack fails, later calls reject at once. */
  private lost(why: string): void {
    if (this.ended === undefined) this.ended = why;
    this.queued.length = 0;
    this.rejectPending(this.ended);
  }

  private rejectPending(why: string): void {
    for (const [msgid, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(msgid);
      p.reject(new WhisperlineError('APP_FAILED', `${p.what}: ${why}`, { retryable: true }));
    }
  }

  private async shutdown(): Promise<void> {
    if (this.ended === undefined) this.ended = 'the application channel is closed';
    this.rejectPending('the application channel was closed');
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, CLOSE_WAIT_MS);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000);
    });
  }
}

export function openWsChannel(spec: AppTransportSpec, options?: WsChannelOptions): AppChannel {
  return new WsChannel(spec, options);
}
