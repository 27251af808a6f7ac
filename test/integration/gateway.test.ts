/** The composition root in embedded mode: it launches rtpengine, reaches it, and takes it down. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { startGateway } from '../../src/main.js';
import { WebSocket } from 'ws';
import type { CallEvent } from '../../src/transcripts/events.js';
import { freeUdpPort, waitFor } from '../support/net.js';
import { speechFixture } from '../support/speech.js';
import { rtpPortRange } from '../support/rtpengine.js';
import { ensureTestWhisper } from '../support/whisper.js';


const ports = rtpPortRange();
const storeDir = mkdtempSync(join(tmpdir(), 'wl-gateway-'));
afterAll(() => {
  ports.release();
  rmSync(storeDir, { recursive: true, force: true });
});

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Embedded mode on this test's port ranges, the tiny model and a store file in the test's folder. */
async function embeddedEnv(storeFile: string): Promise<Record<string, string>> {
  const whisper = await ensureTestWhisper();
  return {
    WHISPERLINE_ASR_MODEL: whisper.tinyModel,
    WHISPERLINE_RTPENGINE_PORT: String(await freeUdpPort()),
    WHISPERLINE_RTPENGINE_PORT_MIN: String(ports.rtpengine.min),
    WHISPERLINE_RTPENGINE_PORT_MAX: String(ports.rtpengine.max),
    WHISPERLINE_MEDIA_PORT_MIN: String(ports.gateway.min),
    WHISPERLINE_MEDIA_PORT_MAX: String(ports.gateway.max),
    WHISPERLINE_LOG_LEVEL: 'silent',
    WHISPERLINE_HTTP_PORT: '0',
    WHISPERLINE_STORE_PATH: join(storeDir, storeFile),
  };
}

