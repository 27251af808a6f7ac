import { performance } from 'node:perf_hooks';
import type { AudioFrame } from '../audio/frame.js';
import { asWhisperlineError, WhisperlineError } from '../errors.js';
import { callLogger, type Logger } from '../log.js';
import { CallAnchor, type AnchorControl } from '../media/anchor.js';
import { RtpenginePlayer, type PlayerControl } from '../media/rtpengine/player.js';
import type { RtpReceiver } from '../media/rtp/receiver.js';
import type { MediaSubscriber } from '../media/subscription.js';
import type { PartyInput, PartyOptions } from '../pipeline/call-pipeline.js';
import type { CallTranscript } from '../pipeline/call-transcript.js';
import type { TranscriptOpener } from '../pipeline/speech-runtime.js';
import type { CallEndReason, CallParty, TranscriptEvent } from '../transcripts/events.js';
import type { Synthesizer } from '../tts/synthesizer.js';
import { CallMedia } from './call-media.js';
import { unansweredOutcome, type DialOutcome, type DialRequest } from './dial.js';
import { CallEndedError, isCallEnded } from './errors.js';
import type { AppChannelOpener, CallAttributes, Verb } from './app-channel.js';
import { Interpreter } from './interpreter.js';
import { IvrRunner } from './ivr/runner.js';
import { CallPlayback, LegPlayback, type PlaybackTarget } from './playback.js';
import type { AudioForkOpener, AudioFork, AudioForkStats } from './ports.js';
import type { RecordingOffer } from './recording.js';
import type { AppRule, AudioForkPlan, CallRule, PromptPlan } from './rule.js';
import type { InboundLeg, OutboundDialer } from './signalling.js';
import { CallSpeaker } from './speaker.js';
import type { CallStrategy, ConnectedCall, Side } from './strategy.js';
import { AnswerStrategy } from './strategies/answer.js';
import { BridgeStrategy } from './strategies/bridge.js';
import { RecordingStrategy } from './strategies/recording.js';

/** What every call shares: the media plane, the speech side, the ports to the feeds. */
export interface CallServices {
  readonly rtpengine: AnchorControl & PlayerControl;
  readonly receiver: RtpReceiver;
  readonly subscriber: MediaSubscriber;
  /** Codec rtpengine transcodes recorded streams to when the gateway does not decode theirs. */
  readonly transcodeTo: 'PCMU' | 'opus';
  readonly speech: TranscriptOpener;
  /** Opens a rule's audio fork out (the feeds' WebSocket stream); absent: rules' audio forks are not opened. */
  readonly audioForks?: AudioForkOpener;
  /**
   * The synthesizer for a rule's `synthesizer` (a `tts.providers` name), or the configured chain;
   * absent: nothing is spoken (prompts and interpretation report `speech.failed`).
   */
  readonly synthesizerFor?: (name?: string) => Synthesizer;
  /** Opens the channel to an `app` rule's voice application (absent: app rules fail their calls). */
  readonly appChannels?: AppChannelOpener;
  /** Checks an application's verbs (jambonz's schemas, the verbs whisperline runs). */
  readonly validateVerbs?: (verbs: readonly Verb[]) => readonly { readonly index: number; readonly message: string }[];
  readonly logger: Logger;
}

/** How long the ending prompts may take before the gateway hangs up anyway (ms). */
const ENDING_PROMPT_LIMIT_MS = 15_000;

export interface CallSessionDeps {
  readonly inbound: InboundLeg;
  readonly rule: CallRule;
  readonly services: CallServices;
  /** Needed for `bridge` rules. */
  readonly dialer?: OutboundDialer;
  /** Needed for `siprec` rules: the recording offer (`inbound.offer` is its SDP). */
  readonly recording?: RecordingOffer;
}

