import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parse as parseSdp } from 'sdp-transform';
import type { SpeechRecognizer } from '../asr/recognizer.js';
import type { AudioFrame } from '../audio/frame.js';
import { PartyAudio } from '../audio/party-audio.js';
import type { FeedsConfig, TranscriptsConfig, VadConfig } from '../config/schema.js';
import { AudioForkOut, type AudioForkStats, type ForkTotals } from '../feeds/audio-fork.js';
import { RtpenginePlayer } from '../media/rtpengine/player.js';
import { callLogger, type Logger } from '../log.js';
import type { MediaSubscriber, MediaSubscription } from '../media/subscription.js';
import type { MediaSink, PartyRtpStats } from '../media/rtp/party-stream.js';
import type { RtpPartyPort, RtpReceiver } from '../media/rtp/receiver.js';
import type { RtpengineClient } from '../media/rtpengine/client.js';
import { answerDirection, answerSdp, answerSdpStreams, chooseCodec, offeredPayloadTypes, type AnsweredStream } from '../media/sdp.js';
import { payloadMapFromSdp } from '../media/rtp/payload-map.js';
import type { SiprecOffer } from '../sip/siprec.js';
import { CallPipeline, type PartyInput } from '../pipeline/call-pipeline.js';
import type { KeywordAlerts } from '../transcripts/alerts.js';
import type { DialplanRule } from '../sip/dialplan.js';
import type { BatchedVad } from '../vad/batched-vad.js';
import type { CallEndReason, CallEvent, CallParty } from '../transcripts/events.js';
import type { InboundLeg, OutboundDialer, OutboundLeg } from './signalling.js';

export interface CallSessionDeps {
  readonly inbound: InboundLeg;
  readonly rule: DialplanRule;
  readonly rtpengine: RtpengineClient;
  readonly receiver: RtpReceiver;
  readonly subscriber: MediaSubscriber;
  readonly vad: BatchedVad;
  readonly recognizer: SpeechRecognizer;
  readonly vadConfig: VadConfig;
  readonly transcripts: TranscriptsConfig;
  readonly logger: Logger;
  readonly onEvent: (event: CallEvent) => void;
  /** Needed for `bridge` rules. */
  readonly dialer?: OutboundDialer;
  /** `siprec` rules: the recording offer (streams and their participants); `inbound.offer` is its SDP. */
  readonly siprec?: SiprecOffer;
  /** Codec asked of rtpengine for recorded streams whose codec the gateway does not decode. */
  readonly forkCodec?: 'PCMU' | 'opus';
  /** Keyword alert rules applied to this call's finals. */
  readonly alerts?: KeywordAlerts;
  /** Gateway-wide audio fork settings; a rule's `fork` opens one per call only when this is given. */
  readonly forkOut?: FeedsConfig['fork'];
  /** Extra call metadata for the audio fork's first frame (e.g. `from`, `to` of the INVITE). */
  readonly forkMetadata?: Readonly<Record<string, unknown>>;
  /** Gateway-wide fork counters (for /metrics). */
  readonly forkTotals?: ForkTotals;
}

/** A call's state; each variant names what the call holds at that point. */
export type CallState =
  | { readonly name: 'new' }
  | { readonly name: 'anchoring' }
  | { readonly name: 'active'; readonly answeredAt: number }
  | { readonly name: 'closing'; readonly reason: CallEndReason }
  | { readonly name: 'closed'; readonly reason: CallEndReason; readonly durationMs: number };

/** rtpengine options for plain RTP between SIP endpoints on either side. */
const ANCHOR = { replace: ['origin', 'session-connection'], ICE: 'remove', 'transport-protocol': 'RTP/AVP' } as const;

class CallClosedError extends Error {}

/** Whether every audio stream of an SDP offers a codec the gateway decodes. */
function decodableEverywhere(sdp: string): boolean {
  try {
    return parseSdp(sdp)
      .media.filter((m) => m.type === 'audio' && m.port !== 0)
      .every((m) => chooseCodec(m, undefined) !== undefined);
  } catch {
    return false;
  }
}

/**
 * One call: its dialog(s), its rtpengine call, one fork and one pipeline party per transcribed
 * party, and the local media sink when the gateway itself answers. Every resource is registered
 * for release as it is acquired, and every ending (BYE from either side, CANCEL, a failure at any
 * step, shutdown) goes through the one idempotent `close(reason)`, which always deletes the
 * rtpengine call and emits the last finals before `call.ended`.
 */
