import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from './metrics.js';

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
});