/** A call's state; each variant carries what the call holds at that point. */
export type CallState =
  | { readonly name: 'new' }
  | { readonly name: 'connecting' }
  | { readonly name: 'active'; readonly answeredAt: number; readonly call: ConnectedCall }
  | { readonly name: 'closing'; readonly reason: CallEndReason }
  | { readonly name: 'closed'; readonly reason: CallEndReason; readonly durationMs: number; readonly sipStatus: number | undefined };

/** The strategy of a rule's action. */
function strategyFor(deps: CallSessionDeps): CallStrategy {
  const { rule } = deps;
  switch (rule.action) {
    case 'answer':
    case 'app':
      // A voice application's call is answered like an answer rule's; the app runs on top.
      return new AnswerStrategy();
    case 'bridge':
      if (!deps.dialer) throw new WhisperlineError('CALL_STATE', `bridge rule ${rule.name} has no dialer`);
      return new BridgeStrategy(rule, deps.dialer);
    case 'siprec':
      if (!deps.recording) throw new WhisperlineError('SIPREC_INVALID', `recording rule ${rule.name} got no recording offer`);
      return new RecordingStrategy(deps.recording, deps.services.transcodeTo);
  }
}

/**
 * One call's lifecycle, in order: acquire (anchor in rtpengine, reach the other side through the
 * rule's strategy, answer), run (transcript, media taps, playback, audio fork out, re-INVITEs)
 * and one idempotent `close(reason, cause)` that every ending path goes through: a BYE from either
 * side, CANCEL, a failure at any step, a drachtio disconnect, shutdown. Every resource is
 * registered for release as it is acquired; `close` always deletes the rtpengine call and
 * publishes the last finals before `call.ended`, for calls that failed during set-up too.
 */
export class CallSession {
  readonly callId: string;
  private stateValue: CallState = { name: 'new' };
  private readonly log: Logger;
  private readonly strategy: CallStrategy;
  private readonly anchor: CallAnchor;
  private readonly media: CallMedia;
  private readonly transcript: CallTranscript;
  private readonly inputs = new Map<string, PartyInput>();
  private readonly cleanups: { what: string; run: () => unknown }[] = [];
  private playbackValue: CallPlayback | undefined;
  /** Speech into the call (prompts, interpretation), once the call is up. */
  private speaker: CallSpeaker | undefined;
  private interpreter: Interpreter | undefined;
  private ivr: IvrRunner | undefined;
  private fork: AudioFork | undefined;
  /** Audio streams out opened by a voice application's `listen` verbs. */
  private readonly listens = new Set<AudioFork>();
  private answeredAtPerf = 0;
  /** The voice application's dial in progress: its callee's BYE ends the dial, not the call. */
  private dialing: { readonly calleeBye: () => void } | undefined;
  /** Dials so far: each dialed leg is its own party (callee, callee-2, ...). */
  private dials = 0;
  private closing: Promise<void> | undefined;
  /** Aborted when the call starts closing: cancels set-up work in progress. */
  private readonly setup = new AbortController();
  private resolveEnded!: (reason: CallEndReason) => void;
  private resolveConnected!: () => void;
  /** Settles once connecting is over: the call is active, or has started ending. */
  private readonly connected: Promise<void> = new Promise((resolve) => (this.resolveConnected = resolve));
  /** Settles once the call is closed and every resource released. */
  readonly ended: Promise<CallEndReason> = new Promise((resolve) => (this.resolveEnded = resolve));

