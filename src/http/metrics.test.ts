import { describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { GatewayMetrics } from './metrics.js';
import { GatewayHttpServer } from './server.js';

const sources = {
  liveCalls: () => 3,
  liveParties: () => 5,
  vad: () => ({ windows: 1200, droppedWindows: 2 }),
  asr: () => ({ queued: 4, droppedPartials: 7, droppedFinals: 0, finalsOverCapacity: 1, timeouts: 0, restarts: 1 }),
};

const value = (text: string, name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);

describe('GatewayMetrics', () => {
  it('reads gauges from their owners at scrape time', async () => {
    const text = await new GatewayMetrics(sources).text();
    expect(value(text, 'whisperline_calls_live')).toBe(3);
    expect(value(text, 'whisperline_parties_live')).toBe(5);
    expect(value(text, 'whisperline_vad_windows_total')).toBe(1200);
    expect(value(text, 'whisperline_asr_queue_depth')).toBe(4);
    expect(value(text, 'whisperline_asr_partials_dropped_total')).toBe(7);
    expect(value(text, 'whisperline_asr_server_restarts_total')).toBe(1);
    // Feed, ingest and fork metrics exist only when their sources are given.
    expect(text).not.toMatch(/whisperline_feed_clients/);
  });

  it('reads feed clients and their drops, ingest connections and forks when the gateway has them', async () => {
    const text = await new GatewayMetrics({
      ...sources,
      feed: () => ({ clients: 12, refused: 2, partialsDropped: 30, slowDisconnects: 1, heartbeatTimeouts: 0 }),
      ingest: () => ({ connections: 3, refused: 1, protocolErrors: 4 }),
      forks: () => ({ open: 2, framesDropped: 50, overruns: 1, reconnects: 3 }),
    }).text();
    expect(value(text, 'whisperline_feed_clients')).toBe(12);
    expect(value(text, 'whisperline_feed_partials_dropped_total')).toBe(30);
    expect(value(text, 'whisperline_feed_slow_disconnects_total')).toBe(1);
    expect(value(text, 'whisperline_ingest_connections')).toBe(3);
    expect(value(text, 'whisperline_ingest_protocol_errors_total')).toBe(4);
    expect(value(text, 'whisperline_fork_frames_dropped_total')).toBe(50);
    expect(value(text, 'whisperline_fork_overruns_total')).toBe(1);
  });

  it('reads speech synthesis per provider: requests, failures, first audio, who spoke, prompt cache', async () => {
    const text = await new GatewayMetrics({
      ...sources,
      tts: () => ({
        providers: { kokoro: { requests: 3, failures: 2, firstAudioMs: { count: 1, sum: 180 } }, espeak: { requests: 2, failures: 0, firstAudioMs: { count: 2, sum: 30 } } },
        spokenBy: { kokoro: 1, espeak: 2 },
        cache: { hits: 4, misses: 3 },
      }),
    }).text();
    expect(text).toContain('whisperline_tts_requests_total{provider="kokoro"} 3');
    expect(text).toContain('whisperline_tts_failures_total{provider="kokoro"} 2');
    expect(text).toContain('whisperline_tts_first_audio_ms_sum{provider="espeak"} 30');
    expect(text).toContain('whisperline_tts_spoken_total{provider="espeak"} 2');
    expect(text).toContain('whisperline_tts_cache_hits_total 4');
  });

  it('counts finals, their latency from the end of speech, RTP loss and endings from the events', async () => {
    const m = new GatewayMetrics(sources);
    const t0 = 1_000_000;
    m.observe({ kind: 'call.started', callId: 'c1', seq: 1, rule: 'r', labels: [], parties: [{ name: 'caller' }] }, t0);
    m.observe({ callId: 'c1', seq: 2, party: 'caller', kind: 'partial', text: 'hel', startMs: 0, endMs: 500, language: 'en', confidence: 0.5 }, t0 + 600);
    // Speech ended 2 s into the call; the final came 700 ms later.
    m.observe({ callId: 'c1', seq: 3, party: 'caller', kind: 'final', text: 'hello', startMs: 0, endMs: 2000, language: 'en', confidence: 0.9 }, t0 + 2700);
    m.observe({ callId: 'c1', seq: 4, party: 'caller', kind: 'alert', rule: 'greeting', severity: 'info', finalSeq: 3, text: 'hello', startMs: 0, endMs: 2000 }, t0 + 2700);
    m.observe(
      {
        kind: 'call.ended',
        callId: 'c1',
        seq: 5,
        reason: 'bye-caller',
        durationMs: 5000,
        parties: { caller: { packets: 250, bytes: 43000, lost: 3, late: 0, duplicate: 0, malformed: 0, rtcp: 0, unknownPayloadType: 0, undecodable: 0, ssrcChanges: 0, dtmfEvents: 0, jitterMs: 1, codec: 'PCMU' } },
      },
      t0 + 5000,
    );
    const text = await m.text();
    expect(value(text, 'whisperline_finals_total')).toBe(1);
    expect(value(text, 'whisperline_partials_total')).toBe(1);
    expect(value(text, 'whisperline_final_latency_seconds_count')).toBe(1);
    expect(value(text, 'whisperline_final_latency_seconds_sum')).toBeCloseTo(0.7, 3);
    expect(value(text, 'whisperline_rtp_packets_total')).toBe(250);
    expect(value(text, 'whisperline_rtp_packets_lost_total')).toBe(3);
    expect(text).toMatch(/^whisperline_calls_ended_total\{reason="bye-caller"\} 1$/m);
    expect(text).toMatch(/^whisperline_alerts_total\{rule="greeting",severity="info"\} 1$/m);
  });

  it('exports process metrics under one whisperline_ prefix, not whisperline_process_process_', async () => {
    const text = await new GatewayMetrics(sources).text();
    const names = [...new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!))];
    expect(names).toContain('whisperline_process_cpu_seconds_total');
    expect(names).toContain('whisperline_process_resident_memory_bytes');
    expect(names).toContain('whisperline_nodejs_eventloop_lag_seconds');
    expect(names.filter((n) => n.includes('process_process') || !n.startsWith('whisperline_'))).toEqual([]);
  });

  it('serves GET /metrics only with the bearer token when http.metricsToken is set', async () => {
    const metrics = new GatewayMetrics(sources);
    const token = 'scrape-token-0123456789';
    const start = (metricsToken?: string) =>
      GatewayHttpServer.start({
        host: '127.0.0.1',
        port: 0,
        logger: createLogger({ level: 'silent', format: 'json', redactTranscripts: true }),
        health: () => ({ status: 'ok' }),
        metrics: async () => ({ contentType: metrics.contentType, body: await metrics.text() }),
        metricsToken,
      });
    const guarded = await start(token);
    const open = await start();
    try {
      const get = (server: GatewayHttpServer, authorization?: string) =>
        fetch(`http://127.0.0.1:${server.port}/metrics`, authorization ? { headers: { authorization } } : {});
      for (const authorization of [undefined, `Bearer ${token.slice(0, -1)}`, `Bearer ${token}x`, `Basic ${Buffer.from(`x:${token}`).toString('base64')}`]) {
        const refused = await get(guarded, authorization);
        expect(refused.status).toBe(401);
        expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
        expect(await refused.json()).toMatchObject({ error: expect.stringMatching(/Authorization: Bearer/) });
      }
      const ok = await get(guarded, `Bearer ${token}`);
      expect(ok.status).toBe(200);
      expect(value(await ok.text(), 'whisperline_calls_live')).toBe(3);
      // Without a token configured, /metrics stays open as before.
      const unguarded = await get(open);
      expect(unguarded.status).toBe(200);
      expect(value(await unguarded.text(), 'whisperline_calls_live')).toBe(3);
    } finally {
      await guarded.close();
      await open.close();
    }
  });
});
