/**
 * A voice application over HTTP webhooks, as jambonz's feature-server calls them.
 *
 * Contract:
 * - `start(attributes)` sends the call attributes as JSON to the application URL (jambonz's
 *   `call_hook`: POST by default, `method: 'GET'` sends no body, as jambonz does) and resolves with
 *   the reply's verbs. jambonz fails a call whose first reply is not a non-empty verb array ("no
 *   application provided"); so does this: no JSON body, an empty array, or anything else is
 *   APP_FAILED.
 * - `hook(hook, payload)` sends the call attributes with the payload merged over them (jambonz:
 *   `Object.assign(callInfo, results)`) to the hook URL, resolved against the application URL
 *   (`/gather-result` → the application's origin). jambonz's empty-reply semantics: a reply
 *   without a JSON body (204, an empty body, a body whose content type is not JSON) or a JSON `[]`
 *   resolves undefined, and the remaining verbs go on; a non-empty verb array replaces them. A JSON
 *   body that is not a verb array is APP_FAILED (jambonz ignores it silently; an application bug
 *   is better reported).
 * - `status(payload)` sends the attributes with the payload merged over them to `statusUrl` when
 *   one is configured (jambonz's call status hook), otherwise does nothing; it never rejects (a
 *   failure is logged).
 * - every request carries `spec.auth` (Basic or Bearer) when it goes to the application's origin;
 *   a hook on another origin gets no credentials (they were given for the application). A hook
 *   object's own `username`/`password` (jambonz's hook shape) win for that hook.
 * - each request may take `spec.timeoutMs` (default 5000) to its last body byte: later it is
 *   APP_FAILED "timed out" (retryable). A status outside 2xx is APP_FAILED with the status
 *   (redirects are not followed, as jambonz does not). A body that is not JSON is APP_FAILED.
 * - `error()` has no channel on webhooks (jambonz sends `jambonz:error` only over WebSocket): it
 *   is logged. `onCommand` never fires. `close()` aborts requests under way; later calls reject.
 */
import { WhisperlineError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AppChannel, AppCommand, CallAttributes, Verb } from '../call/app-channel.js';
import type { AppTransportSpec } from './spec.js';
import { normaliseVerbs } from './verbs.js';

export interface WebhookChannelOptions {
  /** Where `error()` and failed status requests are logged. */
  readonly logger?: Logger;
}

/** jambonz's hook object: a URL (absolute, or relative to the application's), a method, credentials. */
export interface HookObject {
  readonly url: string;
  readonly method?: string;
  readonly username?: string;
  readonly password?: string;
}

export const DEFAULT_TIMEOUT_MS = 5000;
/** The largest reply read from an application (a long verb array is a few KiB). */
const MAX_BODY_BYTES = 1024 * 1024;

/** The `Authorization` header value of `auth`. */
export function authorization(auth: AppTransportSpec['auth'] | { username: string; password: string } | undefined): string | undefined {
  if (!auth) return undefined;
  if ('bearer' in auth) return `Bearer ${auth.bearer}`;
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
}

/** `hook` as jambonz's hook object (a string is a URL; `method` defaults to POST). */
export function hookObject(hook: string | { readonly url: string; readonly method?: string }): HookObject {
  return typeof hook === 'string' ? { url: hook } : hook;
}

export interface JsonRequest {
  readonly url: URL;
  readonly method: string;
  readonly body: Readonly<Record<string, unknown>>;
  readonly authorization: string | undefined;
  readonly timeoutMs: number;
  /** Aborts the request (the channel closed). */
  readonly signal?: AbortSignal;
  /** Names the request in errors: `session:new`, `hook /gather-result`. */
  readonly what: string;
}

/**
 * One webhook request as jambonz sends it; resolves with the parsed JSON body, or undefined when
 * the reply has none (no body, or a content type that is not JSON: jambonz reads only JSON).
 */