export class CallSession {
  readonly callId: string;
  private stateValue: CallState = { name: 'new' };
  private readonly log: Logger;
  private readonly cleanups: { what: string; run: () => Promise<void> | void }[] = [];
  private pipeline: CallPipeline | undefined;
  private readonly forks = new Map<string, MediaSubscription>();
  private readonly parties = new Map<string, { input: PartyInput; audio: PartyAudio }>();
  /** The rule's audio fork out (jambonz listen format), once the call is answered. */
  private audioFork: AudioForkOut | undefined;
  private outbound: OutboundLeg | undefined;
  private answered = false;
  private answeredAtPerf = 0;
  private closing: Promise<void> | undefined;
  private readonly localTag = `wl-${randomBytes(4).toString('hex')}`;
  /** Aborted when the call ends before it is answered: cancels an outbound INVITE in progress. */
  private readonly setup = new AbortController();
  private resolveEnded!: (reason: CallEndReason) => void;
  /** Settles once the call is closed and every resource released. */
  readonly ended: Promise<CallEndReason> = new Promise((resolve) => (this.resolveEnded = resolve));

  constructor(private readonly deps: CallSessionDeps) {
    this.callId = deps.inbound.callId;
    this.currentSiprec = deps.siprec;
    this.log = callLogger(deps.logger, this.callId).child({ rule: deps.rule.name });
  }

  get state(): CallState {
    return this.stateValue;
  }

  /** The audio fork out's counters, when the call has one (see `AudioForkStats`). */
  get audioForkStats(): AudioForkStats | undefined {
    return this.audioFork?.stats();
  }

  /** Anchors the media, answers, forks and starts transcription. Rejects if the call ended meanwhile. */
  async start(): Promise<void> {
    if (this.stateValue.name !== 'new') throw new Error(`call ${this.callId} already started`);
    const { inbound, rtpengine, rule } = this.deps;
    this.stateValue = { name: 'anchoring' };
    try {
      // Registered before the offer is sent: a call rtpengine has seen is always deleted.
      this.cleanups.push({ what: 'rtpengine delete', run: () => rtpengine.delete({ 'call-id': this.callId }).then(() => undefined) });
      const offer = await rtpengine.offer({
        'call-id': this.callId,
        'from-tag': inbound.fromTag,
        sdp: inbound.offer,
        ...ANCHOR,
        ...(rule.action === 'siprec' && !decodableEverywhere(inbound.offer) ? { codec: { transcode: [this.deps.forkCodec ?? 'PCMU'] } } : {}),
      });
      this.checkOpen();
      if (rule.action === 'siprec') {
        await this.startRecording(offer.sdp!);
        return;
      }
      const calleeTag = rule.action === 'bridge' ? await this.dialOut(offer.sdp!) : await this.answerLocally(offer.sdp!);
      this.calleeTag = calleeTag;
      this.checkOpen();
      const toCaller = this.outbound
        ? await rtpengine.answer({ 'call-id': this.callId, 'from-tag': inbound.fromTag, 'to-tag': calleeTag, sdp: this.outbound.answer, ...ANCHOR })
        : this.localAnswer!;
      this.checkOpen();
      await inbound.answer(toCaller.sdp!);
      this.answered = true;
      this.answeredAtPerf = performance.now();
      this.stateValue = { name: 'active', answeredAt: Date.now() };
      this.checkOpen();
      await this.startTranscription(calleeTag);
      this.checkOpen();
    } catch (err) {
      if (err instanceof CallClosedError) {
        await this.closing;
        throw new Error(`call ${this.callId} ended while starting (${this.endReason()})`);
      }
      this.log.error({ err }, 'call set-up failed');
      await this.close('failed');
      throw err;
    }
  }

  /** A BYE arrived from one side. */
  remoteBye(side: 'caller' | 'callee'): Promise<void> {
    return this.close(side === 'caller' ? 'bye-caller' : 'bye-callee');
  }

  /** CANCEL before the call was answered. */
  cancel(): Promise<void> {
    return this.close('cancel');
  }

  /**
   * Ends the call for `reason` and releases everything. Idempotent: every ending path calls it,
   * later calls get the same promise.
   */
  close(reason: CallEndReason): Promise<void> {
    return (this.closing ??= this.doClose(reason));
  }

  private endReason(): string {
    const s = this.stateValue;
    return s.name === 'closing' || s.name === 'closed' ? s.reason : 'unknown';
  }

  private checkOpen(): void {
    if (this.closing) throw new CallClosedError();
  }