describe('startGateway', () => {
  it('launches rtpengine and the speech path in embedded mode, and stops everything on close', async () => {
    const config = loadConfig({ env: await embeddedEnv('transcripts.db') });
    const gateway = await startGateway(config, createLogger(config.log));
    const pid = gateway.rtpengineDaemon!.pid;
    expect(isAlive(pid)).toBe(true);
    await expect(gateway.rtpengine.ping()).resolves.toEqual({ result: 'pong' });
    // /health says what is missing: no drachtio-server runs here, so SIP is not connected.
    const health = await fetch(`http://127.0.0.1:${gateway.http.port}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'degraded', sip: { drachtio: 'connecting', calls: 0 } });
    const metrics = await fetch(`http://127.0.0.1:${gateway.http.port}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/^whisperline_calls_live 0$/m);
    expect(text).toMatch(/^whisperline_asr_queue_depth 0$/m);
    expect(text).toMatch(/^whisperline_feed_clients 0$/m);
    // The supervisor page is served; the history API wants the token made at start.
    const page = await fetch(`http://127.0.0.1:${gateway.http.port}/supervisor/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    expect((await fetch(`http://127.0.0.1:${gateway.http.port}/v1/calls`)).status).toBe(401);
    const calls = await fetch(`http://127.0.0.1:${gateway.http.port}/v1/calls`, { headers: { authorization: `Bearer ${gateway.generatedToken!}` } });
    expect(calls.status).toBe(200);
    expect(await calls.json()).toMatchObject({ calls: [] });
    // The speech path answers too: one second of silence through the real whisper-server.
    const result = await gateway.speech.recognizer.recognize({ samples: new Int16Array(16000), language: 'en', task: 'transcribe', priority: 'final' });
    expect(result.language).toBe('en');
    // No drachtio-server runs here, so drachtio-srf has been retrying; once stopped, no retry may
    // stay scheduled (it would keep the process alive after SIGTERM). drachtio-srf has no API for
    // this: the check reads the same internals SipApp.stop() clears.
    const wire = (gateway.sip as unknown as { srf: { _app?: { client?: { wp?: { reconnectVars: { retryTimer: unknown } } } } } }).srf._app?.client?.wp;
    expect(wire).toBeDefined();
    await gateway.close();
    await gateway.close();
    expect(wire!.reconnectVars.retryTimer).toBeNull();
    expect(gateway.sip?.connection).toBe('disconnected');
    expect(isAlive(pid)).toBe(false);
    expect(gateway.receiver.openPorts).toBe(0);
  });

  it('publishes an ingested call to supervisors; one that drops mid-call resumes after a gateway restart and misses nothing', async () => {
    const config = loadConfig({ env: { ...(await embeddedEnv('restart.db')), WHISPERLINE_TRANSCRIPTS_PARTIALS: 'false' } });
    // Random weights: let every decoded utterance through.
    config.transcripts.noSpeechThreshold = 1;
    config.transcripts.silencePhrases = [];
    const speech = await speechFixture({
      sentences: ['Hello, I am calling about my order.', 'It has not arrived yet.', 'Can you check it please?'],
      gapsMs: [1200, 1200],
      sampleRate: 16000,
      leadMs: 300,
      tailMs: 1200,
    });
    let gateway = await startGateway(config, createLogger(config.log));
    try {
      const token = gateway.generatedToken!;
      expect(token).toBeTruthy();
      const published: CallEvent[] = [];
      gateway.events.on('event', (e) => published.push(e));

      // A supervisor watching, that will drop after the first final.
      const seen: Record<string, unknown>[] = [];
      const supervisor = new WebSocket(`ws://127.0.0.1:${gateway.http.port}/v1/supervisor?token=${token}`);
      supervisor.on('message', (d) => seen.push(JSON.parse(d.toString()) as Record<string, unknown>));
      await new Promise((resolve, reject) => supervisor.once('open', resolve).once('error', reject));

      // jambonz `listen` into the gateway: metadata, then 16 kHz L16 in real time.
      const listen = new WebSocket(`ws://127.0.0.1:${gateway.http.port}/v1/listen`, 'audio.jambonz.org');
      await new Promise((resolve, reject) => listen.once('open', resolve).once('error', reject));
      listen.send(JSON.stringify({ callSid: 'CA-restart', from: '+15550001', to: '+15550002', direction: 'inbound', sampleRate: 16000, mixType: 'mono' }));
      let dropped = false;
      const t0 = Date.now();
      for (let i = 0; (i + 1) * 320 <= speech.samples16k.length; i++) {
        const chunk = speech.samples16k.subarray(i * 320, (i + 1) * 320);
        listen.send(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if (!dropped && seen.some((m) => m.type === 'transcript.final')) {
          supervisor.terminate();
          dropped = true;
        }
        const wait = t0 + (i + 1) * 20 - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      expect(dropped).toBe(true);
      listen.close(1000);
      const callId = (published.find((e) => e.kind === 'call.started') as CallEvent).callId;
      await waitFor('the ingested call to end', () => published.some((e) => e.kind === 'call.ended' && e.callId === callId), 30_000);
      const seenEvents = seen.filter((m) => m.callId === callId);
      expect(seenEvents[0]).toMatchObject({ type: 'call.started', rule: 'ingest:listen', labels: ['ingest'] });
      const lastCursor = Math.max(...seenEvents.map((m) => Number(m.cursor ?? 0)));
      const lastSeq = Math.max(...seenEvents.map((m) => Number(m.seq)));
      const missed = published.filter((e) => e.callId === callId && e.seq > lastSeq && e.kind !== 'partial');
      expect(missed.filter((e) => e.kind === 'final').length).toBeGreaterThan(0);
      expect(missed[missed.length - 1]!.kind).toBe('call.ended');

      // A new gateway process on the same store; the supervisor comes back with its cursor.
      await gateway.close();
      gateway = await startGateway(config, createLogger(config.log));
      const back: Record<string, unknown>[] = [];
      const again = new WebSocket(`ws://127.0.0.1:${gateway.http.port}/v1/supervisor?token=${gateway.generatedToken!}&cursor=${lastCursor}`);
      again.on('message', (d) => back.push(JSON.parse(d.toString()) as Record<string, unknown>));
      await waitFor('the replay', () => back.some((m) => m.type === 'replay.done'));
      again.close();
      const replayed = back.filter((m) => m.callId === callId);
      expect(replayed.map((m) => m.seq)).toEqual(missed.map((e) => e.seq));
      expect(replayed.map((m) => m.type)).toEqual(missed.map((e) => (e.kind === 'final' ? 'transcript.final' : e.kind === 'ended' ? 'transcript.ended' : e.kind)));
      expect(replayed.every((m) => m.replay === true)).toBe(true);
    } finally {
      await gateway.close();
    }
  }, 90_000);

  it('fails start-up with a clear, retryable error when rtpengine does not answer', async () => {
    const config = loadConfig({ env: { WHISPERLINE_RTPENGINE_LAUNCH: 'false', WHISPERLINE_RTPENGINE_PORT: String(await freeUdpPort()), WHISPERLINE_RTPENGINE_TIMEOUT_MS: '300', WHISPERLINE_LOG_LEVEL: 'silent' } });
    await expect(startGateway(config, createLogger(config.log))).rejects.toMatchObject({
      code: 'RTPENGINE_UNREACHABLE',
      retryable: true,
      message: expect.stringContaining('did not answer ping'),
    });
  });
});