  constructor(private readonly deps: CallSessionDeps) {
    const { inbound, rule, services } = deps;
    this.callId = inbound.callId;
    this.log = callLogger(services.logger, this.callId).child({ rule: rule.name });
    this.strategy = strategyFor(deps);
    this.anchor = new CallAnchor(services.rtpengine, this.callId);
    this.transcript = services.speech.openCall({
      callId: this.callId,
      rule: rule.name,
      labels: rule.labels,
      overrides: {
        ...(rule.language !== undefined ? { language: rule.language } : {}),
        ...(rule.partials !== undefined ? { partials: rule.partials } : {}),
        ...(rule.translate !== undefined ? { translate: rule.translate } : {}),
        ...(rule.model !== undefined ? { model: rule.model } : {}),
        ...(rule.translator !== undefined ? { translator: rule.translator } : {}),
      },
      logger: this.log,
    });
    this.media = new CallMedia({
      callId: this.callId,
      subscriber: services.subscriber,
      logger: this.log,
      onFrame: (party, frame) => this.onFrame(party, frame),
      onDtmf: (party, e) => {
        this.log.info({ party, digit: e.digit, durationMs: e.durationMs }, 'dtmf');
        this.transcript.dtmf(party, e);
        if (party === 'caller') this.ivr?.dtmf(e.digit);
      },
    });
  }

  get state(): CallState {
    return this.stateValue;
  }

  /** Playback into the call (its legs that can hear), once the call is up. */
  get playback(): CallPlayback | undefined {
    return this.playbackValue;
  }

  /** The audio fork out's counters, when the call has one. */
  get audioForkStats(): AudioForkStats | undefined {
    return this.fork?.stats();
  }

  /**
   * Connects the call and starts transcribing. Rejects with CALL_ENDED when the call ended
   * meanwhile (its ending is already done), or with the error that failed it (then closed with
   * reason `failed`: the caller got the SIP edge's mapping of it).
   */
  async start(): Promise<void> {
    if (this.stateValue.name !== 'new') throw new WhisperlineError('CALL_STATE', `call ${this.callId} already started`);
    this.stateValue = { name: 'connecting' };
    // Registered before the offer is sent: a call rtpengine has seen is always deleted.
    this.cleanups.push({ what: 'rtpengine delete', run: () => this.anchor.delete() });
    try {
      const call = await this.strategy.connect(this.context());
      this.answeredAtPerf = performance.now();
      this.media.startClock();
      this.stateValue = { name: 'active', answeredAt: Date.now(), call };
      this.resolveConnected();
      const parties = call.parties.flatMap((name) => this.planOf(name) ?? []);
      this.transcript.start(
        parties.map((p) => p.party),
        call.warning !== undefined ? { warning: call.warning } : {},
      );
      for (const { party, options } of parties) this.inputs.set(party.name, this.transcript.addParty(party.name, options));
      this.playbackValue = this.openPlayback(call);
      this.openSpeech(this.playbackValue);
      this.fork = this.openAudioFork(call, parties.map((p) => p.party));
    } catch (err) {
      if (isCallEnded(err)) {
        // Ended meanwhile: by close() (its ending is under way), or seen first below (the SIP
        // stack had the CANCEL before the session did): a normal ending either way.
        await (this.closing ?? this.close(err instanceof CallEndedError && err.reason ? err.reason : 'cancel'));
        throw new CallEndedError(this.callId, `starting (${this.endReason()})`);
      }
      const cause = asWhisperlineError(err, 'call set-up failed');
      // Expected refusals (a busy callee, a bad offer) are facts about the call, not gateway faults.
      if (cause.code === 'INTERNAL') this.log.error({ err: cause }, 'call set-up failed');
      else this.log.info({ code: cause.code, err: cause.message }, 'call set-up failed');
      await this.close('failed', cause);
      throw cause;
    }
  }

  /** A BYE arrived from one side (a dialed leg's ends its dial only). */
  remoteBye(side: Side): Promise<void> {
    // An application's call has no callee but its dialed legs: their BYE ends a dial, never the call.
    if (side === 'callee' && this.deps.rule.action === 'app') {
      this.dialing?.calleeBye();
      return Promise.resolve();
    }
    return this.close(side === 'caller' ? 'bye-caller' : 'bye-callee');
  }

