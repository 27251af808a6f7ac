import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CallEvent } from '../transcripts/events.js';

/** What the metrics read from the running gateway at scrape time. */
export interface MetricSources {
  readonly liveCalls: () => number;
  readonly liveParties: () => number;
  readonly vad: () => { readonly windows: number; readonly droppedWindows: number };
  readonly asr: () => { readonly queued: number; readonly droppedPartials: number; readonly droppedFinals: number; readonly finalsOverCapacity: number; readonly timeouts: number; readonly restarts: number };
  /** Supervisor feed clients and what the feed dropped for them. */
  readonly feed?: () => { readonly clients: number; readonly refused: number; readonly partialsDropped: number; readonly slowDisconnects: number; readonly heartbeatTimeouts: number };
  /** Audio ingest connections. */
  readonly ingest?: () => { readonly connections: number; readonly refused: number; readonly protocolErrors: number };
  /** Audio forks out, summed over live and ended calls. */
  readonly forks?: () => { readonly open: number; readonly framesDropped: number; readonly overruns: number; readonly reconnects: number };
  /** Speech synthesis, per provider (the tts decorators' numbers; the shape is declared here, http/ does not import tts/). */
  readonly tts?: () => {
    readonly providers: Readonly<Record<string, { readonly requests: number; readonly failures: number; readonly firstAudioMs: { readonly count: number; readonly sum: number } }>>;
    readonly spokenBy: Readonly<Record<string, number>>;
    readonly cache: { readonly hits: number; readonly misses: number };
  };
}