export async function requestJson(req: JsonRequest): Promise<unknown> {
  const method = req.method.toUpperCase();
  if (method !== 'POST' && method !== 'GET') throw new WhisperlineError('APP_FAILED', `${req.what}: method ${req.method} is not GET or POST (jambonz sends only these)`);
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = req.signal ? AbortSignal.any([timeout, req.signal]) : timeout;
  const where = `${req.what} (${method} ${req.url.origin}${req.url.pathname})`;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (req.authorization) headers.authorization = req.authorization;
  if (method === 'POST') headers['content-type'] = 'application/json';
  const failed = (err: unknown): WhisperlineError => {
    if (timeout.aborted) return new WhisperlineError('APP_FAILED', `${where} timed out after ${req.timeoutMs} ms`, { retryable: true, cause: err });
    if (req.signal?.aborted) return new WhisperlineError('APP_FAILED', `${where}: the channel was closed`, { cause: err });
    const reason = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    return new WhisperlineError('APP_FAILED', `${where} failed: ${reason}`, { retryable: true, cause: err });
  };
  let text: string;
  let contentType: string;
  try {
    const res = await fetch(req.url, {
      method,
      headers,
      ...(method === 'POST' && { body: JSON.stringify(req.body) }),
      // jambonz does not follow redirects: a 3xx is a failed request, not a new URL.
      redirect: 'manual',
      signal,
    });
    if (res.status < 200 || res.status > 299) {
      await res.body?.cancel().catch(() => undefined);
      throw new WhisperlineError('APP_FAILED', `${where} refused: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`, { retryable: res.status >= 500 });
    }
    contentType = res.headers.get('content-type') ?? '';
    text = await readText(res, where);
  } catch (err) {
    if (err instanceof WhisperlineError) throw err;
    throw failed(err);
  }
  if (text.trim() === '' || !contentType.toLowerCase().includes('json')) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new WhisperlineError('APP_FAILED', `${where}: the reply is not JSON (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
}

async function readText(res: Response, where: string): Promise<string> {
  const length = Number(res.headers.get('content-length') ?? '0');
  if (length > MAX_BODY_BYTES) {
    await res.body?.cancel().catch(() => undefined);
    throw new WhisperlineError('APP_FAILED', `${where}: the reply is over ${MAX_BODY_BYTES} bytes`);
  }
  const text = await res.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw new WhisperlineError('APP_FAILED', `${where}: the reply is over ${MAX_BODY_BYTES} bytes`);
  return text;
}

/** A call's channel to a webhook application: implements the call level's `AppChannel` port. */
export class WebhookChannel implements AppChannel {
  private readonly appUrl: URL;
  private readonly statusUrl: URL | undefined;
  private readonly timeoutMs: number;
  private readonly closer = new AbortController();
  private attributes: CallAttributes | undefined;
  private closed = false;
  /** Status requests under way: the last one (completed) is sent while the call closes, and waited for. */
  private readonly statusSends = new Set<Promise<unknown>>();
  private readonly log: Logger | undefined;

  constructor(
    private readonly spec: AppTransportSpec,
    options: WebhookChannelOptions = {},
  ) {
    this.appUrl = parseUrl(spec.url, 'the application URL');
    this.statusUrl = spec.statusUrl === undefined ? undefined : parseUrl(spec.statusUrl, 'the call status URL', this.appUrl);
    this.timeoutMs = spec.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.log = options.logger?.child({ app: `${this.appUrl.origin}${this.appUrl.pathname}`, call_sid: spec.callSid });
  }

  async start(attributes: CallAttributes): Promise<Verb[]> {
    this.usable('session:new');
    if (this.attributes) throw new WhisperlineError('APP_FAILED', 'session:new was already sent on this channel');
    this.attributes = attributes;
    const body = await this.send(this.appUrl, this.spec.method ?? 'POST', attributes, undefined, 'session:new');
    const what = 'the reply to session:new';
    if (body === undefined) throw new WhisperlineError('APP_FAILED', `${what} has no JSON verb array (jambonz needs one to run the call)`);
    const verbs = normaliseVerbs(body, what);
    if (verbs.length === 0) throw new WhisperlineError('APP_FAILED', `${what} is an empty verb array (no application to run)`);
    return verbs;
  }

  async hook(hook: string | { readonly url: string; readonly method?: string }, payload: Readonly<Record<string, unknown>>): Promise<Verb[] | undefined> {
    const h = hookObject(hook);
    const what = `hook ${h.url}`;
    this.usable(what);
    const url = parseUrl(h.url, `the hook URL`, this.appUrl);
    const own = h.username !== undefined && h.password !== undefined ? authorization({ username: h.username, password: h.password }) : undefined;
    const body = await this.send(url, h.method ?? 'POST', { ...this.attributes, ...payload }, own, what);
    if (body === undefined) return undefined;
    const verbs = normaliseVerbs(body, `the reply to ${what}`);
    // jambonz replaces the remaining verbs only with a non-empty array: `[]` lets them go on.
    return verbs.length > 0 ? verbs : undefined;
  }

  status(payload: Readonly<Record<string, unknown>>): void {
    if (this.closed || this.statusUrl === undefined) return;
    // Not cut short by close(): the `completed` status is sent as the call ends (bounded by the timeout).
    const sending = this.send(this.statusUrl, 'POST', { ...this.attributes, ...payload }, undefined, 'call:status', false)
      .catch((err: unknown) => this.log?.warn({ err }, 'call status hook failed'))
      .finally(() => this.statusSends.delete(sending));
    this.statusSends.add(sending);
  }

  error(message: string, details?: Readonly<Record<string, unknown>>): void {
    // jambonz sends jambonz:error only over a WebSocket; a webhook application never hears of it.
    this.log?.warn({ appError: message, ...details }, 'voice application error (webhook apps have no error channel)');
  }

  onCommand(_listener: (command: AppCommand) => void): void {
    // Webhook applications cannot push anything: they only answer requests.
  }

  /** Aborts the hooks under way; resolves once the status requests sent so far are done. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.closer.abort();
    }
    await Promise.all([...this.statusSends]);
  }

  private usable(what: string): void {
    if (this.closed) throw new WhisperlineError('APP_FAILED', `${what}: the application channel is closed`);
  }

  private send(url: URL, method: string, body: Readonly<Record<string, unknown>>, own: string | undefined, what: string, abortOnClose = true): Promise<unknown> {
    const sameOrigin = url.origin === this.appUrl.origin;
    return requestJson({
      url,
      method,
      body,
      authorization: own ?? (sameOrigin ? authorization(this.spec.auth) : undefined),
      timeoutMs: this.timeoutMs,
      ...(abortOnClose ? { signal: this.closer.signal } : {}),
      what,
    });
  }
}

/** `raw` as an http(s) URL (relative ones resolved against `base`), or APP_FAILED. */
export function parseUrl(raw: string, what: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch (err) {
    throw new WhisperlineError('APP_FAILED', `${what} "${raw}" is not a URL`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new WhisperlineError('APP_FAILED', `${what} "${raw}" is not http(s)`);
  return url;
}

export function openWebhookChannel(spec: AppTransportSpec, options?: WebhookChannelOptions): AppChannel {
  return new WebhookChannel(spec, options);
}