  /**
   * A voice application's `dial`: the answered caller is bridged to the first target to answer,
   * the callee is transcribed as its own party (`callee`, then `callee-2`...) as a bridge rule's
   * is, until the callee hangs up, the time limit, the application takes the call back
   * (`request.signal`) or the caller hangs up. Then the callee's last finals are out, the caller
   * is the gateway's again, and the outcome says how it went (jambonz's dial_call_status).
   */
  async dial(request: DialRequest): Promise<DialOutcome> {
    const state = this.stateValue;
    const { dialer } = this.deps;
    const bridgeTo = state.name === 'active' ? state.call.bridgeTo?.bind(state.call) : undefined;
    const unbridge = state.name === 'active' ? state.call.unbridge?.bind(state.call) : undefined;
    if (!bridgeTo || !unbridge) throw new WhisperlineError('CALL_STATE', `call ${this.callId} cannot dial (${state.name}, ${this.deps.rule.action})`);
    if (!dialer) throw new WhisperlineError('CALL_STATE', `call ${this.callId} has no dialer`);
    if (this.dialing) throw new WhisperlineError('CALL_STATE', `call ${this.callId} is already dialing`);
    const ring = AbortSignal.timeout(request.ringTimeoutMs);
    let calleeBye!: () => void;
    const byeSeen = new Promise<'callee'>((resolve) => (calleeBye = () => resolve('callee')));
    // Set before the INVITE: a callee may hang up the moment it answers.
    this.dialing = { calleeBye: () => calleeBye() };
    let answered: Awaited<ReturnType<typeof bridgeTo>>;
    try {
      answered = await bridgeTo(request.targets, dialer, AbortSignal.any([request.signal, this.setup.signal, ring]), request.options);
    } catch (err) {
      this.dialing = undefined;
      if (request.signal.aborted || this.closing) throw new CallEndedError(this.callId, 'dialing');
      this.log.info({ targets: request.targets, err: asWhisperlineError(err, 'dial failed').message }, 'dial not answered');
      return unansweredOutcome(err, ring.aborted);
    }
    const startedAt = performance.now();
    const party = ++this.dials === 1 ? 'callee' : `callee-${this.dials}`;
    // Every dialed party is transcribed as the rule's `callee` says.
    const plan = this.planOf(party, 'callee');
    let input: PartyInput | undefined;
    if (plan) {
      try {
        await this.media.subscribe(party, answered.leg.toTag);
        input = this.transcript.addParty(party, plan.options);
        this.inputs.set(party, input);
      } catch (err) {
        this.log.warn({ err, party }, 'the dialed party could not be tapped: not transcribed');
      }
    }
    this.log.info({ target: answered.target, party }, 'dial answered: bridged');
    request.onAnswered?.({ party: input ? party : undefined, target: answered.target });
    const endedBy = await Promise.race([
      byeSeen,
      aborted(request.signal, 'application' as const),
      aborted(this.setup.signal, 'caller' as const),
      ...(request.timeLimitMs !== undefined ? [aborted(AbortSignal.timeout(request.timeLimitMs), 'time-limit' as const)] : []),
    ]);
    this.dialing = undefined;
    const durationS = Math.round((performance.now() - startedAt) / 1000);
    // The caller hung up: the call's own ending hangs up the dialed leg and ends every party.
    if (!this.closing) {
      await this.media.unsubscribe(party);
      this.inputs.delete(party);
      await input?.end();
      await unbridge({ calleeHungUp: endedBy === 'callee' });
    }
    this.log.info({ party, endedBy, durationS }, 'dial ended');
    return { callStatus: 'completed', sipStatus: 200, callSid: answered.leg.toTag, target: answered.target, ...(input ? { party } : {}), durationS, endedBy };
  }

  /** CANCEL before the call was answered (the SIP stack answers it 487 itself). */
  cancel(): Promise<void> {
    return this.close('cancel');
  }

