import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallEvent } from '../transcripts/events.js';
import { TranscriptStore } from '../transcripts/store.js';
import { TokenAuth } from './auth.js';
import { historyRoutes } from './history.js';
import { GatewayHttpServer } from './server.js';

const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);
const ALL = 'all-calls-token-0123456789';
const QUEUE_A = 'queue-a-token-0123456789';
const WALLBOARD = 'https://wallboard.example.com';

const dir = mkdtempSync(join(tmpdir(), 'wl-history-'));
let store: TranscriptStore;
let server: GatewayHttpServer;
let base: string;
const live = new Set<string>(['a-live']);

function call(callId: string, labels: string[], text: string): CallEvent[] {
  return [
    { kind: 'call.started', callId, seq: 1, rule: 'support', labels, parties: [{ name: 'caller', label: 'customer' }, { name: 'callee', label: 'agent' }] },
    { kind: 'final', callId, seq: 3, party: 'caller', text, startMs: 500, endMs: 2500, language: 'en', confidence: 0.9 },
    { kind: 'alert', callId, seq: 4, party: 'caller', rule: 'r', severity: 'warning', finalSeq: 3, text: 'x', startMs: 500, endMs: 2500 },
    { kind: 'dtmf', callId, seq: 5, party: 'caller', digit: '7', durationMs: 100, endLost: false },
    { kind: 'ended', callId, seq: 6, reason: 'hangup' },
    { kind: 'call.ended', callId, seq: 7, reason: 'bye-caller', durationMs: 3000, parties: {} },
  ];
}

