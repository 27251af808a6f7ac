import { randomBytes } from 'node:crypto';
import { WhisperlineError } from '../../errors.js';
import { SinkLeg } from '../../media/local-legs.js';
import { narrowedToAnswered, offerHolds, preferredCodec, sameSessionVersion } from '../../media/sdp.js';
import type { Logger } from '../../log.js';
import type { CallEndReason } from '../../transcripts/events.js';
import type { DialOptions, OutboundDialer, OutboundLeg } from '../signalling.js';
import type { CallContext, CallStrategy, ConnectedCall, Renegotiation, Side } from '../strategy.js';
import { BridgedCall } from './bridge.js';
import { adoptCallerAnswer, answerCaller, callerOffer, familyOf } from './common.js';

/**
 * `answer` rules: the gateway is the called party. rtpengine anchors the call; the gateway's leg
 * is a sink socket (it hears the caller through a subscription); prompts play to the caller.
 * A delayed offer is anchored from the gateway's stand-in, offered to the caller in the 200 OK,
 * and the caller's answer from the ACK then takes the stand-in's place.
 */
export class AnswerStrategy implements CallStrategy {
  async connect(ctx: CallContext): Promise<ConnectedCall> {
    const { inbound, anchor } = ctx;
    const localTag = `wl-${randomBytes(4).toString('hex')}`;
    const fromCaller = callerOffer(ctx);
    // The offer towards the gateway's own socket is in the socket's address family.
    const offer = await anchor.offer({ fromTag: inbound.fromTag, sdp: fromCaller, initial: true, towards: familyOf(ctx.receiver.address) });
    const sink = await SinkLeg.open(ctx.receiver);
    ctx.defer('media sink', () => sink.close());
    ctx.checkOpen('anchoring');
    // A delayed offer's 200 OK offers the caller every codec the gateway takes.
    const toCaller = await anchor.answer({ fromTag: inbound.fromTag, toTag: localTag, sdp: sink.answer(offer, { everyCodec: inbound.offer === undefined }) });
    ctx.checkOpen('anchoring');
    if (ctx.transcribes('caller')) await ctx.media.subscribe('caller', inbound.fromTag);
    ctx.checkOpen('subscribing');
    const callerAnswer = await answerCaller(ctx, toCaller);
    const call = new AnsweredCall(ctx, sink, localTag, { towards: toCaller, from: fromCaller });
    await adoptCallerAnswer(ctx, call, callerAnswer);
    return call;
  }
}

/**
 * An answered call: the caller and the gateway's sink leg. A voice application's `dial` bridges
 * the caller to a dialed leg for a while (`bridgeTo` … `unbridge`); meanwhile the call's
 * renegotiations are the bridge's, and the caller comes back to the sink leg afterwards. The
 * caller is not re-INVITEd for it: rtpengine keeps relaying the port the caller already sends
 * to, and the callee is offered the codec the caller sends (measured with rtpengine 10.5; see
 * ../shared/notes/rtpengine.md).
 */
class AnsweredCall implements ConnectedCall {
  readonly parties = ['caller'] as const;
  readonly playbackTags;
  readonly channels: readonly [string | undefined, string | undefined] = ['caller', undefined];
  /** The dialed leg the caller is bridged to, while there is one. */
  private bridged: BridgedCall | undefined;
  /** Set while a `bridgeTo` is under way (one dial at a time). */
  private bridging = false;

  constructor(
    private readonly ctx: CallContext,
    private readonly sink: SinkLeg,
    private readonly localTag: string,
    /** The SDP last sent to the caller, and the caller's own latest. */
    private readonly sdp: { towards: string; from: string },
  ) {
    this.playbackTags = { caller: ctx.inbound.fromTag };
  }