  /**
   * A re-INVITE from one side (hold, resume, codec change, SIPREC update): renegotiated through
   * the strategy, reported as `call.updated`. Resolves with the SDP answer for that side.
   */
  async reinvite(from: Side, offerSdp: string, update?: RecordingOffer): Promise<string> {
    // A re-INVITE right behind the ACK can come while the call is still being connected
    // (subscriptions, the ACK's answer): it waits for that rather than being refused.
    if (this.stateValue.name === 'connecting') await this.connected;
    const state = this.stateValue;
    if (state.name !== 'active') throw new WhisperlineError('CALL_STATE', `call ${this.callId} is ${state.name}: re-INVITE refused`);
    const result = await state.call.reinvite(from, offerSdp, update);
    this.log.info({ by: from, hold: result.hold }, 'media renegotiated');
    this.transcript.updated({ by: from, hold: result.hold, ...(result.participants ? { participants: result.participants } : {}) });
    return result.answer;
  }

  /**
   * The offer for a re-INVITE without SDP from `side` (a session refresh): the SDP last sent to
   * that side, unchanged. Its answer comes in the ACK (`adoptAnswer`).
   */
  refreshOffer(side: Side): string {
    const state = this.stateValue;
    if (state.name !== 'active') throw new WhisperlineError('CALL_STATE', `call ${this.callId} is ${state.name}: re-INVITE refused`);
    return state.call.sdpTowards(side);
  }

  /**
   * `side`'s answer, from the ACK, to `refreshOffer`'s offer: applied when it changed the session
   * (reported as `call.updated`), ignored when it is the same version of it.
   */
  async adoptAnswer(side: Side, answerSdp: string): Promise<void> {
    const state = this.stateValue;
    if (state.name !== 'active') return;
    const changed = await state.call.adopt(side, answerSdp);
    if (!changed) return;
    this.log.info({ by: side, hold: changed.hold }, 'media renegotiated (answer in ACK)');
    this.transcript.updated({ by: side, hold: changed.hold });
  }

  /**
   * Ends the call for `reason` (with the typed error behind a failure) and releases everything.
   * Idempotent: every ending path calls it, later calls get the same promise.
   */
  close(reason: CallEndReason, cause?: WhisperlineError): Promise<void> {
    return (this.closing ??= this.doClose(reason, cause));
  }

  // ------------------------------------------------------------------------------------------

  private context(): Parameters<CallStrategy['connect']>[0] {
    return {
      callId: this.callId,
      rule: this.deps.rule,
      inbound: this.deps.inbound,
      anchor: this.anchor,
      media: this.media,
      receiver: this.deps.services.receiver,
      log: this.log,
      signal: this.setup.signal,
      defer: (what, run) => this.cleanups.push({ what, run }),
      checkOpen: (what) => this.checkOpen(what),
      transcribes: (party) => this.planOf(party) !== undefined,
    };
  }

  private checkOpen(what: string): void {
    if (this.closing) throw new CallEndedError(this.callId, what);
  }

  private endReason(): string {
    const s = this.stateValue;
    return s.name === 'closing' || s.name === 'closed' ? s.reason : 'unknown';
  }

  /**
   * How a party is transcribed, per the rule (undefined: it is not). A rule without `parties`
   * transcribes every party of its action; a recording transcribes every recorded stream.
   */
  private planOf(name: string, planName = name): { party: CallParty; options: PartyOptions } | undefined {
    const { rule } = this.deps;
    const plans = rule.action === 'siprec' ? undefined : rule.parties;
    const plan = plans === undefined ? { transcribe: true } : plans[planName];
    if (!plan?.transcribe) return undefined;
    return {
      party: { name, ...(plan.label ? { label: plan.label } : {}) },
      options: {
        ...(plan.label ? { label: plan.label } : {}),
        ...(plan.language ? { language: plan.language } : {}),
        ...(plan.translate !== undefined ? { translate: plan.translate } : {}),
        ...(plan.translateTo !== undefined ? { translateTo: plan.translateTo } : {}),
        ...this.interpretationOf(name),
        // A voice application hears the caller: its speech start (barge-in) and transcripts (gather).
        ...(rule.action === 'app' && name === 'caller' ? { onTranscript: (e: TranscriptEvent) => this.ivr?.transcript(e), onSpeechStarted: () => this.ivr?.speechStarted(), onSpeechEnded: () => this.ivr?.speechEnded() } : {}),
      },
    };
  }