  /**
   * `siprec` rules: the gateway is the recording server. rtpengine anchors every recorded stream;
   * the gateway's leg receives each one on its own party socket (recvonly, `a=inactive` kept for
   * streams on hold), so each stream is one party, named from the recording metadata.
   */
  private readonly recorded: { party: string; port: RtpPartyPort }[] = [];

  private async startRecording(offerSdp: string): Promise<void> {
    const { deps } = this;
    const media = parseSdp(offerSdp).media;
    const streams = deps.siprec?.streams ?? [];
    const pipeline = this.newPipeline();
    const parties: CallParty[] = [];
    const answered: AnsweredStream[] = [];
    for (const [i, m] of media.entries()) {
      if (m.type !== 'audio') continue;
      const name = streams.find((s) => s.mediaIndex === i)?.partyLabel ?? `stream${i + 1}`;
      const input = pipeline.addParty(name);
      const audio = new PartyAudio(name, (frame) => this.tap(input, frame), { callClock: (arrivalMs) => arrivalMs - this.answeredAtPerf });
      const port = await deps.receiver.openParty(new Map(), this.mediaSink(name, audio));
      this.recorded.push({ party: name, port });
      const codecPt = chooseCodec(m, undefined)?.payloadType ?? offeredPayloadTypes(m)[0]!;
      answered.push({ offer: m, codecPt, port: port.port, direction: answerDirection(m.direction, 'recvonly') });
      parties.push({ name });
    }
    if (answered.length === 0) throw new Error('SIPREC offer has no audio stream');
    const localSdp = answerSdpStreams(answered, deps.receiver.address);
    this.recorded.forEach((r, k) => r.port.stream.setPayloadMap(payloadMapFromSdp(localSdp, k)));
    const toSrc = await deps.rtpengine.answer({ 'call-id': this.callId, 'from-tag': deps.inbound.fromTag, 'to-tag': this.localTag, sdp: localSdp, ...ANCHOR });
    this.checkOpen();
    await deps.inbound.answer(toSrc.sdp!);
    this.answered = true;
    this.answeredAtPerf = performance.now();
    this.stateValue = { name: 'active', answeredAt: Date.now() };
    // A recording has no party to play into: the fork only streams.
    this.openAudioFork([this.recorded[0]?.party, this.recorded[1]?.party], parties, undefined);
    deps.onEvent({ kind: 'call.started', callId: this.callId, seq: pipeline.seq.next(), rule: deps.rule.name, labels: deps.rule.labels, parties });
  }

  /** `answer` rules: the gateway is the callee; its leg is a sink socket (it hears the caller through the fork). */
  private localAnswer: { sdp?: string } | undefined;
  private sink: { address: string; port: number } | undefined;
  private calleeTag = '';

  private async answerLocally(offerSdp: string): Promise<string> {
    const sink = await this.deps.receiver.openSink();
    this.cleanups.push({ what: 'media sink', run: () => sink.close() });
    this.sink = sink;
    this.localAnswer = await this.deps.rtpengine.answer({
      'call-id': this.callId,
      'from-tag': this.deps.inbound.fromTag,
      'to-tag': this.localTag,
      sdp: this.sinkAnswer(offerSdp),
      ...ANCHOR,
    });
    return this.localTag;
  }

  /** The gateway leg's answer to an rtpengine offer: its sink socket, the offer's direction mirrored. */
  private sinkAnswer(offerSdp: string): string {
    const media = parseSdp(offerSdp).media.find((m) => m.type === 'audio');
    if (!media) throw new Error('rtpengine offer has no audio');
    const pt = chooseCodec(media, undefined)?.payloadType ?? offeredPayloadTypes(media)[0]!;
    return answerSdp(media, pt, this.sink!.address, this.sink!.port, answerDirection(media.direction, 'sendrecv'));
  }