  /** The caller's re-INVITE: to the dialed leg while bridged, else through rtpengine to the gateway's own leg. */
  async reinvite(from: Side, offerSdp: string): Promise<Renegotiation> {
    if (this.bridged) return this.bridged.reinvite(from, offerSdp);
    if (from !== 'caller') throw new WhisperlineError('CALL_STATE', 'an answered call has no callee to re-INVITE from');
    const answer = await this.renegotiate(offerSdp);
    this.sdp.towards = answer;
    return { answer, hold: offerHolds(offerSdp) };
  }

  sdpTowards(side: Side): string {
    if (this.bridged) return this.bridged.sdpTowards(side);
    if (side !== 'caller') throw new WhisperlineError('CALL_STATE', `an answered call has no ${side}`);
    return this.sdp.towards;
  }

  /** The caller's answer to the gateway's offer: rtpengine learns it as the caller's new SDP; the caller already has the gateway's side. */
  async adopt(side: Side, answer: string): Promise<{ readonly hold: boolean } | undefined> {
    if (this.bridged) return this.bridged.adopt(side, answer);
    if (sameSessionVersion(this.sdp.from, answer)) return undefined;
    await this.renegotiate(answer);
    return { hold: offerHolds(answer) };
  }

  /** The call ends: a dialed leg still up gets its BYE. */
  async hangUp(reason: CallEndReason): Promise<void> {
    const bridged = this.bridged;
    this.bridged = undefined;
    await bridged?.hangUp(reason);
  }

  /**
   * Dials every target at once and bridges the caller to the first that answers: rtpengine offers
   * the callees the caller's media (narrowed to the codec the caller sends now, plus G.711 that
   * rtpengine transcodes to, for a callee that does not take the caller's codec); the winner's
   * answer pairs the two, the other INVITEs are CANCELled (a late 200 OK gets a BYE). Rejects as
   * the dialer does (CALLEE_REJECTED with the status of the last target to refuse,
   * CALLEE_UNREACHABLE, or when `signal` aborted the INVITEs), the caller back on the gateway's
   * leg then.
   */
  async bridgeTo(targets: readonly string[], dialer: OutboundDialer, signal: AbortSignal, options: DialOptions = {}): Promise<{ leg: OutboundLeg; target: string }> {
    if (this.bridged || this.bridging) throw new WhisperlineError('CALL_STATE', 'the call is already bridged to a dialed leg');
    if (targets.length === 0) throw new WhisperlineError('CALL_STATE', 'dial: no target');
    this.bridging = true;
    const { anchor, inbound } = this.ctx;
    // The dialed leg's tag in rtpengine is the gateway's own, given with the offer: rtpengine then
    // gives the callee a monologue (ports, a fork) of its own. An offer without one re-uses the
    // sink leg's, whose fork would carry the callee's audio under the sink's tag.
    const mediaTag = `wl-dial-${randomBytes(4).toString('hex')}`;
    try {
      const callerSends = narrowedToAnswered(this.sdp.from, this.sdp.towards);
      // The callee may answer the other G.711 law (or G.711 to an Opus caller): rtpengine then transcodes.
      const transcodeTo = preferredCodec(callerSends) === 'PCMU' ? 'PCMA' : 'PCMU';
      const offer = await anchor.offer({ fromTag: inbound.fromTag, toTag: mediaTag, sdp: callerSends, initial: false, transcodeTo });
      let answered: { leg: OutboundLeg; target: string };
      try {
        answered = await firstToAnswer(targets, (target, branch) => dialer.dial(target, offer, inbound, branch, { ...options, relayProgress: false }), signal, this.ctx.log);
      } catch (err) {
        await this.reattach();
        throw err;
      }
      const sipLeg = answered.leg;
      // The leg as the call's media knows it: by the gateway's tag in rtpengine.
      const leg: OutboundLeg = { toTag: mediaTag, answer: sipLeg.answer, bye: () => sipLeg.bye(), modify: (sdp) => sipLeg.modify(sdp) };
      try {
        this.ctx.checkOpen('dialing');
        await anchor.answer({ fromTag: inbound.fromTag, toTag: mediaTag, sdp: leg.answer });
      } catch (err) {
        await leg.bye().catch((byeErr: unknown) => this.ctx.log.warn({ err: byeErr }, 'BYE to a dialed leg that could not be bridged failed'));
        if (!this.ctx.signal.aborted) await this.reattach();
        throw err;
      }
      // The caller keeps the SDP it has: rtpengine goes on relaying the port it sends to (it
      // answers with a new one, which the caller is not told about).
      this.bridged = new BridgedCall(this.ctx, leg, { towards: { caller: this.sdp.towards, callee: offer }, from: { caller: this.sdp.from, callee: leg.answer } });
      return { leg, target: answered.target };
    } finally {
      this.bridging = false;
    }
  }

