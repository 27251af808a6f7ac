import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { EXPORT_FORMATS, exportCall, type ExportFormat } from '../transcripts/export.js';
import type { CallRecord, TranscriptStore } from '../transcripts/store.js';
import { canSee, originAllowed, type Principal, type TokenAuth } from './auth.js';
import { sendJson, type HttpRoute } from './server.js';
import { toWire, type WireEvent } from '../transcripts/wire.js';

export interface HistoryRoutesDeps {
  readonly store: TranscriptStore;
  readonly auth: TokenAuth;
  /** Browser origins allowed besides the gateway's own (`supervisor.allowedOrigins`). */
  readonly allowedOrigins: readonly string[];
  /** The ids of the calls in progress now; without it no call is reported live. */
  readonly live?: () => ReadonlySet<string>;
  readonly logger: Logger;
  /** Where the supervisor page's files are (default: `./page/` next to this module). */
  readonly pageDir?: URL;
}

/** A stored call as the history API reports it. */
export interface CallSummary {
  readonly id: string;
  readonly rule: string | null;
  readonly labels: readonly string[];
  readonly parties: readonly { readonly name: string; readonly label?: string }[];
  /** ms since the epoch. */
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly endReason: string | null;
  /** The SIP final status of a call that ended unanswered (486 relayed from a busy callee, 503...). */
  readonly endStatus: number | null;
  /** What failed (`code`, `message`) for a call that ended `failed`. */
  readonly endError: { readonly code: string; readonly message: string } | null;
  readonly durationMs: number | null;
  /** In progress on this gateway now. */
  readonly live: boolean;
}

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 200;
const MAX_SEARCH_LENGTH = 500;
/** Stored events read per query when a call's whole history is sent. */
const EVENTS_PAGE = 5000;

const EXPORT_CONTENT_TYPES: Readonly<Record<ExportFormat, string>> = {
  json: 'application/json',
  vtt: 'text/vtt; charset=utf-8',
  srt: 'application/x-subrip; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
};

const STATIC_CONTENT_TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  txt: 'text/plain; charset=utf-8',
  webmanifest: 'application/manifest+json',
};