/**
 * Prometheus metrics (`GET /metrics`). Gauges and totals are read from their owners at scrape
 * time; what only the event stream knows (utterances, finals and their latency, RTP loss at
 * call end) is counted as events pass.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly finalLatency: Histogram;
  private readonly finals: Counter;
  private readonly partials: Counter;
  private readonly rtpPackets: Counter;
  private readonly rtpLost: Counter;
  private readonly callsEnded: Counter;
  private readonly alerts: Counter;
  /** Wall-clock time each live call's clock started (its call.started), for final latency. */
  private readonly callStart = new Map<string, number>();

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    // prom-client's names already start with process_ or nodejs_: the prefix is only ours.
    collectDefaultMetrics({ register: this.registry, prefix: 'whisperline_' });
    new Gauge({ name: 'whisperline_calls_live', help: 'Calls in progress', registers, collect() { this.set(sources.liveCalls()); } });
    new Gauge({ name: 'whisperline_parties_live', help: 'Forked call parties receiving RTP', registers, collect() { this.set(sources.liveParties()); } });
    new Gauge({ name: 'whisperline_vad_windows_total', help: 'VAD windows scored (32 ms each)', registers, collect() { this.set(sources.vad().windows); } });
    new Gauge({ name: 'whisperline_vad_windows_dropped_total', help: 'VAD windows dropped because a party buffer overflowed', registers, collect() { this.set(sources.vad().droppedWindows); } });
    new Gauge({ name: 'whisperline_asr_queue_depth', help: 'Recognition requests waiting for a whisper server', registers, collect() { this.set(sources.asr().queued); } });
    const asrCounter = (name: string, help: string, read: (s: ReturnType<MetricSources['asr']>) => number): void => {
      new Gauge({ name, help, registers, collect() { this.set(read(sources.asr())); } });
    };
    asrCounter('whisperline_asr_partials_dropped_total', 'Partials dropped by the ASR queue policy', (s) => s.droppedPartials);
    asrCounter('whisperline_asr_finals_dropped_total', 'Finals rejected by the ASR queue (beyond 4x its size; logged at error)', (s) => s.droppedFinals);
    asrCounter('whisperline_asr_finals_over_capacity_total', 'Finals accepted over the queue size (delayed, not dropped)', (s) => s.finalsOverCapacity);
    asrCounter('whisperline_asr_timeouts_total', 'Recognition requests that timed out', (s) => s.timeouts);
    asrCounter('whisperline_asr_server_restarts_total', 'whisper-server restarts after a death or hang', (s) => s.restarts);
    const gauge = (name: string, help: string, read: () => number | undefined): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const v = read();
          if (v !== undefined) this.set(v);
        },
      });
    };
    if (sources.feed) {
      const feed = sources.feed;
      gauge('whisperline_feed_clients', 'Supervisor feed clients connected', () => feed().clients);
      gauge('whisperline_feed_refused_total', 'Supervisor connections refused (token, origin, malformed resume)', () => feed().refused);
      gauge('whisperline_feed_partials_dropped_total', 'Partials not sent to supervisor clients whose send buffer was full', () => feed().partialsDropped);
      gauge('whisperline_feed_slow_disconnects_total', 'Supervisor clients disconnected for not reading (code 4008)', () => feed().slowDisconnects);
      gauge('whisperline_feed_heartbeat_timeouts_total', 'Supervisor clients disconnected for missing a heartbeat', () => feed().heartbeatTimeouts);
    }
    if (sources.ingest) {
      const ingest = sources.ingest;
      gauge('whisperline_ingest_connections', 'Audio ingest connections open (/v1/listen, /v1/stt, /v1/twilio)', () => ingest().connections);
      gauge('whisperline_ingest_refused_total', 'Audio ingest connections refused (key, limit)', () => ingest().refused);
      gauge('whisperline_ingest_protocol_errors_total', 'Audio ingest connections closed for malformed input', () => ingest().protocolErrors);
    }
    if (sources.tts) {
      const tts = sources.tts;
      const perProvider = (name: string, help: string, read: (s: ReturnType<typeof tts>) => Readonly<Record<string, number>>): void => {
        new Gauge({
          name,
          help,
          labelNames: ['provider'],
          registers,
          collect() {
            for (const [provider, v] of Object.entries(read(tts()))) this.set({ provider }, v);
          },
        });
      };
      const each = (s: ReturnType<typeof tts>, f: (p: ReturnType<typeof tts>['providers'][string]) => number): Record<string, number> =>
        Object.fromEntries(Object.entries(s.providers).map(([n, p]) => [n, f(p)]));
      perProvider('whisperline_tts_requests_total', 'Speech synthesis requests, by provider', (s) => each(s, (p) => p.requests));
      perProvider('whisperline_tts_failures_total', 'Speech synthesis failures (a fallback then tries the next provider), by provider', (s) => each(s, (p) => p.failures));
      perProvider('whisperline_tts_first_audio_ms_sum', 'Time to first audio, summed over requests (ms), by provider', (s) => each(s, (p) => p.firstAudioMs.sum));
      perProvider('whisperline_tts_first_audio_count', 'Requests timed to their first audio, by provider', (s) => each(s, (p) => p.firstAudioMs.count));
      perProvider('whisperline_tts_spoken_total', 'Speeches spoken, by the provider that spoke them', (s) => s.spokenBy);
      gauge('whisperline_tts_cache_hits_total', 'Prompts replayed from the prompt cache', () => tts().cache.hits);
      gauge('whisperline_tts_cache_misses_total', 'Prompts synthesized (not in the prompt cache)', () => tts().cache.misses);
    }
    if (sources.forks) {
      const forks = sources.forks;
      gauge('whisperline_fork_open', 'Audio forks out open', () => forks().open);
      gauge('whisperline_fork_frames_dropped_total', 'Audio fork frames dropped (oldest first) while the consumer was slow or away', () => forks().framesDropped);
      gauge('whisperline_fork_overruns_total', 'Audio fork buffer overrun episodes', () => forks().overruns);
      gauge('whisperline_fork_reconnects_total', 'Audio fork reconnects to their consumers', () => forks().reconnects);
    }
    this.finalLatency = new Histogram({
      name: 'whisperline_final_latency_seconds',
      help: 'End of an utterance (its last speech plus a 150 ms tail) to its final transcript',
      buckets: [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20],
      registers,
    });
    this.finals = new Counter({ name: 'whisperline_finals_total', help: 'Final transcripts published', registers });
    this.partials = new Counter({ name: 'whisperline_partials_total', help: 'Partial transcripts published', registers });
    this.rtpPackets = new Counter({ name: 'whisperline_rtp_packets_total', help: 'RTP packets received on ended calls', registers });
    this.rtpLost = new Counter({ name: 'whisperline_rtp_packets_lost_total', help: 'RTP packets lost (concealed) on ended calls', registers });
    this.alerts = new Counter({ name: 'whisperline_alerts_total', help: 'Keyword alerts raised, by rule and severity', labelNames: ['rule', 'severity'], registers });
    this.callsEnded = new Counter({ name: 'whisperline_calls_ended_total', help: 'Calls ended, by reason', labelNames: ['reason'], registers });
  }

  /** Feeds one published call event. */
  observe(e: CallEvent, nowMs = Date.now()): void {
    switch (e.kind) {
      case 'call.started':
        this.callStart.set(e.callId, nowMs);
        break;
      case 'final': {
        this.finals.inc();
        const start = this.callStart.get(e.callId);
        if (start !== undefined) this.finalLatency.observe(Math.max(0, nowMs - (start + e.endMs)) / 1000);
        break;
      }
      case 'partial':
        this.partials.inc();
        break;
      case 'alert':
        this.alerts.inc({ rule: e.rule, severity: e.severity });
        break;
      case 'call.ended':
        this.callStart.delete(e.callId);
        this.callsEnded.inc({ reason: e.reason });
        for (const s of Object.values(e.parties)) {
          this.rtpPackets.inc(s.packets);
          this.rtpLost.inc(s.lost);
        }
        break;
      default:
        break;
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