  /**
   * Ends the bridge of `bridgeTo`: a BYE to the dialed leg unless it sent one, then the caller is
   * paired with the gateway's leg again. Idempotent.
   */
  async unbridge(options: { readonly calleeHungUp: boolean }): Promise<void> {
    const bridged = this.bridged;
    if (!bridged) return;
    this.bridged = undefined;
    // What the caller has and sends now (a hold during the bridge changed it).
    this.sdp.towards = bridged.sdp.towards.caller;
    this.sdp.from = bridged.sdp.from.caller;
    if (!options.calleeHungUp) await bridged.outbound.bye().catch((err: unknown) => this.ctx.log.warn({ err }, 'BYE to the dialed leg failed'));
    await this.reattach();
  }

  /** The caller paired with the gateway's own leg again (after a dial). */
  private async reattach(): Promise<void> {
    await this.renegotiate(this.sdp.from);
  }

  private async renegotiate(callerSdp: string): Promise<string> {
    const { anchor, inbound, media } = this.ctx;
    const offer = await anchor.offer({ fromTag: inbound.fromTag, toTag: this.localTag, sdp: callerSdp, initial: false, towards: familyOf(this.ctx.receiver.address) });
    const answer = await anchor.answer({ fromTag: inbound.fromTag, toTag: this.localTag, sdp: this.sink.answer(offer) });
    this.sdp.from = callerSdp;
    await media.resubscribe();
    return answer;
  }
}

/**
 * Simultaneous ring: `dial` for every target, each INVITE with its own abort; the first 200 OK
 * wins and the others are CANCELled (a 200 OK that comes after the winner's gets a BYE, RFC 3261
 * §13.2.2.4). Rejects with the last refusal once every target refused, or when `signal` aborts.
 */
function firstToAnswer(
  targets: readonly string[],
  dial: (target: string, branch: AbortSignal) => Promise<OutboundLeg>,
  signal: AbortSignal,
  log: Logger,
): Promise<{ leg: OutboundLeg; target: string }> {
  const branches = targets.map(() => new AbortController());
  const cancelAll = (): void => branches.forEach((b) => b.abort());
  signal.addEventListener('abort', cancelAll, { once: true });
  return new Promise<{ leg: OutboundLeg; target: string }>((resolve, reject) => {
    let won = false;
    let settled = 0;
    let refusal: unknown;
    const done = (): void => {
      if (++settled < targets.length || won) return;
      signal.removeEventListener('abort', cancelAll);
      reject(refusal ?? new WhisperlineError('CALL_ENDED', 'the dial was cancelled'));
    };
    targets.forEach((target, i) => {
      dial(target, branches[i]!.signal).then(
        (leg) => {
          if (won || signal.aborted) {
            void leg.bye().catch((err: unknown) => log.warn({ err, target }, 'BYE to a dialed leg that answered too late failed'));
            return done();
          }
          won = true;
          signal.removeEventListener('abort', cancelAll);
          branches.forEach((b, j) => j !== i && b.abort());
          resolve({ leg, target });
        },
        (err: unknown) => {
          refusal = err;
          done();
        },
      );
    });
  });
}
