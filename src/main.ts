import { startRecognizers } from './asr/provider.js';
import type { SpeechRecognizer } from './asr/recognizer.js';
import type { WhisperEngineStats } from './asr/whisper/engine.js';
import { appChannelOpener, verbProblems } from './app/index.js';
import { CallSession, type CallServices } from './call/call-session.js';
import { SUPPORTED_VERBS } from './call/ivr/runner.js';
import { CallRegistry } from './call/registry.js';
import type { Config } from './config/schema.js';
import { WhisperlineError } from './errors.js';
import { audioForkOpener, ForkTotals } from './feeds/audio-fork.js';
import { SupervisorFeed } from './feeds/supervisor.js';
import { TokenAuth } from './http/auth.js';
import { historyRoutes } from './http/history.js';
import { GatewayMetrics } from './http/metrics.js';
import { GatewayHttpServer } from './http/server.js';
import { ttsRoutes } from './feeds/tts-vendor.js';
import { AudioIngest } from './ingest/index.js';
import type { Logger } from './log.js';
import { startRtpengine, type RtpengineDaemon } from './media/rtpengine/daemon.js';
import { RtpengineClient } from './media/rtpengine/client.js';
import { RtpReceiver } from './media/rtp/receiver.js';
import { MediaSubscriber } from './media/subscription.js';
import { SpeechRuntime } from './pipeline/speech-runtime.js';
import { SipApp } from './sip/app.js';
import { DialplanStore } from './sip/dialplan-store.js';
import { KeywordAlerts } from './transcripts/alerts.js';
import { CallEventHub } from './transcripts/event-hub.js';
import type { CallEvent } from './transcripts/events.js';
import { TranscriptStore } from './transcripts/store.js';
import { createTranslators } from './translation/index.js';
import { createSynthesizers } from './tts/index.js';
import { BatchedVad } from './vad/batched-vad.js';

/** The shared speech engines: one batched VAD and the Whisper engines serve every call. */
export interface SpeechEngines {
  readonly vad: BatchedVad;
  /** The configured model's engine. */
  readonly recognizer: SpeechRecognizer;
  /** The engine for a dialplan rule's `model` (started on first use), or the default one. */
  recognizerFor(model?: string): SpeechRecognizer;
  /** The default engine's queue and failure counters. */
  asrStats(): WhisperEngineStats;
  close(): Promise<void>;
}

/**
 * Starts the speech engines: Silero VAD ticking in real time, whisper-server processes (built once
 * from the bundled whisper.cpp source) or remote servers. `realtime: false` leaves the VAD loop
 * off for callers that drain it themselves (files).
 */
export async function startSpeech(config: Config, log: Logger, options: { realtime?: boolean } = {}): Promise<SpeechEngines> {
  const vad = await BatchedVad.create(config.vad);
  try {
    const recognizers = await startRecognizers(config.asr, log);
    if (options.realtime ?? true) vad.start(undefined, (err) => log.error({ err }, 'VAD inference failed'));
    let closing: Promise<void> | undefined;
    return {
      vad,
      recognizer: recognizers.recognizer,
      recognizerFor: (model) => recognizers.recognizerFor(model),
      asrStats: () => recognizers.stats(),
      close: () =>
        (closing ??= (async () => {
          vad.stop();
          await recognizers.close();
          await vad.close();
        })()),
    };
  } catch (err) {
    await vad.close();
    throw err;
  }
}

