/**
 * RtpengineClient against a fake ng peer: a UDP socket in the test that decodes requests and
 * answers however the test tells it to (out of order, late, never, with garbage).
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WhisperlineError } from '../../errors.js';
import { decodeBencode, encodeBencode, isBencodeDict, type BencodeDict, type BencodeInput } from './bencode.js';
import {
  MAX_NG_DATAGRAM_BYTES,
  RtpengineClient,
  RtpengineError,
  RtpengineTimeoutError,
  type RtpengineLogger,
} from './client.js';

interface ReceivedRequest {
  readonly cookie: string;
  readonly body: BencodeDict;
  readonly raw: Buffer;
  readonly port: number;
  readonly address: string;
}

/** A stand-in for rtpengine's ng listener. */
class FakeNgPeer {
  readonly socket = dgram.createSocket('udp4');
  readonly requests: ReceivedRequest[] = [];
  private waiters: (() => void)[] = [];

  async start(): Promise<number> {
    this.socket.on('message', (raw, rinfo) => {
      const space = raw.indexOf(0x20);
      const body = decodeBencode(raw.subarray(space + 1), { binaryKeys: new Set(['blob']) });
      if (!isBencodeDict(body)) throw new Error('fake peer: request is not a dictionary');
      this.requests.push({ cookie: raw.toString('latin1', 0, space), body, raw, port: rinfo.port, address: rinfo.address });
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.socket.bind(0, '127.0.0.1');
    await once(this.socket, 'listening');
    return this.socket.address().port;
  }

  /** Resolves once `count` requests (retransmissions included) have arrived. */
  async received(count: number): Promise<ReceivedRequest[]> {
    while (this.requests.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.requests;
  }

  reply(to: ReceivedRequest, body: BencodeInput, cookie = to.cookie): void {
    this.sendRaw(to, Buffer.concat([Buffer.from(`${cookie} `), encodeBencode(body)]));
  }

  sendRaw(to: ReceivedRequest, datagram: Buffer): void {
    this.socket.send(datagram, to.port, to.address);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n';

let peer: FakeNgPeer;
let client: RtpengineClient;
let debugLines: string[];

function newClient(options: { timeoutMs?: number; retransmits?: number } = {}): RtpengineClient {
  const logger: RtpengineLogger = {
    debug: (_obj, msg) => debugLines.push(msg),
    warn: (_obj, msg) => debugLines.push(msg),
  };
  return new RtpengineClient({ host: '127.0.0.1', port, timeoutMs: 1000, retransmits: 0, logger, ...options });
}

let port: number;

beforeEach(async () => {
  debugLines = [];
  peer = new FakeNgPeer();
  port = await peer.start();
  client = newClient();
});

afterEach(async () => {
  await client.close();
  await peer.close();
});

/** Waits until the client has processed whatever datagrams are in flight on loopback. */
async function settleLoopback(): Promise<void> {
  // A ping answered by the peer is handled after any datagram the peer sent before it.
  const ping = client.ping();
  const requests = await peer.received(peer.requests.length + 1);
  peer.reply(requests.at(-1)!, { result: 'pong' });
  await ping;
}

describe('RtpengineClient', () => {
  it('sends "cookie SP bencoded-dict" with the command and answers ping', async () => {
    const pong = client.ping();
    const [request] = await peer.received(1);
    expect(request!.raw.toString('latin1')).toBe(`${request!.cookie} d7:command4:pinge`);
    peer.reply(request!, { result: 'pong' });
    await expect(pong).resolves.toEqual({ result: 'pong' });
    expect(client.pendingCount).toBe(0);
  });

  it('takes replies from rtpengine\'s address only: a forged reply with the pending cookie from elsewhere is ignored', async () => {
    const pong = client.ping();
    const [request] = await peer.received(1);
    // Another socket on this host that learnt the cookie (it is on the wire) answers first.
    const forger = dgram.createSocket('udp4');
    forger.bind(0, '127.0.0.1');
    await once(forger, 'listening');
    forger.send(Buffer.concat([Buffer.from(`${request!.cookie} `), encodeBencode({ result: 'error', 'error-reason': 'forged' })]), request!.port, request!.address);
    await new Promise((r) => setTimeout(r, 50));
    expect(client.pendingCount).toBe(1);
    forger.close();
    peer.reply(request!, { result: 'pong' });
    await expect(pong).resolves.toEqual({ result: 'pong' });
    expect(request!.address).toBe('127.0.0.1');
  });

  it('stays usable when rtpengine is not listening for a while (port unreachable)', async () => {
    const gone = new FakeNgPeer();
    const goneAt = await gone.start();
    await gone.close();
    const lonely = new RtpengineClient({ host: '127.0.0.1', port: goneAt, timeoutMs: 300, retransmits: 2 });
    try {
      await expect(lonely.ping()).rejects.toMatchObject({ code: expect.stringMatching(/RTPENGINE_(TIMEOUT|UNREACHABLE)/) });
      expect(lonely.closed).toBe(false);
    } finally {
      await lonely.close();
    }
  });

  it('correlates replies that arrive out of order by cookie', async () => {
    const first = client.offer({ 'call-id': 'c1', 'from-tag': 'A', sdp: SDP, ICE: 'remove' });
    const second = client.offer({ 'call-id': 'c2', 'from-tag': 'A', sdp: SDP });
    const third = client.query({ 'call-id': 'c1' });
    const requests = await peer.received(3);
    expect(new Set(requests.map((r) => r.cookie)).size).toBe(3);
    expect(client.pendingCount).toBe(3);
    const byCall = (command: string, callId: string): ReceivedRequest =>
      requests.find((r) => r.body.command === command && r.body['call-id'] === callId)!;
    peer.reply(byCall('query', 'c1'), { result: 'ok', created: 1, tags: {} });
    peer.reply(byCall('offer', 'c2'), { result: 'ok', sdp: 'sdp-for-c2' });
    peer.reply(byCall('offer', 'c1'), { result: 'ok', sdp: 'sdp-for-c1' });
    await expect(first).resolves.toMatchObject({ sdp: 'sdp-for-c1' });
    await expect(second).resolves.toMatchObject({ sdp: 'sdp-for-c2' });
    await expect(third).resolves.toMatchObject({ created: 1, tags: {} });
    expect(byCall('offer', 'c1').body.ICE).toBe('remove');
    expect(client.pendingCount).toBe(0);
    expect(client.counters.sent).toBe(3);
  });

  it('times out, then ignores the late reply without throwing', async () => {
    await client.close();
    client = newClient({ timeoutMs: 100 });
    const started = Date.now();
    const query = client.query({ 'call-id': 'slow' });
    const [request] = await peer.received(1);
    const error = await query.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RtpengineTimeoutError);
    expect(error).toMatchObject({ code: 'RTPENGINE_TIMEOUT', retryable: true, command: 'query' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(client.pendingCount).toBe(0);

    peer.reply(request!, { result: 'ok', created: 1, tags: {} });
    await settleLoopback();
    expect(client.counters).toMatchObject({ timeouts: 1, lateReplies: 1 });
    expect(debugLines).toContain('rtpengine ng reply without pending request ignored');
  });

  it('ignores a reply whose cookie it never sent', async () => {
    const pong = client.ping();
    const [request] = await peer.received(1);
    peer.reply(request!, { result: 'ok', sdp: 'not yours' }, 'foreign_cookie');
    peer.reply(request!, { result: 'pong' });
    await expect(pong).resolves.toEqual({ result: 'pong' });
    expect(client.counters.lateReplies).toBe(1);
  });

  it('counts and ignores garbage datagrams', async () => {
    const pong = client.ping();
    const [request] = await peer.received(1);
    peer.sendRaw(request!, Buffer.from('no-space-at-all'));
    peer.sendRaw(request!, Buffer.from([0x20, 0xff, 0x00]));
    peer.sendRaw(request!, Buffer.alloc(0));
    peer.reply(request!, { result: 'pong' });
    await expect(pong).resolves.toEqual({ result: 'pong' });
    expect(client.counters.malformedReplies).toBe(3);
  });

  it('rejects the request whose correlated reply cannot be decoded', async () => {
    const offer = client.offer({ 'call-id': 'c', 'from-tag': 'A', sdp: SDP });
    const [request] = await peer.received(1);
    peer.sendRaw(request!, Buffer.from(`${request!.cookie} d6:result2:ok`)); // truncated dict
    await expect(offer).rejects.toMatchObject({ code: 'RTPENGINE_PROTOCOL' });
  });

  it('rejects a reply that lacks what the command promises', async () => {
    const offer = client.offer({ 'call-id': 'c', 'from-tag': 'A', sdp: SDP });
    const [request] = await peer.received(1);
    peer.reply(request!, { result: 'ok' });
    await expect(offer).rejects.toMatchObject({ code: 'RTPENGINE_PROTOCOL', message: expect.stringContaining('no "sdp"') });
  });

  it('turns result "error" into RtpengineError with error-reason and command', async () => {
    const subscribe = client.subscribeRequest({ 'call-id': 'nope', 'from-tag': 'A', 'to-tag': 'fork' });
    const [request] = await peer.received(1);
    expect(request!.body.command).toBe('subscribe request');
    peer.reply(request!, { result: 'error', 'error-reason': 'Unknown call-ID' });
    const error = await subscribe.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RtpengineError);
    expect(error).toBeInstanceOf(WhisperlineError);
    expect(error).toMatchObject({
      code: 'RTPENGINE_ERROR',
      errorReason: 'Unknown call-ID',
      command: 'subscribe request',
      retryable: false,
    });
    expect(client.counters.errors).toBe(1);
  });

  it('close() rejects everything pending with RTPENGINE_CLOSED and is idempotent', async () => {
    const a = client.ping();
    const b = client.delete({ 'call-id': 'c' });
    await peer.received(2);
    const closing = client.close();
    expect(client.close()).toBe(closing);
    await closing;
    await expect(a).rejects.toMatchObject({ code: 'RTPENGINE_CLOSED' });
    await expect(b).rejects.toMatchObject({ code: 'RTPENGINE_CLOSED' });
    expect(client.pendingCount).toBe(0);
    await expect(client.ping()).rejects.toMatchObject({ code: 'RTPENGINE_CLOSED' });
  });

  it('rejects a message over the UDP limit before sending it', async () => {
    const huge = client.offer({ 'call-id': 'c', 'from-tag': 'A', sdp: 'a'.repeat(MAX_NG_DATAGRAM_BYTES) });
    await expect(huge).rejects.toMatchObject({ code: 'RTPENGINE_PROTOCOL', message: expect.stringContaining('UDP limit') });
    expect(client.pendingCount).toBe(0);
    expect(client.counters.sent).toBe(0);
    await settleLoopback();
    expect(peer.requests).toHaveLength(1); // only the ping of settleLoopback
  });

  it('retransmits with the same cookie and accepts the reply to any copy', async () => {
    await client.close();
    client = newClient({ timeoutMs: 600, retransmits: 2 });
    const pong = client.ping();
    const requests = await peer.received(2);
    expect(requests[1]!.cookie).toBe(requests[0]!.cookie);
    expect(requests[1]!.raw.equals(requests[0]!.raw)).toBe(true);
    peer.reply(requests[1]!, { result: 'pong' });
    await expect(pong).resolves.toEqual({ result: 'pong' });
    expect(client.counters.retransmits).toBe(1);
  });

  it('gives up after the retransmissions with one timeout', async () => {
    await client.close();
    client = newClient({ timeoutMs: 150, retransmits: 2 });
    await expect(client.ping()).rejects.toBeInstanceOf(RtpengineTimeoutError);
    expect(peer.requests).toHaveLength(3);
    expect(client.counters).toMatchObject({ sent: 1, retransmits: 2, timeouts: 1 });
  });

  it('sends binary blobs byte-exact', async () => {
    const blob = Buffer.from([0x52, 0x49, 0x46, 0x46, 0x00, 0xff, 0x20, 0x0a]);
    const play = client.playMedia({ 'call-id': 'c', 'from-tag': 'A', blob, 'repeat-times': 2 });
    const [request] = await peer.received(1);
    expect(Buffer.isBuffer(request!.body.blob) && request!.body.blob.equals(blob)).toBe(true);
    peer.reply(request!, { result: 'ok', duration: 1500 });
    await expect(play).resolves.toMatchObject({ duration: 1500 });
  });

  it('maps each method to its ng command name', async () => {
    const calls: [Promise<unknown>, string][] = [
      [client.answer({ 'call-id': 'c', 'from-tag': 'A', 'to-tag': 'B', sdp: SDP }), 'answer'],
      [client.list({ limit: 5 }), 'list'],
      [client.subscribeAnswer({ 'call-id': 'c', 'to-tag': 'f', sdp: SDP }), 'subscribe answer'],
      [client.unsubscribe({ 'call-id': 'c', 'to-tag': 'f' }), 'unsubscribe'],
      [client.stopMedia({ 'call-id': 'c', 'from-tag': 'A' }), 'stop media'],
      [client.blockMedia({ 'call-id': 'c', 'from-tag': 'B' }), 'block media'],
      [client.unblockMedia({ 'call-id': 'c', 'from-tag': 'B' }), 'unblock media'],
      [client.statistics(), 'statistics'],
      [client.command('play DTMF', { 'call-id': 'c', 'from-tag': 'A', code: '5' }), 'play DTMF'],
    ];
    const requests = await peer.received(calls.length);
    expect(requests.map((r) => r.body.command)).toEqual(calls.map(([, command]) => command));
    for (const request of requests) {
      peer.reply(request, { result: 'ok', sdp: 'x', calls: [], statistics: {} });
    }
    await Promise.all(calls.map(([promise]) => promise));
  });

  it('accepts a pino logger', () => {
    const logger: RtpengineLogger = pino({ level: 'silent' });
    expect(logger).toBeDefined();
  });
});