  /**
   * Interpretation (a bridge's `interpret`): the party's finals are translated into the other
   * party's language, and each translation is spoken into the other party's leg.
   */
  private interpretationOf(name: string): Partial<PartyOptions> {
    const { rule } = this.deps;
    if (rule.action !== 'bridge' || !rule.interpret || (name !== 'caller' && name !== 'callee')) return {};
    const listener = name === 'caller' ? 'callee' : 'caller';
    const language = rule.parties?.[listener]?.language;
    if (language === undefined || language === 'auto') return {};
    return { translate: true, translateTo: language, onTranslation: (event) => this.interpreter?.translation(event, listener) };
  }

  /** The call's speaker (when a synthesizer is configured), its interpreter, and the answered prompts. */
  private openSpeech(playback: CallPlayback): void {
    const { rule, services } = this.deps;
    const wantsSpeech = (rule.action === 'answer' && rule.say !== undefined) || (rule.action === 'bridge' && rule.interpret !== undefined) || rule.action === 'app';
    if (!wantsSpeech) return;
    if (!services.synthesizerFor) {
      this.log.warn('the rule speaks but no synthesizer is configured (tts.providers): nothing is spoken');
      return;
    }
    const speaker = new CallSpeaker({
      synthesizer: services.synthesizerFor(rule.synthesizer),
      playback,
      publish: (event) => this.transcript.speech(event),
      logger: this.log,
    });
    this.speaker = speaker;
    if (rule.action === 'bridge' && rule.interpret) {
      this.interpreter = new Interpreter(speaker, { maxLagMs: rule.interpret.maxLagMs, maxQueued: 3, ...(rule.interpret.voices ? { voices: rule.interpret.voices } : {}) }, this.log);
    }
    if (rule.action === 'answer' && rule.say && rule.say.answered.length > 0) void this.sayAll(rule.say.answered, rule.say);
    if (rule.action === 'app') this.startApp(rule, speaker, playback);
  }

  /** An `app` rule: the voice application drives the answered call (jambonz's protocol). */
  private startApp(rule: AppRule, speaker: CallSpeaker, playback: CallPlayback): void {
    const { services, inbound } = this.deps;
    const fail = (message: string): void => void this.close('failed', new WhisperlineError('APP_FAILED', message));
    if (!services.appChannels) return fail(`rule ${rule.name}: voice applications are not available in this gateway`);
    const callSid = this.callId;
    const attributes: CallAttributes = {
      call_sid: callSid,
      direction: 'inbound',
      from: inbound.from ?? '',
      to: inbound.to ?? '',
      call_id: this.callId,
      sip_status: 200,
      call_status: 'in-progress',
      ...(inbound.requestUri ? { local_sip_address: inbound.requestUri } : {}),
    };
    const channel = services.appChannels({ url: rule.url, callSid, ...(rule.auth ? { auth: rule.auth } : {}), ...(rule.statusHook !== undefined ? { statusUrl: rule.statusHook } : {}) });
    this.cleanups.push({ what: 'app channel close', run: () => channel.close() });
    const runner = new IvrRunner({
      channel,
      speaker,
      playback,
      attributes,
      publish: (event) => this.transcript.app(event),
      hangUp: (why, cause) => this.close(why, cause),
      ...(services.validateVerbs ? { validate: services.validateVerbs } : {}),
      ...(services.audioForks ? { listen: (plan: AudioForkPlan, metadata: Readonly<Record<string, unknown>>) => this.openListen(plan, metadata) } : {}),
      ...(this.deps.dialer ? { dial: (request: DialRequest) => this.dial(request) } : {}),
      dialRouting: { ...(rule.dial?.trunk !== undefined ? { trunk: rule.dial.trunk } : {}), ...(rule.dial?.allow !== undefined ? { allow: new RegExp(rule.dial.allow) } : {}) },
      defaults: { ...(rule.language !== undefined && rule.language !== 'auto' ? { language: rule.language } : {}), ...(rule.voice !== undefined ? { voice: rule.voice } : {}), ...(rule.bargein !== undefined ? { bargein: rule.bargein } : {}) },
      logger: this.log.child({ app: rule.url }),
    });
    this.ivr = runner;
    void runner.run();
  }