/** The running gateway: every long-lived resource, and the one way to release them all. */
export interface Gateway {
  readonly rtpengine: RtpengineClient;
  /** The rtpengine the gateway launched itself (embedded mode), if any. */
  readonly rtpengineDaemon: RtpengineDaemon | undefined;
  readonly receiver: RtpReceiver;
  readonly subscriber: MediaSubscriber;
  readonly speech: SpeechEngines;
  /** The SIP side; undefined with `sip.mode: off` (an ingest-only gateway). */
  readonly sip: SipApp | undefined;
  readonly http: GatewayHttpServer;
  readonly store: TranscriptStore;
  readonly registry: CallRegistry;
  /** The `/v1/supervisor` WebSocket feed. */
  readonly supervisor: SupervisorFeed;
  /** The token made at start when none is configured (it sees every call). */
  readonly generatedToken: string | undefined;
  /** Every call's events (call.started, transcripts, dtmf, alerts, call.ended) in per-call seq order, each after it was stored. */
  readonly events: CallEventHub;
  /**
   * Shuts down in the order an operator expects: new calls refused (503 + Retry-After, `/health`
   * says draining) and live ones drained; then ingest and the feeds closed with 1001; then the
   * HTTP server (destroying what is left); then speech, the store and media. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * The composition root: the only place that builds concrete objects from the configuration and
 * wires them together. Resources are registered for release as soon as each is acquired, so a
 * failure half-way through start-up releases what was already started.
 */
export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const releaseAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (err) {
        log.warn({ err }, 'cleanup failed during shutdown');
      }
    }
  };
  try {
    let daemon: RtpengineDaemon | undefined;
    if (config.rtpengine.launch) {
      daemon = await startRtpengine({
        binary: config.rtpengine.binary,
        interface: config.rtpengine.host,
        ngPort: config.rtpengine.port,
        portMin: config.rtpengine.portMin,
        portMax: config.rtpengine.portMax,
        logger: log.child({ component: 'rtpengine' }),
      });
      cleanups.push(() => daemon!.stop());
      log.info({ rtpenginePid: daemon.pid, ngPort: config.rtpengine.port }, 'rtpengine launched');
    }
    const rtpengine = new RtpengineClient({
      host: config.rtpengine.host,
      port: config.rtpengine.port,
      timeoutMs: config.rtpengine.timeoutMs,
      logger: log.child({ component: 'rtpengine-client' }),
    });
    cleanups.push(() => rtpengine.close());
    try {
      await rtpengine.ping();
    } catch (err) {
      throw new WhisperlineError(
        'RTPENGINE_UNREACHABLE',
        `rtpengine at ${config.rtpengine.host}:${config.rtpengine.port} did not answer ping` +
          (config.rtpengine.launch ? '' : ' (is it running? rtpengine.launch: true starts a local one)'),
        { retryable: true, cause: err },
      );
    }
    const receiver = new RtpReceiver(config.media);
    cleanups.push(() => receiver.close());
    const subscriber = new MediaSubscriber(rtpengine, receiver, config.media.forkCodec);
    const speech = await startSpeech(config, log);
    cleanups.push(() => speech.close());
    const dialplans = await DialplanStore.open(config.sip.dialplans, { noMatchStatus: config.sip.noMatchStatus, logger: log });
    cleanups.push(() => dialplans.close());
    const synthesizers = createSynthesizers(config.tts, log.child({ component: 'tts' }));
    // Prompts still being written to the disk cache are finished before the process goes.
    cleanups.push(() => synthesizers.flush());
    const translators = await createTranslators(config.translation, log.child({ component: 'translation' }));
    checkRuleProviders(dialplans.current().rules.map((r) => ({ rule: r.rule, origin: r.origin })), synthesizers, translators);
    const registry = new CallRegistry({ maxCalls: config.sip.maxCalls, logger: log });
    // From the first signal on, /health says draining (before the SIP drain starts answering 503).
    let shuttingDown = false;
    const store = TranscriptStore.open(config.store.path, { retentionDays: config.store.retentionDays, owner: config.store.instance });
    cleanups.push(() => store.close());
    const purged = store.purge();
    if (purged > 0) log.info({ purged }, 'calls past the retention period removed');
    const purging = setInterval(() => store.purge(), 6 * 3_600_000);
    purging.unref();
    cleanups.push(() => clearInterval(purging));
    // Metrics read the feeds through this holder: they are built after the hub the metrics observe.
    const feeds: { supervisor?: SupervisorFeed; ingest?: AudioIngest } = {};
    const forkTotals = new ForkTotals();
    const metrics = new GatewayMetrics({
      liveCalls: () => registry.size,
      liveParties: () => receiver.openPorts,
      vad: () => speech.vad.stats,
      asr: () => speech.asrStats(),
      feed: () => feeds.supervisor?.stats() ?? { clients: 0, refused: 0, partialsDropped: 0, slowDisconnects: 0, heartbeatTimeouts: 0 },
      ingest: () => feeds.ingest?.stats() ?? { connections: 0, refused: 0, protocolErrors: 0 },
      forks: () => forkTotals,
      tts: () => synthesizers.metrics.stats(),
    });
    // Stored before anyone sees it: whatever a client saw can be replayed after a restart.
    const events = new CallEventHub({ store, observe: (e) => metrics.observe(e), logger: log });
    closeOrphanedCalls(store, events, log);
    // Every call's transcript, whoever makes the call (SIP, ingest), publishes through the hub.
    const transcripts = new SpeechRuntime({
      vad: speech.vad,
      recognizerFor: (model) => speech.recognizerFor(model),
      vadConfig: config.vad,
      transcripts: config.transcripts,
      alerts: new KeywordAlerts(config.alerts.rules),
      publish: (e: CallEvent) => events.publish(e),
      translatorFor: (name) => translators.for(name !== undefined && translators.has(name) ? name : undefined),
    });
    // Without configured tokens the gateway makes one for every call and logs it with the page's address.
    const generated = config.supervisor.tokens.length === 0 ? TokenAuth.generated() : undefined;
    const auth = generated?.auth ?? new TokenAuth(config.supervisor.tokens);
    const supervisor = new SupervisorFeed({ hub: events, store, auth, config: config.supervisor, logger: log.child({ component: 'supervisor' }) });
    feeds.supervisor = supervisor;
    cleanups.push(() => supervisor.close());
    const ingest = new AudioIngest({ speech: transcripts, config: config.feeds.ingest, logger: log.child({ component: 'ingest' }) });
    feeds.ingest = ingest;
    const services: CallServices = {
      rtpengine,
      receiver,
      subscriber,
      transcodeTo: config.media.forkCodec,
      speech: transcripts,
      // A rule's audio fork out: the feeds' jambonz listen client, playing back through the call's playback.
      audioForks: audioForkOpener(config.feeds.fork, forkTotals),
      // A rule naming a provider a reloaded dialplan brought in, that the configuration lacks: the configured chain.
      synthesizerFor: (name) => synthesizers.for(name !== undefined && synthesizers.has(name) ? name : undefined),
      // `app` rules: jambonz applications over webhooks or WebSockets, their verbs checked against jambonz's schemas.
      appChannels: appChannelOpener({ logger: log.child({ component: 'app' }) }),
      validateVerbs: (verbs) => verbProblems(verbs, SUPPORTED_VERBS),
      logger: log,
    };
    const sip =
      config.sip.mode === 'off'
        ? undefined
        : new SipApp({
            config: config.sip,
            dialplans,
            registry,
            logger: log,
            createSession: (inbound, rule, dialer, recording) => new CallSession({ inbound, rule, dialer, ...(recording ? { recording } : {}), services }),
          });
    sip?.start();
    // Registered after media and speech so it runs before them: calls drain while those are up.
    cleanups.push(() => (sip ? sip.stop() : registry.drain(0)));
    const http = await GatewayHttpServer.start({
      host: config.http.host,
      port: config.http.port,
      logger: log,
      upgrades: { '/v1/supervisor': supervisor.handleUpgrade, ...ingest.upgrades },
      routes: [
        ...historyRoutes({ store, auth, allowedOrigins: config.supervisor.allowedOrigins, live: () => supervisor.liveCallIds(), logger: log.child({ component: 'history' }) }),
        // The gateway's voices as a jambonz custom TTS vendor (off without tts.serve.apiKeys).
        ...ttsRoutes({ synthesizer: () => synthesizers.for(), apiKeys: config.tts.serve.apiKeys, sampleRate: config.tts.serve.sampleRate, logger: log.child({ component: 'tts-serve' }) }),
      ],
      metrics: async () => ({ contentType: metrics.contentType, body: await metrics.text() }),
      metricsToken: config.http.metricsToken,
      health: () => ({
        status: shuttingDown || registry.isDraining ? 'draining' : sipHealthy(sip) ? 'ok' : 'degraded',
        sip: { drachtio: sip?.connection ?? 'off', mode: config.sip.mode, calls: registry.size, draining: shuttingDown || registry.isDraining },
        media: { rtpPorts: receiver.openPorts },
        asr: { spareCapacity: speech.recognizer.hasSpareCapacity() },
      }),
    });
    cleanups.push(() => http.close());
    // Runs before http, speech and the store close: ingested calls end with their last finals.
    cleanups.push(() => ingest.close());
    if (generated) {
      // Like a notebook server: a token made for this run, so the page works out of the box.
      log.info({ url: `http://${config.http.host}:${http.port}/supervisor/#token=${generated.token}` }, 'supervisor page (token generated for this run: set supervisor.tokens to choose your own)');
    }
    log.info(
      { rtpengine: `${config.rtpengine.host}:${config.rtpengine.port}`, rtpPorts: `${config.media.portMin}-${config.media.portMax}` },
      'gateway ready',
    );
    let closing: Promise<void> | undefined;
    const shutdown = async (): Promise<void> => {
      shuttingDown = true;
      // 1. No new calls; the live ones get the grace period (ingest is refused meanwhile too).
      ingest.refuseNew();
      try {
        await (sip ? sip.stop() : registry.drain(0));
      } catch (err) {
        log.warn({ err }, 'SIP drain failed during shutdown');
      }
      // 2. Ingested calls end with their last finals; feed clients get 1001 and the events before it.
      await ingest.close();
      await supervisor.close();
      // 3. What is left of HTTP, then everything else in reverse order of start-up.
      await http.close();
      await releaseAll();
    };
    return {
      rtpengine,
      rtpengineDaemon: daemon,
      receiver,
      subscriber,
      speech,
      sip,
      registry,
      supervisor,
      generatedToken: generated?.token,
      events,
      http,
      store,
      close: () => (closing ??= shutdown().then(() => log.info('gateway stopped'))),
    };
  } catch (err) {
    await releaseAll();
    throw err;
  }
}

