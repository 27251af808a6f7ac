/**
 * The webhook transport against a webhook application written as jambonz users write them: a
 * node:http server answering with `WebhookResponse` from `@jambonz/node-client`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import jambonz from '@jambonz/node-client';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallAttributes } from '../call/app-channel.js';
import { WhisperlineError } from '../errors.js';
import { openAppChannel } from './index.js';

const { WebhookResponse } = jambonz;

const ATTRIBUTES: CallAttributes = {
  call_sid: 'call-1',
  direction: 'inbound',
  from: '+15550001',
  to: '+15550002',
  call_id: 'abc@10.0.0.1',
  sip_status: 100,
  call_status: 'trying',
  caller_name: 'Alice',
  originating_sip_ip: '10.0.0.1',
};

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: unknown;
}

type Handler = (req: Seen, res: ServerResponse) => void;

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A webhook application on 127.0.0.1: every request is recorded, `handler` answers it. */
async function app(handler: Handler): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const entry = { method: req.method!, path: req.url!, headers: req.headers, body: text ? (JSON.parse(text) as unknown) : undefined };
      seen.push(entry);
      handler(entry, res);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const json = (res: ServerResponse, body: unknown, status = 200): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

async function rejection(p: Promise<unknown>): Promise<WhisperlineError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WhisperlineError);
  expect((err as WhisperlineError).code).toBe('APP_FAILED');
  return err as WhisperlineError;
}

