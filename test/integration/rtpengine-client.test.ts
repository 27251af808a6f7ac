/**
 * RtpengineClient and the daemon supervisor against the real rtpengine 10.5 (userspace, loopback).
 * Error texts asserted here are rtpengine's own, as 10.5 words them.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RtpengineClient, RtpengineError } from '../../src/media/rtpengine/client.js';
import { startRtpengine, type RtpengineDaemon } from '../../src/media/rtpengine/daemon.js';
import { rtpPortRange, startTestRtpengine, withRtpengine, type TestPortRanges } from '../support/rtpengine.js';

function sdp(port: number, direction: 'sendrecv' | 'recvonly', session = 1): string {
  return [
    'v=0',
    `o=- ${session} 1 IN IP4 127.0.0.1`,
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${port} RTP/AVP 0 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-15',
    `a=${direction}`,
    '',
  ].join('\r\n');
}

/** The port of the first m=audio line. */
function audioPort(body: string): number {
  const match = /^m=audio (\d+) /m.exec(body);
  if (!match?.[1]) throw new Error(`no m=audio line in:\n${body}`);
  return Number(match[1]);
}

/** Alive and not a zombie (an orphan's zombie lingers where PID 1 does not reap). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

describe('RtpengineClient against rtpengine', () => {
  const rtpe = withRtpengine();
  const callId = `wl-it-${randomUUID()}`;
  const caller = 'caller-tag';
  const callee = 'callee-tag';
  const fork = 'wl-fork-caller';

  const inRange = (port: number): boolean => port >= rtpe.daemon.portMin && port <= rtpe.daemon.portMax;

  it('answers ping', async () => {
    await expect(rtpe.client.ping()).resolves.toEqual({ result: 'pong' });
  });

  it('anchors a call: offer and answer return SDPs on 127.0.0.1 with ports from the range', async () => {
    const { gateway } = rtpe.ports;
    const offer = await rtpe.client.offer({
      'call-id': callId,
      'from-tag': caller,
      sdp: sdp(gateway.min, 'sendrecv'),
      replace: ['origin', 'session-connection'],
      ICE: 'remove',
      'transport-protocol': 'RTP/AVP',
    });
    expect(offer.result).toBe('ok');
    expect(offer.sdp).toContain('c=IN IP4 127.0.0.1');
    expect(inRange(audioPort(offer.sdp))).toBe(true);
    expect(offer.sdp).not.toMatch(/a=(ice-ufrag|candidate)/);

    const answer = await rtpe.client.answer({
      'call-id': callId,
      'from-tag': caller,
      'to-tag': callee,
      sdp: sdp(gateway.min + 2, 'sendrecv', 2),
      replace: ['origin', 'session-connection'],
      ICE: 'remove',
      'transport-protocol': 'RTP/AVP',
    });
    expect(answer.sdp).toContain('c=IN IP4 127.0.0.1');
    expect(inRange(audioPort(answer.sdp))).toBe(true);
    expect(audioPort(answer.sdp)).not.toBe(audioPort(offer.sdp));
  });

  it('forks the caller: subscribe request gives a sendonly SDP, subscribe answer accepts our recvonly one', async () => {
    const request = await rtpe.client.subscribeRequest({ 'call-id': callId, 'from-tag': caller, 'to-tag': fork });
    expect(request['to-tag']).toBe(fork);
    expect(request['from-tags']).toEqual([caller]);
    expect(request.sdp).toContain('a=sendonly');
    expect(inRange(audioPort(request.sdp))).toBe(true);

    // It must accept every codec offered (telephone-event too) unless 'allow transcoding' is given.
    const answer = await rtpe.client.subscribeAnswer({
      'call-id': callId,
      'to-tag': fork,
      sdp: sdp(rtpe.ports.gateway.min + 10, 'recvonly', 3),
    });
    expect(answer.result).toBe('ok');
  });

  it('query shows the call with both parties and the subscription', async () => {
    const query = await rtpe.client.query({ 'call-id': callId });
    expect(Object.keys(query.tags).sort()).toEqual([callee, caller, fork].sort());
    expect(query.tags[caller]?.subscribers).toContainEqual({ tag: fork, type: 'pub/sub' });
    expect(query.totals?.RTP.packets).toBe(0);
    const list = await rtpe.client.list();
    expect(list.calls).toContain(callId);
  });

  it("rejects operations on a call rtpengine does not know with rtpengine's error-reason", async () => {
    const unknown = `wl-missing-${randomUUID()}`;
    const query = await rtpe.client.query({ 'call-id': unknown }).catch((e: unknown) => e);
    expect(query).toBeInstanceOf(RtpengineError);
    expect(query).toMatchObject({ code: 'RTPENGINE_ERROR', command: 'query', errorReason: 'Unknown call-id' });

    await expect(rtpe.client.subscribeRequest({ 'call-id': unknown, 'from-tag': caller })).rejects.toMatchObject({
      errorReason: 'Unknown call-ID',
    });
    await expect(rtpe.client.subscribeRequest({ 'call-id': callId, 'from-tag': 'no-such-tag' })).rejects.toMatchObject({
      errorReason: 'From-tag given, but no such tag exists',
    });
    // Deleting an unknown call is not an error without the 'fatal' flag, only a warning.
    await expect(rtpe.client.delete({ 'call-id': unknown })).resolves.toMatchObject({
      result: 'ok',
      warning: expect.stringContaining('not found'),
    });
    await expect(rtpe.client.delete({ 'call-id': unknown, flags: ['fatal'] })).rejects.toBeInstanceOf(RtpengineError);
  });

  it('delete frees the call: no session left', async () => {
    await rtpe.client.unsubscribe({ 'call-id': callId, 'to-tag': fork });
    await expect(rtpe.client.delete({ 'call-id': callId })).resolves.toMatchObject({ result: 'ok' });
    expect(await rtpe.daemon.numSessions()).toBe(0);
    expect((await rtpe.client.list()).calls).not.toContain(callId);
    expect(rtpe.client.counters).toMatchObject({ timeouts: 0, lateReplies: 0, malformedReplies: 0 });
  });
});

describe('rtpengine daemon supervisor', () => {
  let ports: TestPortRanges;
  const started: RtpengineDaemon[] = [];
  const subRange = (i: number): [number, number] => [ports.rtpengine.min + i * 100, ports.rtpengine.min + i * 100 + 99];

  beforeAll(() => {
    ports = rtpPortRange();
  });

  afterAll(async () => {
    await Promise.all(started.map((d) => d.stop()));
    ports?.release();
  });

  it('stop() ends the process, and is idempotent', async () => {
    const daemon = await startTestRtpengine(...subRange(0));
    started.push(daemon);
    expect(isAlive(daemon.pid)).toBe(true);
    expect(daemon.stderrTail()).toContain('Startup complete');
    expect(await daemon.numSessions()).toBe(0);
    await daemon.stop();
    await daemon.stop();
    expect(daemon.exited).toBe(true);
    expect(isAlive(daemon.pid)).toBe(false);
  });

  it('reports a missing binary clearly', async () => {
    await expect(
      startRtpengine({ binary: '/nonexistent/rtpengine', portMin: subRange(1)[0], portMax: subRange(1)[1] }),
    ).rejects.toMatchObject({ code: 'RTPENGINE_SPAWN', message: expect.stringContaining('RTPENGINE_BIN') });
  });

  it('fails with RTPENGINE_SPAWN when rtpengine exits during start-up', async () => {
    // rtpengine 10.5 exits with 255 on an unknown option, without printing anything.
    await expect(startTestRtpengine(...subRange(1), { extraArgs: ['--no-such-option'] })).rejects.toMatchObject({
      code: 'RTPENGINE_SPAWN',
      message: expect.stringContaining('exited during start-up (code 255'),
    });
  });

  it('gives up when ng never answers, and kills what it started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wl-rtpe-mute-'));
    try {
      // A stand-in that starts but never listens: records its pid, then sleeps.
      const fake = join(dir, 'mute-rtpengine');
      writeFileSync(fake, `#!/bin/sh\necho "mute daemon up"\necho $$ > ${dir}/pid\nexec sleep 30\n`, { mode: 0o755 });
      const started = Date.now();
      const error = await startRtpengine({ binary: fake, portMin: subRange(1)[0], portMax: subRange(1)[1], startTimeoutMs: 400 }).catch(
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'RTPENGINE_SPAWN', message: expect.stringContaining('no ng pong within 400 ms') });
      expect((error as Error).message).toContain('mute daemon up');
      expect(Date.now() - started).toBeLessThan(5000);
      expect(isAlive(Number(readFileSync(join(dir, 'pid'), 'utf8')))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to share an ng port with another rtpengine (10.5 would silently share it)', async () => {
    const first = await startTestRtpengine(...subRange(1));
    started.push(first);
    const second = startTestRtpengine(...subRange(2), { ngPort: first.ngPort });
    await expect(second).rejects.toMatchObject({ code: 'RTPENGINE_SPAWN', message: expect.stringContaining('shared') });
    const client = new RtpengineClient({ host: first.ngHost, port: first.ngPort });
    try {
      await expect(client.ping()).resolves.toEqual({ result: 'pong' });
    } finally {
      await client.close();
    }
  });

  it('does not outlive a parent process that is killed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wl-rtpe-parent-'));
    try {
      const script = join(dir, 'parent.mts');
      const daemonModule = resolve('src/media/rtpengine/daemon.ts');
      const [min, max] = subRange(2);
      writeFileSync(
        script,
        `import { startRtpengine } from ${JSON.stringify(daemonModule)};\n` +
          `const d = await startRtpengine({ portMin: ${min}, portMax: ${max}, workDir: ${JSON.stringify(dir)} });\n` +
          `console.log(JSON.stringify({ pid: d.pid }));\n` +
          `setInterval(() => {}, 1000);\n`,
      );
      const parent = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const pid = await new Promise<number>((resolvePid, reject) => {
        let out = '';
        parent.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const match = /\{"pid":(\d+)\}/.exec(out);
          if (match?.[1]) resolvePid(Number(match[1]));
        });
        parent.once('exit', (code) => reject(new Error(`parent exited early (${code})`)));
      });
      expect(isAlive(pid)).toBe(true);
      parent.kill('SIGKILL');
      expect(await waitUntil(() => !isAlive(pid), 5000)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