/** A file name the page directory may serve: one flat level, no dot files, no `..`. */
const SAFE_FILE = /^[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*$/;

export function callSummary(call: CallRecord, live: boolean): CallSummary {
  return {
    id: call.id,
    rule: call.rule ?? null,
    labels: call.labels,
    parties: call.parties,
    startedAt: call.startedAt,
    endedAt: call.endedAt ?? null,
    endReason: call.endReason ?? null,
    endStatus: call.endStatus ?? null,
    endError: call.endError ?? null,
    durationMs: call.durationMs ?? null,
    live,
  };
}

/** Every stored event of a call in wire form, in `seq` order. */
export function callEvents(store: TranscriptStore, callId: string): WireEvent[] {
  const out: WireEvent[] = [];
  for (let after = 0; ; ) {
    const page = store.eventsAfter(callId, after, EVENTS_PAGE);
    for (const s of page) out.push(toWire(s.event, s.cursor, s.recordedAt));
    if (page.length < EVENTS_PAGE) return out;
    after = page[page.length - 1]!.event.seq;
  }
}

class BadParam extends Error {}

/** An optional whole-number query parameter within [min, max]; throws `BadParam` naming it. */
function intParam(url: URL, name: string, min: number, max: number): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return undefined;
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new BadParam(`${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/**
 * `before`: a page position, `<ms>:<callId>` as `next` gives it (calls started in the same
 * millisecond are told apart by id), or a plain time in ms since the epoch.
 */
function pagePosition(url: URL): { at: number; id?: string } | undefined {
  const raw = url.searchParams.get('before');
  if (raw === null || raw === '') return undefined;
  const m = /^(\d{1,16})(?::(.{1,500}))?$/s.exec(raw);
  const at = m ? Number(m[1]) : NaN;
  if (!m || !Number.isSafeInteger(at)) throw new BadParam('before must be the `next` of a previous page, or a time in ms since the epoch');
  return m[2] !== undefined ? { at, id: m[2] } : { at };
}

/** `attachment` file name for an export: the call id with anything unusual replaced. */
const exportFileName = (callId: string, format: ExportFormat): string => `${callId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || 'call'}.${format}`;

/**
 * The supervisor page (`/`, `/supervisor/...`, no token: the page asks for one) and the call
 * history API, every route of which needs a supervisor token (`Authorization: Bearer` or
 * `?token=`) and sees only the calls of that token's labels:
 *
 * - `GET /v1/calls?search=&before=&limit=` lists calls newest first (`next`, a `<ms>:<callId>` position, is the `before` of the
 *   following page, null after the last);
 * - `GET /v1/calls/:id` is one call with every stored event in wire form;
 * - `GET /v1/calls/:id/export?format=json|vtt|srt|txt` is one call as a document.
 *
 * A call a token may not see answers 404 exactly as one that does not exist; a browser request
 * from an origin that is neither the gateway's own nor configured answers 403.
 */
export function historyRoutes(deps: HistoryRoutesDeps): HttpRoute[] {
  const { store, auth, allowedOrigins, logger } = deps;
  const pageDir = deps.pageDir ?? new URL('./page/', import.meta.url);
  const liveNow = (): ReadonlySet<string> => deps.live?.() ?? new Set<string>();

  /** The request's principal, or undefined after answering 401/403 itself. */
  function authorize(req: IncomingMessage, res: ServerResponse, url: URL): { principal: Principal; headers: Record<string, string> } | undefined {
    if (!originAllowed(req, allowedOrigins)) {
      sendJson(res, 403, { error: 'origin not allowed' });
      return undefined;
    }
    const principal = auth.authenticate(req, url);
    if (!principal) {
      const given = req.headers.authorization !== undefined || url.searchParams.has('token') || url.searchParams.has('access_token');
      sendJson(res, 401, { error: given ? 'unknown token' : 'a supervisor token is required' }, { 'www-authenticate': 'Bearer realm="whisperline"' });
      return undefined;
    }
    // A configured cross-origin wallboard may read the answer (a `?token=` request: a bearer
    // header from another origin would need a preflight, which the gateway does not answer).
    const origin = req.headers.origin;
    const headers: Record<string, string> = origin !== undefined && allowedOrigins.includes(origin) ? { 'access-control-allow-origin': origin, vary: 'Origin' } : {};
    return { principal, headers };
  }

  /** The call if the principal may see it; otherwise answers 404 itself. */
  function visibleCall(res: ServerResponse, principal: Principal, callId: string, headers: Record<string, string>): CallRecord | undefined {
    const call = store.call(callId);
    if (call && canSee(principal, call.labels)) return call;
    sendJson(res, 404, { error: `no call "${callId}"` }, headers);
    return undefined;
  }

  const listCalls: HttpRoute = {
    method: 'GET',
    path: '/v1/calls',
    handle: (req, res, url) => {
      const ok = authorize(req, res, url);
      if (!ok) return;
      let limit: number;
      let before: { at: number; id?: string } | undefined;
      try {
        limit = intParam(url, 'limit', 1, MAX_PAGE_LIMIT) ?? DEFAULT_PAGE_LIMIT;
        before = pagePosition(url);
      } catch (err) {
        if (!(err instanceof BadParam)) throw err;
        sendJson(res, 400, { error: err.message }, ok.headers);
        return;
      }
      const search = (url.searchParams.get('search') ?? '').trim();
      if (search.length > MAX_SEARCH_LENGTH) {
        sendJson(res, 400, { error: `search must be at most ${MAX_SEARCH_LENGTH} characters` }, ok.headers);
        return;
      }
      // One more than asked, to know whether another page follows.
      const rows = store.listCalls({
        limit: limit + 1,
        ...(before !== undefined ? { before: before.at, ...(before.id !== undefined ? { beforeId: before.id } : {}) } : {}),
        ...(search !== '' ? { search } : {}),
        labels: ok.principal.labels,
      });
      const page = rows.slice(0, limit);
      const live = liveNow();
      const last = page[page.length - 1];
      const next = rows.length > limit && last ? `${last.startedAt}:${last.id}` : null;
      sendJson(res, 200, { calls: page.map((c) => callSummary(c, live.has(c.id))), next }, ok.headers);
    },
  };

  const oneCall: HttpRoute = {
    method: 'GET',
    path: /^\/v1\/calls\/([^/]+)$/,
    handle: (req, res, url, [callId]) => {
      const ok = authorize(req, res, url);
      if (!ok) return;
      const call = visibleCall(res, ok.principal, callId!, ok.headers);
      if (!call) return;
      sendJson(res, 200, { call: callSummary(call, liveNow().has(call.id)), events: callEvents(store, call.id) }, ok.headers);
    },
  };

  const exportRoute: HttpRoute = {
    method: 'GET',
    path: /^\/v1\/calls\/([^/]+)\/export$/,
    handle: (req, res, url, [callId]) => {
      const ok = authorize(req, res, url);
      if (!ok) return;
      const format = (url.searchParams.get('format') ?? 'txt') as ExportFormat;
      if (!EXPORT_FORMATS.includes(format)) {
        sendJson(res, 400, { error: `format must be one of ${EXPORT_FORMATS.join(', ')}` }, ok.headers);
        return;
      }
      const call = visibleCall(res, ok.principal, callId!, ok.headers);
      if (!call) return;
      const body = exportCall(store, call.id, format);
      res.writeHead(200, {
        'content-type': EXPORT_CONTENT_TYPES[format],
        'cache-control': 'no-store',
        'content-disposition': `attachment; filename="${exportFileName(call.id, format)}"`,
        'x-content-type-options': 'nosniff',
        ...ok.headers,
      });
      res.end(body);
    },
  };

  const redirect =
    (to: string): HttpRoute['handle'] =>
    (_req, res) => {
      res.writeHead(302, { location: to, 'cache-control': 'no-cache' });
      res.end();
    };

  const pageFile: HttpRoute = {
    method: 'GET',
    path: /^\/supervisor\/(.*)$/,
    handle: async (req, res, _url, [name]) => {
      const file = name === '' ? 'index.html' : name!;
      if (!SAFE_FILE.test(file)) {
        // `..`, `/` and `\` (encoded or not), dot files, odd characters: never a file of the page.
        const traversal = /\.\.|[/\\]/.test(file);
        sendJson(res, traversal ? 400 : 404, { error: traversal ? 'invalid path' : 'not found' });
        return;
      }
      const type = STATIC_CONTENT_TYPES[file.slice(file.lastIndexOf('.') + 1).toLowerCase()];
      const fileUrl = new URL(file, pageDir);
      let body: Buffer | undefined;
      if (type !== undefined) {
        try {
          if ((await stat(fileUrl)).isFile()) body = await readFile(fileUrl);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT' && code !== 'ENOTDIR') logger.error({ err, file }, 'supervisor page file unreadable');
        }
      }
      if (body === undefined || type === undefined) {
        sendJson(res, 404, { error: 'not found' });
        return;
      }
      const etag = `"${createHash('sha1').update(body).digest('base64url')}"`;
      const headers: Record<string, string> = {
        'content-type': type,
        'cache-control': 'no-cache',
        etag,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      };
      if (file.endsWith('.html')) {
        const host = req.headers.host;
        const sockets = host && /^[A-Za-z0-9.:[\]-]+$/.test(host) ? ` ws://${host} wss://${host}` : '';
        headers['content-security-policy'] =
          `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'${sockets}; ` +
          `base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;
        headers['x-frame-options'] = 'DENY';
      }
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      res.writeHead(200, { ...headers, 'content-length': String(body.length) });
      res.end(body);
    },
  };

  return [
    { method: 'GET', path: '/', handle: redirect('/supervisor/') },
    { method: 'GET', path: '/supervisor', handle: redirect('/supervisor/') },
    pageFile,
    listCalls,
    oneCall,
    exportRoute,
  ];
}