/** Inbound: connected to drachtio-server. Outbound: listening (drachtio-server connects per call). */
function sipHealthy(sip: SipApp | undefined): boolean {
  if (!sip) return true;
  return sip.connection === 'connected' || sip.connection === 'listening';
}

/**
 * Calls the previous run of this instance left open (SIGKILL, a crash, power loss) are ended now,
 * with reason `lost`, through the hub: stored, and replayed to feed clients that resume from
 * before the crash, so no consumer waits for an ending that would never come.
 */
function closeOrphanedCalls(store: TranscriptStore, events: CallEventHub, log: Logger): void {
  const orphans = store.openCalls();
  for (const call of orphans) {
    events.publish({ kind: 'call.ended', callId: call.callId, seq: call.lastSeq + 1, reason: 'lost', durationMs: Math.max(0, call.lastEventAt - call.startedAt), parties: {} });
  }
  if (orphans.length > 0) log.warn({ calls: orphans.length, callIds: orphans.slice(0, 20).map((c) => c.callId) }, 'calls left open by the previous run ended as lost');
}

/** Every rule's `synthesizer` and `translator` names a configured provider (checked at start and by check-config). */
export function checkRuleProviders(
  rules: readonly { readonly rule: { readonly name: string; readonly synthesizer?: string; readonly translator?: string }; readonly origin: string }[],
  synthesizers: { has(name: string): boolean; readonly names: readonly string[] },
  translators: { has(name: string): boolean; readonly names: readonly string[] },
): void {
  const problems: string[] = [];
  for (const { rule, origin } of rules) {
    if (rule.synthesizer !== undefined && !synthesizers.has(rule.synthesizer)) problems.push(`${origin} (${rule.name}): synthesizer "${rule.synthesizer}" is not in tts.providers (${synthesizers.names.join(', ')})`);
    if (rule.translator !== undefined && !translators.has(rule.translator)) problems.push(`${origin} (${rule.name}): translator "${rule.translator}" is not in translation.providers (${translators.names.join(', ')})`);
  }
  if (problems.length > 0) throw new WhisperlineError('CONFIG_INVALID', `dialplan rules name unknown providers:\n  ${problems.join('\n  ')}`);
}
