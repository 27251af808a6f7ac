/**
 * The WebSocket transport against applications written with jambonz's own application library,
 * `@jambonz/node-client-ws`, on a local http server: what they receive and answer is what they
 * would get from jambonz's feature-server.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import nodeClientWs, { type Session } from '@jambonz/node-client-ws';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppCommand, CallAttributes } from '../call/app-channel.js';
import { WhisperlineError } from '../errors.js';
import { openAppChannel, type JambonzCommand } from './index.js';

const ATTRIBUTES: CallAttributes = {
  call_sid: 'call-ws-1',
  direction: 'inbound',
  from: '+15550001',
  to: '+15550002',
  call_id: 'xyz@10.0.0.1',
  sip_status: 100,
  call_status: 'trying',
  originating_sip_ip: '10.0.0.1',
};

const servers: Server[] = [];
const sockets = new Set<Socket>();
afterEach(async () => {
  // Upgraded (and never-answered upgrade) sockets are not the http server's connections any more.
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

function track(server: Server): Server {
  servers.push(server);
  server.on('connection', (socket: Socket) => sockets.add(socket));
  return server;
}

interface App {
  readonly url: string;
  /** The upgrade requests the app received (headers included). */
  readonly upgrades: IncomingMessage[];
  /** Resolves with the next session. */
  readonly session: Promise<Session>;
}