  /** Prompts to the caller, one after the other (each is synthesized before it is queued). */
  private async sayAll(texts: readonly string[], plan: PromptPlan): Promise<void> {
    for (const text of texts) {
      if (!this.speaker || this.closing) return;
      await this.speaker.say('caller', { text, purpose: 'prompt', ...(plan.language !== undefined ? { language: plan.language } : {}), ...(plan.voice !== undefined ? { voice: plan.voice } : {}) });
    }
  }

  /** One playback queue per leg that can hear (the other party blocked towards it meanwhile). */
  private openPlayback(call: ConnectedCall): CallPlayback {
    const tags = call.playbackTags;
    const legs: Partial<Record<PlaybackTarget, LegPlayback>> = {};
    for (const target of ['caller', 'callee'] as const) {
      const listenerTag = tags[target];
      if (listenerTag === undefined) continue;
      const otherTag = tags[target === 'caller' ? 'callee' : 'caller'];
      const { rule } = this.deps;
      const player = new RtpenginePlayer({
        rtpengine: this.deps.services.rtpengine,
        callId: this.callId,
        listenerTag,
        ...(otherTag !== undefined ? { otherTag } : {}),
        // Interpretation that passes the original: the listener hears the speaker and the translation.
        ...(rule.action === 'bridge' && rule.interpret?.original === 'pass' ? { passOther: true } : {}),
        logger: this.log,
      });
      legs[target] = new LegPlayback(target, player, { logger: this.log.child({ playback: target }) });
    }
    return new CallPlayback(legs);
  }

  /** The rule's audio fork out, when it has one and the gateway can open it. Never waits for the consumer. */
  private openAudioFork(call: ConnectedCall, parties: readonly CallParty[]): AudioFork | undefined {
    const { rule, inbound, services } = this.deps;
    const plan = rule.fork;
    if (!plan || !services.audioForks) return undefined;
    const transcribed = (name: string | undefined): string | undefined => (name !== undefined && parties.some((p) => p.name === name) ? name : undefined);
    const channels = [transcribed(call.channels[0]), transcribed(call.channels[1])] as const;
    const label = (name: string | undefined): string | null => (name === undefined ? null : (parties.find((p) => p.name === name)?.label ?? name));
    const playback = this.playbackValue?.to('caller');
    if (!playback && plan.bidirectional) this.log.warn('audio fork bidirectional playback refused: the call has no party to play to');
    return services.audioForks(
      {
        plan,
        channels,
        metadata: {
          callSid: this.callId,
          ...(inbound.from !== undefined ? { from: inbound.from } : {}),
          ...(inbound.to !== undefined ? { to: inbound.to } : {}),
          ...(inbound.requestUri !== undefined ? { requestUri: inbound.requestUri } : {}),
          direction: 'inbound',
          parties: channels.filter((c) => c !== undefined).map((c) => label(c)),
          channels: channels.map((c) => label(c)),
          rule: rule.name,
          labels: rule.labels,
        },
      },
      playback,
      this.log,
    );
  }