  /**
   * A re-INVITE from one side (hold, resume, codec change): offered through rtpengine to the other
   * side (or answered by the gateway's own leg), answered back through rtpengine, then every fork
   * is subscribed afresh so transcription follows the new media. Resolves with the SDP answer for
   * the side that sent it.
   */
  async reinvite(from: 'caller' | 'callee', offerSdp: string, siprecUpdate?: SiprecOffer): Promise<string> {
    if (this.stateValue.name !== 'active') throw new Error(`call ${this.callId} is ${this.stateValue.name}: re-INVITE refused`);
    const { rtpengine, inbound } = this.deps;
    if (this.deps.rule.action === 'siprec') return this.rerecord(offerSdp, siprecUpdate);
    const [fromTag, toTag] = from === 'caller' ? [inbound.fromTag, this.calleeTag] : [this.calleeTag, inbound.fromTag];
    const offer = await rtpengine.offer({ 'call-id': this.callId, 'from-tag': fromTag, 'to-tag': toTag, sdp: offerSdp, ...ANCHOR });
    const otherAnswer =
      from === 'callee' ? await inbound.modify(offer.sdp!) : this.outbound ? await this.outbound.modify(offer.sdp!) : this.sinkAnswer(offer.sdp!);
    const answer = await rtpengine.answer({ 'call-id': this.callId, 'from-tag': fromTag, 'to-tag': toTag, sdp: otherAnswer, ...ANCHOR });
    await this.resubscribe();
    const direction = parseSdp(offerSdp).media.find((m) => m.type === 'audio')?.direction;
    const hold = direction === 'sendonly' || direction === 'inactive';
    this.log.info({ by: from, hold }, 'media renegotiated');
    if (this.pipeline) this.deps.onEvent({ kind: 'call.updated', callId: this.callId, seq: this.pipeline.seq.next(), by: from, hold });
    return answer.sdp!;
  }

  /**
   * A recording client's re-INVITE (hold with `a=inactive`, resume, updated metadata): the same
   * party sockets answer the new offer; streams beyond the original ones are declined (port 0).
   */
  /** The recording offer in force (updated by re-INVITEs): the base for parsing the next update. */
  get siprecOffer(): SiprecOffer | undefined {
    return this.currentSiprec;
  }

  private currentSiprec: SiprecOffer | undefined;

  private async rerecord(offerSdp: string, update?: SiprecOffer): Promise<string> {
    const { rtpengine, inbound } = this.deps;
    const offer = await rtpengine.offer({ 'call-id': this.callId, 'from-tag': inbound.fromTag, 'to-tag': this.localTag, sdp: offerSdp, ...ANCHOR });
    const media = parseSdp(offer.sdp!).media.filter((m) => m.type === 'audio');
    const answered: AnsweredStream[] = media.map((m, i) => ({
      offer: m,
      codecPt: chooseCodec(m, undefined)?.payloadType ?? offeredPayloadTypes(m)[0]!,
      port: this.recorded[i]?.port.port ?? 0,
      direction: answerDirection(m.direction, 'recvonly'),
    }));
    const localSdp = answerSdpStreams(answered, this.deps.receiver.address);
    this.recorded.forEach((r, k) => k < media.length && r.port.stream.setPayloadMap(payloadMapFromSdp(localSdp, k)));
    const answer = await rtpengine.answer({ 'call-id': this.callId, 'from-tag': inbound.fromTag, 'to-tag': this.localTag, sdp: localSdp, ...ANCHOR });
    const hold = media.every((m) => m.direction === 'inactive' || m.direction === 'recvonly');
    if (update) this.currentSiprec = update;
    // Parties keep their names for the whole call (transcripts stay attributable); who sends each
    // stream now is reported with the update.
    const participants = update
      ? this.recorded.map((r, i) => {
          const p = update.streams.find((s) => s.mediaIndex === i)?.participant;
          return { party: r.party, ...(p?.name ? { name: p.name } : {}), ...(p?.aor ? { aor: p.aor } : {}) };
        })
      : undefined;
    if (this.pipeline) {
      this.deps.onEvent({ kind: 'call.updated', callId: this.callId, seq: this.pipeline.seq.next(), by: 'caller', hold, ...(participants ? { participants } : {}) });
    }
    return answer.sdp!;
  }

  /** Replaces every fork with a fresh subscription; a party whose fork fails stays silent, the call goes on. */
  private async resubscribe(): Promise<void> {
    for (const [party, old] of [...this.forks]) {
      const audio = this.parties.get(party)?.audio;
      if (!audio) continue;
      await old.close();
      this.forks.delete(party);
      try {
        const fork = await this.deps.subscriber.subscribe(
          { callId: this.callId, fromTag: party === 'caller' ? this.deps.inbound.fromTag : this.calleeTag, label: party },
          this.mediaSink(party, audio),
        );
        this.forks.set(party, fork);
      } catch (err) {
        this.log.warn({ err, party }, 're-subscription failed: party not transcribed until the next renegotiation');
      }
    }
  }