describe('webhook application channel', () => {
  it('POSTs the call attributes as JSON and returns the reply verbs normalised', async () => {
    const { url, seen } = await app((req, res) => {
      const reply = new WebhookResponse()
        .say({ text: 'Welcome to whisperline' })
        .gather({ input: ['speech'], actionHook: '/gather-result', timeout: 10, say: { text: 'What can I do for you?' } });
      json(res, reply);
    });
    const channel = openAppChannel({ url: `${url}/app/incoming`, callSid: 'call-1' });
    const verbs = await channel.start(ATTRIBUTES);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', path: '/app/incoming', body: ATTRIBUTES });
    expect(seen[0]!.headers['content-type']).toBe('application/json');
    expect(verbs).toEqual([
      { verb: 'say', text: 'Welcome to whisperline' },
      { verb: 'gather', input: ['speech'], actionHook: '/gather-result', timeout: 10, say: { text: 'What can I do for you?' } },
    ]);
  });

  it('normalises the {say: {...}} spelling too', async () => {
    const { url } = await app((_req, res) => json(res, [{ say: { text: 'hi' } }, { hangup: {} }]));
    const verbs = await openAppChannel({ url, callSid: 'call-1' }).start(ATTRIBUTES);
    expect(verbs).toEqual([{ verb: 'say', text: 'hi' }, { verb: 'hangup' }]);
  });

  it('sends a hook to the URL resolved against the app, with the payload merged over the attributes; its verbs replace', async () => {
    const { url, seen } = await app((req, res) => {
      if (req.path === '/app/incoming') return json(res, new WebhookResponse().gather({ actionHook: '/gather-result' }));
      json(res, new WebhookResponse().say({ text: 'You said hello' }).hangup());
    });
    const channel = openAppChannel({ url: `${url}/app/incoming`, callSid: 'call-1' });
    await channel.start(ATTRIBUTES);
    const payload = { reason: 'speechDetected', call_status: 'in-progress', speech: { is_final: true, alternatives: [{ transcript: 'hello', confidence: 0.9 }] } };
    const verbs = await channel.hook('/gather-result', payload);
    expect(seen[1]).toMatchObject({ method: 'POST', path: '/gather-result', body: { ...ATTRIBUTES, ...payload } });
    expect((seen[1]!.body as Record<string, unknown>).call_status).toBe('in-progress');
    expect(verbs).toEqual([{ verb: 'say', text: 'You said hello' }, { verb: 'hangup' }]);
  });

  it('takes a hook object with its method, and a path relative to the app URL', async () => {
    const { url, seen } = await app((req, res) => (req.path === '/app/incoming' ? json(res, [{ verb: 'pause', length: 1 }]) : json(res, [])));
    const channel = openAppChannel({ url: `${url}/app/incoming`, callSid: 'call-1' });
    await channel.start(ATTRIBUTES);
    await channel.hook({ url: 'next?step=2', method: 'GET' }, { digits: '1' });
    // jambonz sends a GET hook without a body.
    expect(seen[1]).toMatchObject({ method: 'GET', path: '/app/next?step=2', body: undefined });
  });

  it('resolves undefined for a hook answered with no body, a non-JSON body or [] (the remaining verbs go on, as in jambonz)', async () => {
    const { url } = await app((req, res) => {
      if (req.path === '/') return json(res, [{ verb: 'say', text: 'x' }]);
      if (req.path === '/empty') return void res.writeHead(204).end();
      if (req.path === '/text') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
      json(res, new WebhookResponse());
    });
    const channel = openAppChannel({ url, callSid: 'call-1' });
    await channel.start(ATTRIBUTES);
    expect(await channel.hook('/empty', {})).toBeUndefined();
    expect(await channel.hook('/text', {})).toBeUndefined();
    expect(await channel.hook('/none', {})).toBeUndefined();
  });

  it('fails a first reply with no verbs: jambonz has no application to run', async () => {
    const { url } = await app((req, res) => (req.path === '/empty' ? json(res, []) : res.writeHead(204).end()));
    expect((await rejection(openAppChannel({ url: `${url}/empty`, callSid: 'c' }).start(ATTRIBUTES))).message).toMatch(/empty verb array/);
    expect((await rejection(openAppChannel({ url: `${url}/nobody`, callSid: 'c' }).start(ATTRIBUTES))).message).toMatch(/has no JSON verb array/);
  });

  it('posts call:status to the status URL when configured, and nowhere otherwise', async () => {
    const { url, seen } = await app((req, res) => (req.path === '/status' ? res.writeHead(204).end() : json(res, [{ verb: 'hangup' }])));
    const without = openAppChannel({ url, callSid: 'call-1' });
    await without.start(ATTRIBUTES);
    without.status({ call_status: 'in-progress', sip_status: 200 });
    const withStatus = openAppChannel({ url, callSid: 'call-1', statusUrl: '/status' });
    await withStatus.start(ATTRIBUTES);
    withStatus.status({ call_status: 'completed', sip_status: 200 });
    await expect.poll(() => seen.filter((s) => s.path === '/status').length).toBe(1);
    expect(seen.map((s) => s.path)).toEqual(['/', '/', '/status']);
    expect(seen[2]!.body).toEqual({ ...ATTRIBUTES, call_status: 'completed', sip_status: 200 });
  });

  it('the last status (completed, sent as the call closes) is not cut short by close(), which waits for it', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const { url, seen } = await app((req, res) => (req.path === '/status' ? void held.then(() => res.writeHead(204).end()) : json(res, [{ verb: 'hangup' }])));
    const channel = openAppChannel({ url, callSid: 'call-1', statusUrl: '/status' });
    await channel.start(ATTRIBUTES);
    channel.status({ call_status: 'completed' });
    let closed = false;
    const closing = channel.close().then(() => (closed = true));
    await expect.poll(() => seen.filter((s) => s.path === '/status').length).toBe(1);
    expect(closed).toBe(false);
    release();
    await closing;
    expect(seen.at(-1)!.body).toMatchObject({ call_status: 'completed' });
  });

  it('sends Basic and Bearer credentials on every request to the app, none to another origin', async () => {
    const other = await app((_req, res) => res.writeHead(204).end());
    const { url, seen } = await app((req, res) => (req.path === '/' ? json(res, [{ verb: 'pause', length: 1 }]) : res.writeHead(204).end()));
    const basic = openAppChannel({ url, callSid: 'c', auth: { username: 'jam', password: 's3cret' }, statusUrl: '/status' });
    await basic.start(ATTRIBUTES);
    await basic.hook('/hook', {});
    basic.status({ call_status: 'completed' });
    await expect.poll(() => seen.length).toBe(3);
    const expected = `Basic ${Buffer.from('jam:s3cret').toString('base64')}`;
    expect(seen.map((s) => s.headers.authorization)).toEqual([expected, expected, expected]);

    const bearer = openAppChannel({ url, callSid: 'c', auth: { bearer: 'tok-1' } });
    await bearer.start(ATTRIBUTES);
    await bearer.hook('/hook', {});
    await bearer.hook(`${other.url}/elsewhere`, {});
    expect(seen.slice(3).map((s) => s.headers.authorization)).toEqual(['Bearer tok-1', 'Bearer tok-1']);
    expect(other.seen).toHaveLength(1);
    expect(other.seen[0]!.headers.authorization).toBeUndefined();
  });

  it('fails an app that refuses (HTTP 500), naming the status', async () => {
    const { url } = await app((_req, res) => res.writeHead(500).end('boom'));
    const err = await rejection(openAppChannel({ url, callSid: 'c' }).start(ATTRIBUTES));
    expect(err.message).toMatch(/session:new .*refused: HTTP 500/);
    expect(err.retryable).toBe(true);
  });

  it('fails an app that never answers: timed out', async () => {
    const { url } = await app(() => undefined);
    const err = await rejection(openAppChannel({ url, callSid: 'c', timeoutMs: 200 }).start(ATTRIBUTES));
    expect(err.message).toMatch(/session:new .*timed out after 200 ms/);
  });

  it('fails an app that cannot be reached', async () => {
    const { url } = await app(() => undefined);
    await new Promise((r) => servers.pop()!.close(r));
    expect((await rejection(openAppChannel({ url, callSid: 'c' }).start(ATTRIBUTES))).message).toMatch(/session:new .*failed: .*ECONNREFUSED/);
  });

  it('fails a reply that is not an array, or not JSON, saying which', async () => {
    const { url } = await app((req, res) => {
      if (req.path === '/object') return json(res, { verb: 'say', text: 'hi' });
      if (req.path === '/broken') return void res.writeHead(200, { 'content-type': 'application/json' }).end('[{"verb": "say",');
      if (req.path === '/noverb') return json(res, [{ text: 'hi', loop: 1 }]);
      json(res, [{ verb: 'pause', length: 1 }]);
    });
    expect((await rejection(openAppChannel({ url: `${url}/object`, callSid: 'c' }).start(ATTRIBUTES))).message).toMatch(/reply to session:new is not an array of verbs/);
    expect((await rejection(openAppChannel({ url: `${url}/broken`, callSid: 'c' }).start(ATTRIBUTES))).message).toMatch(/the reply is not JSON/);
    const channel = openAppChannel({ url, callSid: 'c' });
    await channel.start(ATTRIBUTES);
    expect((await rejection(channel.hook('/object', {}))).message).toMatch(/reply to hook \/object is not an array of verbs/);
    expect((await rejection(channel.hook('/noverb', {}))).message).toMatch(/entry 0 has no "verb" property/);
  });

  it('logs error() (webhook apps have no error channel), never fires onCommand, and rejects after close', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, cb) => (lines.push(chunk.toString()), cb()) }));
    const { url, seen } = await app((_req, res) => json(res, [{ verb: 'pause', length: 1 }]));
    const channel = openAppChannel({ url, callSid: 'call-1' }, { logger });
    const commands: unknown[] = [];
    channel.onCommand((c) => commands.push(c));
    await channel.start(ATTRIBUTES);
    channel.error('invalid verb', { verb: 'gather' });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ appError: 'invalid verb', verb: 'gather', call_sid: 'call-1' });
    await channel.close();
    await channel.close();
    expect((await rejection(channel.hook('/x', {}))).message).toMatch(/closed/);
    expect(seen).toHaveLength(1);
    expect(commands).toEqual([]);
  });
});