/** A node-client-ws application serving `path` on 127.0.0.1; `onSession` runs for each new call. */
async function app(path: string, onSession: (session: Session) => void): Promise<App> {
  const server = track(createServer());
  const upgrades: IncomingMessage[] = [];
  const makeService = nodeClientWs.createEndpoint({
    server,
    middlewares: [
      (req, _res, next) => {
        upgrades.push(req as IncomingMessage);
        next();
      },
    ],
  });
  const service = makeService({ path });
  const session = new Promise<Session>((resolve) => {
    service.on('session:new', (s) => {
      onSession(s);
      resolve(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}${path}`, upgrades, session };
}

const next = <T>(session: Session, event: string): Promise<T> => new Promise((resolve) => session.once(event, resolve));

async function rejection(p: Promise<unknown>): Promise<WhisperlineError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WhisperlineError);
  expect((err as WhisperlineError).code).toBe('APP_FAILED');
  return err as WhisperlineError;
}

describe('WebSocket application channel (ws.jambonz.org)', () => {
  it('sends session:new with the attributes and returns the ack verbs normalised', async () => {
    const a = await app('/hello', (session) => {
      session.say({ text: 'Hello from a ws app' }).gather({ input: ['speech'], actionHook: '/transcript', timeout: 15 }).send();
    });
    const channel = openAppChannel({ url: a.url, callSid: ATTRIBUTES.call_sid });
    const verbs = await channel.start(ATTRIBUTES);
    const session = await a.session;
    expect(session.call_sid).toBe('call-ws-1');
    // node-client-ws keeps the attributes less sip_status and call_status, and copies each onto the session.
    expect(session.data).toMatchObject({ direction: 'inbound', from: '+15550001', to: '+15550002', call_id: 'xyz@10.0.0.1' });
    expect(session.call_status).toBe('trying');
    expect((session as unknown as { ws: { protocol: string } }).ws.protocol).toBe('ws.jambonz.org');
    expect(verbs).toEqual([
      { verb: 'say', text: 'Hello from a ws app' },
      { verb: 'gather', input: ['speech'], actionHook: '/transcript', timeout: 15 },
    ]);
    await channel.close();
  });

  it('round-trips a verb:hook: the app sees the payload, its reply verbs replace; a bare reply() is undefined', async () => {
    let seen: Record<string, unknown> | undefined;
    const a = await app('/hooks', (session) => {
      session.on('/transcript', (evt: Record<string, unknown>) => {
        seen = evt;
        session.say({ text: 'You said hello' }).hangup().reply();
      });
      session.on('/nothing', () => session.reply());
      session.gather({ actionHook: '/transcript' }).send();
    });
    const channel = openAppChannel({ url: a.url, callSid: ATTRIBUTES.call_sid });
    await channel.start(ATTRIBUTES);
    const payload = { reason: 'speechDetected', speech: { is_final: true, alternatives: [{ transcript: 'hello', confidence: 0.9 }] } };
    const verbs = await channel.hook('/transcript', payload);
    expect(seen).toEqual({ ...ATTRIBUTES, ...payload });
    expect(verbs).toEqual([{ verb: 'say', text: 'You said hello' }, { verb: 'hangup' }]);
    expect(await channel.hook({ url: '/nothing' }, {})).toBeUndefined();
    // A hook the app has no listener for: node-client-ws acks it empty, so the remaining verbs go on.
    expect(await channel.hook('/unheard', {})).toBeUndefined();
    await channel.close();
  });

  it('sends call:status to the app', async () => {
    const a = await app('/status', (session) => session.pause({ length: 1 }).send());
    const channel = openAppChannel({ url: a.url, callSid: ATTRIBUTES.call_sid });
    await channel.start(ATTRIBUTES);
    const session = await a.session;
    const status = next<Record<string, unknown>>(session, 'call:status');
    channel.status({ call_status: 'in-progress', sip_status: 200 });
    expect(await status).toEqual({ ...ATTRIBUTES, call_status: 'in-progress', sip_status: 200 });
    await channel.close();
  });

  it('delivers a redirect pushed by the app to onCommand with normalised verbs and queueCommand', async () => {
    const a = await app('/push', (session) => session.pause({ length: 5 }).send());
    const channel = openAppChannel({ url: a.url, callSid: ATTRIBUTES.call_sid });
    const commands: AppCommand[] = [];
    channel.onCommand((c) => commands.push(c));
    await channel.start(ATTRIBUTES);
    const session = await a.session;
    // After the first ack, send() is a `redirect` command: replace the running verbs...
    session.say({ text: 'Sorry, an update' }).hangup().send();
    // ...or, with execImmediate false, queue them after the running ones.
    session.say({ text: 'and then this' }).send({ execImmediate: false });
    await expect.poll(() => commands.length).toBe(2);
    expect(commands[0]).toEqual({ command: 'redirect', queueCommand: false, data: [{ verb: 'say', text: 'Sorry, an update' }, { verb: 'hangup' }] } satisfies JambonzCommand);
    expect(commands[1]).toMatchObject({ command: 'redirect', queueCommand: true, data: [{ verb: 'say', text: 'and then this' }] });
    await channel.close();
  });

  it('tells the app with jambonz:error, and answers an invalid message with one', async () => {
    const a = await app('/err', (session) => session.pause({ length: 1 }).send());
    const channel = openAppChannel({ url: a.url, callSid: ATTRIBUTES.call_sid });
    const commands: AppCommand[] = [];
    channel.onCommand((c) => commands.push(c));
    await channel.start(ATTRIBUTES);
    const session = await a.session;
    const error = next<Record<string, unknown>>(session, 'jambonz:error');
    channel.error('invalid verb', { details: 'gather: "timeout" must be a number', verb: 'gather' });
    expect(await error).toEqual({ msg: 'invalid verb', details: 'gather: "timeout" must be a number', verb: 'gather' });

    const invalid = next<Record<string, unknown>>(session, 'jambonz:error');
    session.sendCommand('redirect', { say: 'not verbs' });
    expect(await invalid).toMatchObject({ msg: 'InvalidMessage', details: expect.stringMatching(/redirect command is not an array of verbs/) });
    expect(commands).toEqual([]);
    await channel.close();
  });

  it('sends Basic and Bearer credentials on the upgrade', async () => {
    const a = await app('/auth', (session) => session.pause({ length: 1 }).send());
    const basic = openAppChannel({ url: a.url, callSid: 'c1', auth: { username: 'jam', password: 's3cret' } });
    await basic.start(ATTRIBUTES);
    const bearer = openAppChannel({ url: a.url, callSid: 'c2', auth: { bearer: 'tok-1' } });
    await bearer.start(ATTRIBUTES);
    expect(a.upgrades.map((r) => r.headers.authorization)).toEqual([`Basic ${Buffer.from('jam:s3cret').toString('base64')}`, 'Bearer tok-1']);
    expect(a.upgrades.map((r) => r.headers['sec-websocket-protocol'])).toEqual(['ws.jambonz.org', 'ws.jambonz.org']);
    await Promise.all([basic.close(), bearer.close()]);
  });

  it('fails an app that refuses the upgrade, naming the status', async () => {
    const a = await app('/served', () => undefined);
    const channel = openAppChannel({ url: a.url.replace('/served', '/other'), callSid: 'c' });
    expect((await rejection(channel.start(ATTRIBUTES))).message).toMatch(/refused the WebSocket upgrade: HTTP 404/);
    // The channel is unusable afterwards: a hook rejects at once.
    expect((await rejection(channel.hook('/x', {}))).message).toMatch(/HTTP 404/);
  });

  it('fails an app that never completes the handshake, and one that never acks: timed out', async () => {
    const silent = track(createServer());
    silent.on('upgrade', () => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const url = `ws://127.0.0.1:${(silent.address() as AddressInfo).port}/`;
    expect((await rejection(openAppChannel({ url, callSid: 'c', timeoutMs: 200 }).start(ATTRIBUTES))).message).toMatch(/connecting to .* timed out/);

    const mute = await app('/mute', () => undefined);
    const channel = openAppChannel({ url: mute.url, callSid: 'c', timeoutMs: 200 });
    expect((await rejection(channel.start(ATTRIBUTES))).message).toMatch(/session:new: the application timed out \(no ack in 200 ms\)/);
    await channel.close();
  });

  it('fails an ack whose data are not a verb array, saying so', async () => {
    const a = await app('/object', (session) => {
      // What node-client-ws would never send; a hand-rolled app might.
      (session as unknown as { ws: { send(s: string): void } }).ws.send(JSON.stringify({ type: 'ack', msgid: session.msgid, data: { verb: 'say', text: 'hi' } }));
    });
    const channel = openAppChannel({ url: a.url, callSid: 'c' });
    expect((await rejection(channel.start(ATTRIBUTES))).message).toMatch(/ack of session:new is not an array of verbs \(got an object\)/);
    await channel.close();
  });

  it('an app that closes the socket with 1000 mid-call is done with it: what waits is rejected, and every later call at once', async () => {
    const a = await app('/hangs-up', (session) => {
      session.on('/close-me', () => (session as unknown as { ws: { close(code: number): void } }).ws.close(1000));
      session.pause({ length: 1 }).send();
    });
    const channel = openAppChannel({ url: a.url, callSid: 'c' });
    await channel.start(ATTRIBUTES);
    expect((await rejection(channel.hook('/close-me', {}))).message).toMatch(/verb:hook \/close-me: the application closed the socket \(1000/);
    expect((await rejection(channel.hook('/again', {}))).message).toMatch(/the application closed the socket/);
    channel.status({ call_status: 'completed' });
    await channel.close();
  });

  it('reconnects a dropped socket as jambonz does: session:reconnect with the attributes, the hook in flight sent again and answered, a status sent meanwhile delivered', async () => {
    const server = track(createServer());
    const service = nodeClientWs.createEndpoint({ server })({ path: '/flaky' });
    const reconnects: Session[] = [];
    const statuses: unknown[] = [];
    let drops = 0;
    service.on('session:new', (session) => {
      // The first hook's socket drops before the app answers (a network blip, an app restart).
      session.on('/menu', () => {
        drops++;
        (session as unknown as { ws: { terminate(): void } }).ws.terminate();
      });
      session.pause({ length: 1 }).send();
    });
    (service as unknown as { on(e: 'session:reconnect', l: (s: Session) => void): void }).on('session:reconnect', (session) => {
      reconnects.push(session);
      session.on('/menu', (evt: Record<string, unknown>) => session.say({ text: `again ${String(evt.digits)}` }).reply());
      session.on('call:status', (evt: Record<string, unknown>) => statuses.push(evt.call_status));
      session.reply();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/flaky`;
    const channel = openAppChannel({ url, callSid: ATTRIBUTES.call_sid }, { reconnectBackoffMs: 50 });
    await channel.start(ATTRIBUTES);
    const verbs = channel.hook('/menu', { digits: '1' });
    // Once the socket is gone, a status waits for the new one.
    await expect.poll(() => drops).toBe(1);
    channel.status({ call_status: 'in-progress' });
    expect(await verbs).toEqual([{ verb: 'say', text: 'again 1' }]);
    expect(reconnects).toHaveLength(1);
    expect(reconnects[0]!.call_sid).toBe(ATTRIBUTES.call_sid);
    expect(reconnects[0]!.data).toMatchObject({ from: '+15550001', call_id: 'xyz@10.0.0.1' });
    await expect.poll(() => statuses).toEqual(['in-progress']);
    await channel.close();
  });

  it('gives up after maxReconnects when the app is gone: what waits is rejected saying so', async () => {
    const a = await app('/gone', (session) => session.pause({ length: 1 }).send());
    const channel = openAppChannel({ url: a.url, callSid: 'c' }, { reconnectBackoffMs: 20, maxReconnects: 2 });
    await channel.start(ATTRIBUTES);
    // The application's host goes away: its server closes and its sockets are cut.
    for (const s of servers.splice(0)) {
      s.close();
      s.closeAllConnections();
    }
    for (const socket of sockets) socket.destroy();
    expect((await rejection(channel.hook('/x', {}))).message).toMatch(/2 reconnects failed/);
    expect((await rejection(channel.hook('/y', {}))).message).toMatch(/reconnects failed/);
    await channel.close();
  });

  it('closes with 1000, idempotently; later calls reject', async () => {
    const a = await app('/bye', (session) => session.pause({ length: 1 }).send());
    const channel = openAppChannel({ url: a.url, callSid: 'c' });
    await channel.start(ATTRIBUTES);
    const session = await a.session;
    const closed = new Promise<number>((resolve) => session.once('close', (code: number) => resolve(code)));
    await Promise.all([channel.close(), channel.close()]);
    expect(await closed).toBe(1000);
    await channel.close();
    expect((await rejection(channel.hook('/x', {}))).message).toMatch(/closed/);
  });
});