beforeAll(async () => {
  store = TranscriptStore.open(join(dir, 'calls.db'));
  // 12 calls, one second apart: even ones queue-a, odd ones queue-b; one live (no end yet).
  for (let i = 0; i < 12; i++) {
    const id = `c${String(i).padStart(2, '0')}`;
    const labels = i % 2 === 0 ? ['queue-a'] : ['queue-b'];
    for (const e of call(id, labels, i === 4 ? 'I want to cancel my contract' : `hello number ${i}`)) store.record(e, T0 + i * 1000 + (e.kind === 'call.ended' ? 3000 : 0));
  }
  store.record(call('a-live', ['queue-a'], 'still talking')[0]!, T0 + 60_000);
  // A page directory with a file outside it that traversal must never reach.
  const pageDir = join(dir, 'www', 'page');
  mkdirSync(join(pageDir, 'sub'), { recursive: true });
  writeFileSync(join(pageDir, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(pageDir, 'app.js'), 'export {};');
  writeFileSync(join(pageDir, 'style.css'), 'body{}');
  writeFileSync(join(pageDir, 'notes.unknownext'), 'x');
  writeFileSync(join(pageDir, '.hidden.js'), 'secret');
  writeFileSync(join(dir, 'www', 'secret.txt'), 'SECRET');
  const auth = new TokenAuth([
    { name: 'all', token: ALL, labels: [] },
    { name: 'queue-a', token: QUEUE_A, labels: ['queue-a'] },
  ]);
  server = await GatewayHttpServer.start({
    host: '127.0.0.1',
    port: 0,
    health: () => ({ status: 'ok' }),
    logger: pino({ level: 'silent' }),
    routes: historyRoutes({ store, auth, allowedOrigins: [WALLBOARD], live: () => live, logger: pino({ level: 'silent' }), pageDir: pathToFileURL(`${pageDir}/`) }),
  });
  base = `http://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server?.close();
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, token?: string, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers }, redirect: 'manual' });

/** A request with the path exactly as given (fetch would normalise `..`). */
function raw(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface ListBody {
  calls: { id: string; live: boolean; labels: string[]; endedAt: number | null; endReason: string | null; durationMs: number | null; parties: unknown[]; rule: string | null; startedAt: number }[];
  next: string | null;
}

describe('history API', () => {
  it('needs a known token on every API route (header or ?token=), 401 otherwise', async () => {
    for (const path of ['/v1/calls', '/v1/calls/c00', '/v1/calls/c00/export?format=txt']) {
      const missing = await get(path);
      expect(missing.status).toBe(401);
      expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await missing.json()).toEqual({ error: expect.stringMatching(/token/) });
      expect((await get(path, 'not-a-known-token-at-all')).status).toBe(401);
      expect((await get(path, ALL)).status).toBe(200);
      expect((await get(`${path}${path.includes('?') ? '&' : '?'}token=${QUEUE_A}`)).status).toBe(200);
    }
  });

  it('refuses a browser origin that is neither its own nor configured (403); a configured one may read', async () => {
    expect((await get('/v1/calls', ALL, { origin: 'https://evil.example.com' })).status).toBe(403);
    expect((await get('/v1/calls', undefined, { origin: 'https://evil.example.com' })).status).toBe(403);
    const own = await get('/v1/calls', ALL, { origin: base });
    expect(own.status).toBe(200);
    expect(own.headers.get('access-control-allow-origin')).toBeNull();
    const wall = await get(`/v1/calls?token=${ALL}`, undefined, { origin: WALLBOARD });
    expect(wall.status).toBe(200);
    expect(wall.headers.get('access-control-allow-origin')).toBe(WALLBOARD);
  });

  it('lists calls newest first with their state, paging with `next`', async () => {
    const first = (await (await get('/v1/calls?limit=5', ALL)).json()) as ListBody;
    expect(first.calls.map((c) => c.id)).toEqual(['a-live', 'c11', 'c10', 'c09', 'c08']);
    expect(first.calls[0]).toMatchObject({ live: true, endedAt: null, endReason: null, durationMs: null, rule: 'support', startedAt: T0 + 60_000 });
    expect(first.calls[1]).toEqual({
      id: 'c11',
      rule: 'support',
      labels: ['queue-b'],
      parties: [{ name: 'caller', label: 'customer' }, { name: 'callee', label: 'agent' }],
      startedAt: T0 + 11_000,
      endedAt: T0 + 14_000,
      endReason: 'bye-caller',
      endStatus: null,
      endError: null,
      durationMs: 3000,
      live: false,
    });
    expect(first.next).toBe(`${T0 + 8000}:c08`);
    const ids: string[] = first.calls.map((c) => c.id);
    let next = first.next;
    while (next !== null) {
      const page = (await (await get(`/v1/calls?limit=5&before=${encodeURIComponent(next)}`, ALL)).json()) as ListBody;
      ids.push(...page.calls.map((c) => c.id));
      next = page.next;
    }
    expect(ids).toHaveLength(13);
    expect(new Set(ids).size).toBe(13);
    // Exactly a full last page: no empty page after it.
    const exact = (await (await get(`/v1/calls?limit=3&before=${T0 + 3000}`, ALL)).json()) as ListBody;
    expect(exact).toMatchObject({ calls: [{ id: 'c02' }, { id: 'c01' }, { id: 'c00' }], next: null });
    // Default page size.
    expect(((await (await get('/v1/calls', ALL)).json()) as ListBody).calls).toHaveLength(13);
  });

  it('lists only the calls a token may see, with full pages', async () => {
    const page = (await (await get('/v1/calls?limit=3', QUEUE_A)).json()) as ListBody;
    expect(page.calls.map((c) => c.id)).toEqual(['a-live', 'c10', 'c08']);
    const rest = (await (await get(`/v1/calls?limit=50&before=${encodeURIComponent(page.next!)}`, QUEUE_A)).json()) as ListBody;
    expect(rest.calls.map((c) => c.id)).toEqual(['c06', 'c04', 'c02', 'c00']);
    expect(rest.next).toBeNull();
  });

  it('searches the finals', async () => {
    const found = (await (await get(`/v1/calls?search=${encodeURIComponent('  cancel my ')}`, ALL)).json()) as ListBody;
    expect(found.calls.map((c) => c.id)).toEqual(['c04']);
    expect(((await (await get('/v1/calls?search=cancel', QUEUE_A)).json()) as ListBody).calls.map((c) => c.id)).toEqual(['c04']);
    expect(((await (await get('/v1/calls?search=number%201', QUEUE_A)).json()) as ListBody).calls.map((c) => c.id)).toEqual(['c10']);
    expect(((await (await get('/v1/calls?search=nothing-like-this', ALL)).json()) as ListBody)).toEqual({ calls: [], next: null });
  });

  it('answers 400 naming the parameter for a bad limit, before or search', async () => {
    for (const [q, name] of [
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=1.5', 'limit'],
      ['limit=-1', 'limit'],
      ['before=-5', 'before'],
      ['before=soon', 'before'],
      ['before=1e12', 'before'],
      ['before=99999999999999999999', 'before'],
      [`search=${'x'.repeat(501)}`, 'search'],
    ] as const) {
      const res = await get(`/v1/calls?${q}`, ALL);
      expect(res.status, q).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(new RegExp(`^${name} `));
    }
    expect((await get('/v1/calls?limit=200&before=0', ALL)).status).toBe(200);
  });

  it('returns one call with every stored event in wire form', async () => {
    const res = await get('/v1/calls/c04', ALL);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { call: ListBody['calls'][number]; events: Record<string, unknown>[] };
    expect(body.call).toMatchObject({ id: 'c04', live: false, labels: ['queue-a'], durationMs: 3000 });
    expect(body.events.map((e) => [e.type, e.seq])).toEqual([
      ['call.started', 1],
      ['transcript.final', 3],
      ['alert', 4],
      ['dtmf', 5],
      ['transcript.ended', 6],
      ['call.ended', 7],
    ]);
    const stored = store.eventsAfter('c04', 0, 100);
    expect(body.events[1]).toEqual({
      type: 'transcript.final',
      callId: 'c04',
      seq: 3,
      cursor: stored[1]!.cursor,
      at: T0 + 4000,
      party: 'caller',
      text: 'I want to cancel my contract',
      startMs: 500,
      endMs: 2500,
      language: 'en',
      confidence: 0.9,
    });
    expect(body.events.every((e) => typeof e.cursor === 'number' && !('kind' in e) && !('replay' in e))).toBe(true);
    expect(((await (await get('/v1/calls/a-live', ALL)).json()) as { call: { live: boolean } }).call.live).toBe(true);
  });

  it('answers 404 for a call the token may not see exactly as for an unknown one', async () => {
    const hidden = await get('/v1/calls/c01', QUEUE_A);
    const unknown = await get('/v1/calls/zz', QUEUE_A);
    expect(hidden.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(await hidden.json()).toEqual({ error: 'no call "c01"' });
    expect(await unknown.json()).toEqual({ error: 'no call "zz"' });
    expect((await get('/v1/calls/c01/export?format=json', QUEUE_A)).status).toBe(404);
    expect((await get('/v1/calls/c00', QUEUE_A)).status).toBe(200);
    // Ids are URI-decoded.
    expect((await get('/v1/calls/%63%30%30', QUEUE_A)).status).toBe(200);
  });

  it('exports a call in every format with its content type', async () => {
    const types = { json: 'application/json', vtt: 'text/vtt; charset=utf-8', srt: 'application/x-subrip; charset=utf-8', txt: 'text/plain; charset=utf-8' };
    for (const [format, type] of Object.entries(types)) {
      const res = await get(`/v1/calls/c04/export?format=${format}`, QUEUE_A);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="c04.${format}"`);
      const body = await res.text();
      expect(body).toContain('cancel my contract');
      if (format === 'vtt') expect(body.startsWith('WEBVTT')).toBe(true);
      if (format === 'txt') expect(body).toBe('[00:00] customer: I want to cancel my contract\n');
    }
    expect(await (await get('/v1/calls/c04/export', ALL)).text()).toContain('customer:');
    const bad = await get('/v1/calls/c04/export?format=pdf', ALL);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'format must be one of json, vtt, srt, txt' });
  });
});

