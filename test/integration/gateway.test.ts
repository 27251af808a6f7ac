/** The composition root in embedded mode: it launches rtpengine, reaches it, and takes it down. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { startGateway } from '../../src/main.js';
import { freeUdpPort } from '../support/net.js';
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

describe('startGateway', () => {
  it('launches rtpengine and the speech path in embedded mode, and stops everything on close', async () => {
    const whisper = await ensureTestWhisper();
    const env = {
      WHISPERLINE_ASR_MODEL: whisper.tinyModel,
      WHISPERLINE_RTPENGINE_PORT: String(await freeUdpPort()),
      WHISPERLINE_RTPENGINE_PORT_MIN: String(ports.rtpengine.min),
      WHISPERLINE_RTPENGINE_PORT_MAX: String(ports.rtpengine.max),
      WHISPERLINE_MEDIA_PORT_MIN: String(ports.gateway.min),
      WHISPERLINE_MEDIA_PORT_MAX: String(ports.gateway.max),
      WHISPERLINE_LOG_LEVEL: 'silent',
      WHISPERLINE_HTTP_PORT: '0',
      WHISPERLINE_STORE_PATH: join(storeDir, 'transcripts.db'),
    };
    const config = loadConfig({ env });
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
    // The speech path answers too: one second of silence through the real whisper-server.
    const result = await gateway.speech.recognizer.recognize({ samples: new Int16Array(16000), language: 'en', task: 'transcribe', priority: 'final' });
    expect(result.language).toBe('en');
    await gateway.close();
    await gateway.close();
    expect(isAlive(pid)).toBe(false);
    expect(gateway.receiver.openPorts).toBe(0);
  });

  it('fails start-up with a clear, retryable error when rtpengine does not answer', async () => {
    const config = loadConfig({ env: { WHISPERLINE_RTPENGINE_LAUNCH: 'false', WHISPERLINE_RTPENGINE_PORT: String(await freeUdpPort()), WHISPERLINE_RTPENGINE_TIMEOUT_MS: '300', WHISPERLINE_LOG_LEVEL: 'silent' } });
    await expect(startGateway(config, createLogger(config.log))).rejects.toMatchObject({
      code: 'RTPENGINE_UNREACHABLE',
      retryable: true,
      message: expect.stringContaining('did not answer ping'),
    });
  });
});