  private async dialOut(offerSdp: string): Promise<string> {
    const { dialer, rule, inbound } = this.deps;
    if (!dialer || !rule.target) throw new Error(`bridge rule ${rule.name} has no dialer or target`);
    let leg: OutboundLeg;
    try {
      leg = await dialer.dial(rule.target, offerSdp, inbound, this.setup.signal);
    } catch (err) {
      // A B leg cancelled because the caller went away is the expected end, not a failure.
      if (this.closing) throw new CallClosedError();
      throw err;
    }
    if (this.closing) {
      // Answered just as the caller went away: that leg is ended with the call.
      await leg.bye().catch(() => undefined);
      throw new CallClosedError();
    }
    this.outbound = leg;
    return leg.toTag;
  }

  private partyPlan(): CallParty[] {
    const { rule } = this.deps;
    const defaults = rule.action === 'bridge' ? ['caller', 'callee'] : ['caller'];
    const planned = rule.parties ?? Object.fromEntries(defaults.map((p) => [p, { transcribe: true }]));
    return Object.entries(planned)
      .filter(([name, p]) => p.transcribe && (name === 'caller' || (name === 'callee' && rule.action === 'bridge')))
      .map(([name, p]) => ({ name, ...(p.label ? { label: p.label } : {}) }));
  }

  private async startTranscription(calleeTag: string): Promise<void> {
    const { deps } = this;
    const parties = this.partyPlan();
    const pipeline = this.newPipeline();
    deps.onEvent({ kind: 'call.started', callId: this.callId, seq: pipeline.seq.next(), rule: deps.rule.name, labels: deps.rule.labels, parties });
    const forked = (name: string): string | undefined => (parties.some((p) => p.name === name) ? name : undefined);
    this.openAudioFork(
      [forked('caller'), forked('callee')],
      parties,
      new RtpenginePlayer({
        rtpengine: deps.rtpengine,
        callId: this.callId,
        listenerTag: deps.inbound.fromTag,
        // A bridged callee is blocked while fork audio plays to the caller (rtpengine 10.5 then
        // also pauses the callee's own fork: see RtpenginePlayerOptions.otherTag).
        ...(deps.rule.action === 'bridge' ? { otherTag: calleeTag } : {}),
        logger: this.log,
      }),
    );
    for (const party of parties) {
      const plan = deps.rule.parties?.[party.name];
      const input = pipeline.addParty(party.name, {
        ...(party.label ? { label: party.label } : {}),
        ...(plan?.language ? { language: plan.language } : {}),
        ...(plan?.translate !== undefined ? { translate: plan.translate } : {}),
      });
      const audio = new PartyAudio(party.name, (frame) => this.tap(input, frame), { callClock: (arrivalMs) => arrivalMs - this.answeredAtPerf });
      this.parties.set(party.name, { input, audio });
      const fork = await deps.subscriber.subscribe(
        { callId: this.callId, fromTag: party.name === 'caller' ? deps.inbound.fromTag : calleeTag, label: party.name },
        this.mediaSink(party.name, audio),
      );
      this.forks.set(party.name, fork);
      this.checkOpen();
    }
  }

  /** A party's 16 kHz frame: to its transcriber, and to the audio fork out when there is one. */
  private tap(input: PartyInput, frame: AudioFrame): void {
    input.push(frame);
    this.audioFork?.push(frame);
  }

  /**
   * Opens the rule's audio fork out, when the rule has one and the gateway is configured for it.
   * `channels` names the left (caller) and right (callee) parties; `player` plays the consumer's
   * audio to the caller (none for recordings). Connecting is asynchronous: the call never waits.
   */
  private openAudioFork(channels: readonly [string | undefined, string | undefined], parties: readonly CallParty[], player: RtpenginePlayer | undefined): void {
    const { rule, forkOut, inbound } = this.deps;
    if (!rule.fork || !forkOut || this.audioFork || this.closing) return;
    const { url, mix = 'stereo', sampleRate = 16000, bidirectional = false } = rule.fork;
    if (!player && bidirectional) this.log.warn({ rule: rule.name }, 'audio fork bidirectional streaming refused: a recording has no party to play to');
    const label = (name: string | undefined): string | null => (name === undefined ? null : (parties.find((p) => p.name === name)?.label ?? name));
    // SIP legs that know the INVITE's From and To expose them; main.ts may also pass them in forkMetadata.
    const leg = inbound as InboundLeg & { readonly from?: unknown; readonly to?: unknown };
    this.audioFork = new AudioForkOut({
      url,
      mix,
      sampleRate,
      bidirectional: bidirectional && player !== undefined,
      channels,
      metadata: {
        callSid: this.callId,
        ...(typeof leg.from === 'string' ? { from: leg.from } : {}),
        ...(typeof leg.to === 'string' ? { to: leg.to } : {}),
        direction: 'inbound',
        parties: channels.filter((c) => c !== undefined).map((c) => label(c)),
        channels: channels.map((c) => label(c)),
        rule: rule.name,
        labels: rule.labels,
        ...this.deps.forkMetadata,
      },
      config: forkOut,
      ...(this.deps.forkTotals ? { totals: this.deps.forkTotals } : {}),
      ...(player ? { player } : {}),
      logger: this.log,
    });
  }