describe('supervisor page files', () => {
  it('redirects / and /supervisor to /supervisor/', async () => {
    for (const path of ['/', '/supervisor']) {
      const res = await get(path);
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe('/supervisor/');
    }
  });

  it('serves the page without a token, with content types, no-cache and a strict CSP', async () => {
    const index = await get('/supervisor/');
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('x-content-type-options')).toBe('nosniff');
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(index.headers.get('content-security-policy')).toContain(`ws://127.0.0.1:${server.port}`);
    expect(await index.text()).toContain('<title>t</title>');
    expect((await get('/supervisor/index.html')).headers.get('content-type')).toBe('text/html; charset=utf-8');
    const js = await get('/supervisor/app.js');
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('no-cache');
    expect((await get('/supervisor/style.css')).headers.get('content-type')).toBe('text/css; charset=utf-8');
  });

  it('answers a matching If-None-Match with 304', async () => {
    const first = await get('/supervisor/app.js');
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^".+"$/);
    const again = await get('/supervisor/app.js', undefined, { 'if-none-match': etag });
    expect(again.status).toBe(304);
  });

  it('never serves anything outside the page directory, nor dot files, directories or unknown types', async () => {
    for (const path of [
      '/supervisor/../secret.txt',
      '/supervisor/%2e%2e/secret.txt',
      '/supervisor/%2E%2E%2Fsecret.txt',
      '/supervisor/..%5csecret.txt',
      '/supervisor/sub/../../secret.txt',
      '/supervisor/..',
      '/supervisor/%2e%2e',
    ]) {
      const res = await raw(path);
      expect(res.status, path).toBe(400);
      expect(res.body).not.toContain('SECRET');
    }
    for (const path of ['/supervisor/.hidden.js', '/supervisor/missing.js', '/supervisor/sub', '/supervisor/notes.unknownext', '/supervisor/%00.js']) {
      const res = await raw(path);
      expect(res.status, path).toBe(404);
    }
    expect((await raw('/supervisor/%zz')).status).toBe(400);
  });
});

describe('the shipped page directory', () => {
  it('is found next to the module and holds the page', async () => {
    const s = await GatewayHttpServer.start({
      host: '127.0.0.1',
      port: 0,
      health: () => ({ status: 'ok' }),
      logger: pino({ level: 'silent' }),
      routes: historyRoutes({ store, auth: new TokenAuth([]), allowedOrigins: [], logger: pino({ level: 'silent' }) }),
    });
    try {
      for (const [file, type] of [
        ['', 'text/html'],
        ['app.js', 'text/javascript'],
        ['style.css', 'text/css'],
      ] as const) {
        const res = await fetch(`http://127.0.0.1:${s.port}/supervisor/${file}`);
        expect(res.status, file).toBe(200);
        expect(res.headers.get('content-type')).toContain(type);
      }
      const html = await (await fetch(`http://127.0.0.1:${s.port}/supervisor/`)).text();
      // Nothing from outside the gateway.
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    } finally {
      await s.close();
    }
  });
});