  /** A voice application's `listen`: the caller's audio to its WebSocket until closed (or the call ends). */
  private openListen(plan: AudioForkPlan, metadata: Readonly<Record<string, unknown>>): { close(): Promise<void> } {
    const fork = this.deps.services.audioForks!({ plan, channels: ['caller', undefined], metadata }, this.playbackValue?.to('caller'), this.log);
    this.listens.add(fork);
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        this.listens.delete(fork);
        await fork.close();
      })());
    this.cleanups.push({ what: 'listen close', run: close });
    return { close };
  }

  /** A party's 16 kHz frame: to its transcript, and to the audio forks out when there are some. */
  private onFrame(party: string, frame: AudioFrame): void {
    this.inputs.get(party)?.push(frame);
    this.fork?.push(frame);
    for (const listen of this.listens) listen.push(frame);
  }

  private async doClose(reason: CallEndReason, cause: WhisperlineError | undefined): Promise<void> {
    const was = this.stateValue;
    const connected = was.name === 'active' ? was.call : undefined;
    this.stateValue = { name: 'closing', reason };
    this.resolveConnected();
    this.setup.abort();
    this.log.info({ reason, ...(cause ? { code: cause.code } : {}) }, 'call ending');
    const step = async <T>(what: string, run: () => Promise<T> | T): Promise<T | undefined> => {
      try {
        return await run();
      } catch (err) {
        this.log.warn({ err, step: what }, 'call clean-up step failed');
        return undefined;
      }
    };
    // A gateway-initiated ending of an answered call (shutdown) says its ending prompts first.
    const { rule } = this.deps;
    if (connected && reason === 'shutdown' && rule.action === 'answer' && rule.say && rule.say.ending.length > 0 && this.speaker) {
      await step('ending prompts', () => withinMs(this.sayAll(rule.say!.ending, rule.say!), ENDING_PROMPT_LIMIT_MS));
    }
    if (this.ivr) {
      this.ivr.close();
      // The application hears how the call ended, as jambonz tells it (completed, with its duration).
      this.ivr.status('completed', { duration: Math.round((performance.now() - this.answeredAtPerf) / 1000), hangup_reason: reason });
    }
    this.interpreter?.close();
    this.speaker?.close();
    // Signalling first, so the far ends stop sending and stop waiting. Nothing is sent over a
    // drachtio connection that is gone.
    let sipStatus: number | undefined;
    if (!connected) {
      if (reason === 'cancel') sipStatus = 487;
      else if (reason !== 'disconnect') sipStatus = await step('reject', () => this.deps.inbound.reject({ reason, ...(cause ? { cause } : {}) }));
    } else if (reason !== 'disconnect') {
      if (reason !== 'bye-caller') await step('bye caller', () => this.deps.inbound.bye());
      await step('hang up', () => connected.hangUp(reason));
    }
    // Playback stops while rtpengine still has the call; the stream out gets its last frames.
    if (this.playbackValue) await step('playback close', () => this.playbackValue!.close());
    const stats = (await step('media close', () => this.media.close())) ?? {};
    if (this.fork) await step('audio fork close', () => this.fork!.close());
    for (const c of this.cleanups.splice(0).reverse()) await step(c.what, c.run);
    const durationMs = connected ? Math.round(performance.now() - this.answeredAtPerf) : 0;
    // The last finals of what was heard, then `call.ended` (for a call that never started too).
    await this.transcript.end({
      reason,
      ...(sipStatus !== undefined ? { sipStatus } : {}),
      ...(cause ? { error: { code: cause.code, message: cause.message } } : {}),
      parties: stats,
      durationMs,
    });
    this.stateValue = { name: 'closed', reason, durationMs, sipStatus };
    this.log.info({ reason, durationMs, ...(sipStatus !== undefined ? { sipStatus } : {}) }, 'call ended');
    this.resolveEnded(reason);
  }
}

/** Resolves with `value` once `signal` aborts. */
function aborted<T>(signal: AbortSignal, value: T): Promise<T> {
  return new Promise((resolve) => (signal.aborted ? resolve(value) : signal.addEventListener('abort', () => resolve(value), { once: true })));
}

/** `work`, or nothing once `ms` have passed (it goes on, unawaited). */
function withinMs(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([work.then(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}