  /** The call's pipeline, with the rule's transcript settings over the configuration. */
  private newPipeline(): CallPipeline {
    const { deps } = this;
    const pipeline = new CallPipeline({
      callId: this.callId,
      vad: deps.vad,
      recognizer: deps.recognizer,
      vadConfig: deps.vadConfig,
      transcripts: {
        ...deps.transcripts,
        ...(deps.rule.language ? { language: deps.rule.language } : {}),
        ...(deps.rule.partials !== undefined ? { partials: deps.rule.partials } : {}),
        ...(deps.rule.translate !== undefined ? { translate: deps.rule.translate } : {}),
      },
      logger: this.log,
      ...(deps.alerts ? { alerts: deps.alerts } : {}),
      onEvent: (e) => deps.onEvent(e),
    });
    this.pipeline = pipeline;
    return pipeline;
  }

  private mediaSink(party: string, audio: PartyAudio): MediaSink {
    return {
      audio: (format, ts, payload, lost, arrival) => audio.audio(format, ts, payload, lost, arrival),
      comfortNoise: (level) => audio.comfortNoise(level),
      streamChange: (ssrc, arrival) => audio.streamChange(ssrc, arrival),
      dtmf: (e) => {
        this.log.info({ party, digit: e.digit, durationMs: e.durationMs }, 'dtmf');
        this.deps.onEvent({ kind: 'dtmf', callId: this.callId, seq: this.pipeline!.seq.next(), party, digit: e.digit, durationMs: e.durationMs, endLost: e.endLost });
      },
      end: () => audio.end(),
    };
  }

  private async doClose(reason: CallEndReason): Promise<void> {
    const wasAnswered = this.answered;
    this.stateValue = { name: 'closing', reason };
    this.setup.abort();
    this.log.info({ reason }, 'call ending');
    const step = async (what: string, run: () => Promise<unknown> | unknown): Promise<void> => {
      try {
        await run();
      } catch (err) {
        this.log.warn({ err, step: what }, 'call clean-up step failed');
      }
    };
    // Signalling first, so the far ends stop sending and stop waiting.
    if (!wasAnswered && reason !== 'cancel') {
      await step('reject', () => this.deps.inbound.reject(reason === 'shutdown' ? 503 : 500, reason === 'shutdown' ? 'Service Unavailable' : 'Server Internal Error'));
    }
    if (wasAnswered && reason !== 'bye-caller') await step('bye caller', () => this.deps.inbound.bye());
    if (this.outbound && reason !== 'bye-callee') await step('bye callee', () => this.outbound!.bye());
    // Forks end (their last frames reach the pipeline), then the pipeline emits its last finals.
    const stats: Record<string, PartyRtpStats> = {};
    for (const [party, fork] of this.forks) {
      stats[party] = fork.stats();
      await step(`unsubscribe ${party}`, () => fork.close());
    }
    for (const { party, port } of this.recorded) {
      stats[party] = port.stats();
      port.close();
    }
    // The fork out has its parties' last frames now; it stops its playback while rtpengine still has the call.
    if (this.audioFork) await step('audio fork close', () => this.audioFork!.close());
    if (this.pipeline) await step('pipeline end', () => this.pipeline!.end(reason));
    for (const c of this.cleanups.splice(0).reverse()) await step(c.what, c.run);
    const durationMs = wasAnswered ? Math.round(performance.now() - this.answeredAtPerf) : 0;
    this.stateValue = { name: 'closed', reason, durationMs };
    if (this.pipeline) {
      this.deps.onEvent({ kind: 'call.ended', callId: this.callId, seq: this.pipeline.seq.next(), reason, durationMs, parties: stats });
    }
    this.log.info({ reason, durationMs }, 'call ended');
    this.resolveEnded(reason);
  }
}
