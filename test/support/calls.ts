/**
 * The call level's real services for integration suites: a userspace rtpengine on a leased port
 * slot, the gateway's RTP receiver and subscriber, the batched VAD and whisper.cpp on the tiny
 * model, and a speech runtime whose events are captured per call. The SIP legs are the fakes of
 * fake-sip.ts; everything below them is real.
 */
import type { Synthesizer } from '../../src/tts/synthesizer.js';
import type { Translator } from '../../src/translation/translator.js';
import { pino } from 'pino';
import { CallSession, type CallServices } from '../../src/call/call-session.js';
import type { AudioForkOpener } from '../../src/call/ports.js';
import type { RecordingOffer } from '../../src/call/recording.js';
import type { CallRule } from '../../src/call/rule.js';
import type { OutboundDialer } from '../../src/call/signalling.js';
import type { WhisperEngine } from '../../src/asr/whisper/engine.js';
import type { Config } from '../../src/config/schema.js';
import type { Logger } from '../../src/log.js';
import { RtpengineClient } from '../../src/media/rtpengine/client.js';
import { RtpReceiver } from '../../src/media/rtp/receiver.js';
import { MediaSubscriber } from '../../src/media/subscription.js';
import { SpeechRuntime } from '../../src/pipeline/speech-runtime.js';
import type { CallEvent } from '../../src/transcripts/events.js';
import { BatchedVad } from '../../src/vad/batched-vad.js';
import { FakeInboundLeg } from './fake-sip.js';
import { RtpEndpoint } from './rtp-endpoint.js';
import { rtpPortRange, startTestRtpengine, type TestRtpengine } from './rtpengine.js';
import { randomModelConfig, startTinyEngine } from './whisper.js';

export interface CallHarness {
  readonly config: Config;
  readonly rtpe: TestRtpengine;
  readonly client: RtpengineClient;
  readonly receiver: RtpReceiver;
  readonly subscriber: MediaSubscriber;
  readonly vad: BatchedVad;
  readonly engine: WhisperEngine;
  readonly speech: SpeechRuntime;
  /** Every event published, of every call. */
  readonly events: CallEvent[];
  /** The services a session gets (audio streams out with `audioForks`). */
  services(options?: { audioForks?: AudioForkOpener; logger?: Logger; synthesizerFor?: (name?: string) => Synthesizer; appChannels?: CallServices['appChannels']; validateVerbs?: CallServices['validateVerbs'] }): CallServices;
  close(): Promise<void>;
}

/** Starts everything; `partials` off by default (the tiny model's partials add nothing to what these suites check). */
export async function startCallHarness(options: { partials?: boolean; translator?: Translator; /** Benchmarks with many calls: a whole slot each for rtpengine and the gateway. */ wide?: boolean; /** whisper-servers and threads each (default one with 2 threads). */ asrPool?: { poolSize: number; threads: number }; /** Over the tiny model's transcript settings. */ transcripts?: Partial<Config['transcripts']> } = {}): Promise<CallHarness> {
  const log = pino({ level: 'silent' });
  const config = randomModelConfig();
  config.transcripts.partials = options.partials ?? false;
  Object.assign(config.transcripts, options.transcripts ?? {});
  const slot = rtpPortRange();
  const second = options.wide ? rtpPortRange() : undefined;
  const ports = second
    ? { rtpengine: { min: slot.rtpengine.min, max: slot.gateway.max }, gateway: { min: second.rtpengine.min, max: second.gateway.max }, release: () => (slot.release(), second.release()) }
    : slot;
  const rtpe = await startTestRtpengine(ports.rtpengine.min, ports.rtpengine.max);
  const client = new RtpengineClient({ host: rtpe.ngHost, port: rtpe.ngPort });
  const receiver = new RtpReceiver({ bindAddress: '127.0.0.1', portMin: ports.gateway.min, portMax: ports.gateway.max, reorderWindowMs: 60 });
  const subscriber = new MediaSubscriber(client, receiver, 'PCMU');
  const vad = await BatchedVad.create(config.vad);
  vad.start();
  const engine = await startTinyEngine(config, log, options.asrPool);
  const events: CallEvent[] = [];
  const speech = new SpeechRuntime({
    vad,
    recognizerFor: () => engine,
    vadConfig: config.vad,
    transcripts: config.transcripts,
    publish: (e) => events.push(e),
    ...(options.translator ? { translator: options.translator } : {}),
  });
  return {
    config,
    rtpe,
    client,
    receiver,
    subscriber,
    vad,
    engine,
    speech,
    events,
    services: (o = {}) => ({
      rtpengine: client,
      receiver,
      subscriber,
      transcodeTo: 'PCMU',
      speech,
      ...(o.audioForks ? { audioForks: o.audioForks } : {}),
      ...(o.synthesizerFor ? { synthesizerFor: o.synthesizerFor } : {}),
      ...(o.appChannels ? { appChannels: o.appChannels } : {}),
      ...(o.validateVerbs ? { validateVerbs: o.validateVerbs } : {}),
      logger: o.logger ?? log,
    }),
    close: async () => {
      vad.stop();
      await engine.close();
      await vad.close();
      receiver.close();
      await client.close();
      await rtpe.stop();
      ports.release();
    },
  };
}

export interface TestCall {
  readonly session: CallSession;
  readonly leg: FakeInboundLeg;
  readonly caller: RtpEndpoint;
  /** This call's events, in the order published. */
  events(): CallEvent[];
}

/** A session for `rule` with a fake caller leg (a new PCMU endpoint unless `caller` is given). */
export async function newTestCall(
  harness: CallHarness,
  rule: CallRule,
  /** `offer: null`: a delayed offer (an INVITE without SDP). */
  options: { dialer?: OutboundDialer; recording?: RecordingOffer; caller?: RtpEndpoint; offer?: string | null; services?: CallServices; callId?: string } = {},
): Promise<TestCall> {
  const caller = options.caller ?? (await new RtpEndpoint('PCMU').open());
  const leg = new FakeInboundLeg(options.callId ?? `call-${Math.random().toString(36).slice(2)}`, caller, options.offer === null ? null : (options.offer ?? options.recording?.sdp));
  const session = new CallSession({
    inbound: leg,
    rule,
    services: options.services ?? harness.services(),
    ...(options.dialer ? { dialer: options.dialer } : {}),
    ...(options.recording ? { recording: options.recording } : {}),
  });
  return { session, leg, caller, events: () => harness.events.filter((e) => e.callId === leg.callId) };
}
