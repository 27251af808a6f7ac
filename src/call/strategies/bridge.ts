import { offerHolds, sameSessionVersion } from '../../media/sdp.js';
import { WhisperlineError } from '../../errors.js';
import type { CallEndReason } from '../../transcripts/events.js';
import { CallEndedError } from '../errors.js';
import type { BridgeRule } from '../rule.js';
import type { OutboundDialer, OutboundLeg } from '../signalling.js';
import type { CallContext, CallStrategy, ConnectedCall, Renegotiation, Side } from '../strategy.js';
import { adoptCallerAnswer, answerCaller, callerOffer } from './common.js';

/**
 * `bridge` rules: a B2BUA to the rule's target. Both legs are anchored in rtpengine; the caller
 * hears the callee ring; a CANCEL from the caller cancels the ringing outbound INVITE; the
 * callee's final error response fails the call with CALLEE_REJECTED (relayed by the SIP edge).
 * A caller's delayed offer is anchored from the gateway's stand-in, so the callee is offered
 * rtpengine's SDP as usual; the caller gets rtpengine's side of what the callee answered as the
 * offer of its 200 OK, and its answer from the ACK takes the stand-in's place.
 */
export class BridgeStrategy implements CallStrategy {
  constructor(
    private readonly rule: BridgeRule,
    private readonly dialer: OutboundDialer,
  ) {}

  async connect(ctx: CallContext): Promise<ConnectedCall> {
    const { inbound, anchor } = ctx;
    const fromCaller = callerOffer(ctx);
    const offer = await anchor.offer({ fromTag: inbound.fromTag, sdp: fromCaller, initial: true });
    ctx.checkOpen('anchoring');
    let leg: OutboundLeg;
    try {
      leg = await this.dialer.dial(this.rule.target, offer, inbound, ctx.signal);
    } catch (err) {
      // An outbound INVITE cancelled because the caller went away is the expected end, not a failure.
      ctx.checkOpen('calling the callee');
      throw err instanceof WhisperlineError ? err : new WhisperlineError('CALLEE_UNREACHABLE', `the call to ${this.rule.target} failed: ${String(err)}`, { cause: err });
    }
    try {
      // Answered just as the caller went away: that leg is ended with the call.
      if (ctx.signal.aborted) throw new CallEndedError(ctx.callId, 'calling the callee');
      const toCaller = await anchor.answer({ fromTag: inbound.fromTag, toTag: leg.toTag, sdp: leg.answer });
      ctx.checkOpen('answering');
      for (const [party, tag] of [['caller', inbound.fromTag], ['callee', leg.toTag]] as const) {
        if (!ctx.transcribes(party)) continue;
        await ctx.media.subscribe(party, tag);
        ctx.checkOpen('subscribing');
      }
      const callerAnswer = await answerCaller(ctx, toCaller);
      const call = new BridgedCall(ctx, leg, { towards: { caller: toCaller, callee: offer }, from: { caller: fromCaller, callee: leg.answer } });
      await adoptCallerAnswer(ctx, call, callerAnswer);
      return call;
    } catch (err) {
      await leg.bye().catch((byeErr: unknown) => ctx.log.warn({ err: byeErr }, 'BYE to the callee of a failed bridge failed'));
      throw err;
    }
  }
}

/**
 * An active bridge: it holds its outbound leg. A bridge rule's call is one from its answer; an
 * answered call that a voice application `dial`s is one while the dialed leg lasts.
 */
export class BridgedCall implements ConnectedCall {
  readonly parties = ['caller', 'callee'] as const;
  readonly playbackTags;
  readonly channels: readonly [string | undefined, string | undefined] = ['caller', 'callee'];

  constructor(
    private readonly ctx: CallContext,
    readonly outbound: OutboundLeg,
    /** Per side, the SDP last sent to it and its own latest. */
    readonly sdp: { readonly towards: Record<Side, string>; readonly from: Record<Side, string> },
  ) {
    this.playbackTags = { caller: ctx.inbound.fromTag, callee: outbound.toTag };
  }

  private tagOf(side: Side): string {
    return side === 'caller' ? this.ctx.inbound.fromTag : this.outbound.toTag;
  }

  /** A re-INVITE from one side, offered through rtpengine to the other side and answered back. */
  async reinvite(from: Side, offerSdp: string): Promise<Renegotiation> {
    const { anchor, inbound, media } = this.ctx;
    const fromTag = this.tagOf(from);
    const toTag = this.tagOf(from === 'caller' ? 'callee' : 'caller');
    const other = from === 'caller' ? 'callee' : 'caller';
    const offer = await anchor.offer({ fromTag, toTag, sdp: offerSdp, initial: false });
    const otherAnswer = from === 'callee' ? await inbound.modify(offer) : await this.outbound.modify(offer);
    const answer = await anchor.answer({ fromTag, toTag, sdp: otherAnswer });
    Object.assign(this.sdp.towards, { [other]: offer, [from]: answer });
    Object.assign(this.sdp.from, { [from]: offerSdp, [other]: otherAnswer });
    await media.resubscribe();
    return { answer, hold: offerHolds(offerSdp) };
  }

  sdpTowards(side: Side): string {
    return this.sdp.towards[side];
  }

  /**
   * One side's answer to the gateway's offer (a delayed offer's or a refresh's ACK): rtpengine
   * learns it as that side's new SDP and is answered with the other side's latest, which has not
   * changed, so the other side is not re-INVITEd.
   */
  async adopt(side: Side, answer: string): Promise<{ readonly hold: boolean } | undefined> {
    if (sameSessionVersion(this.sdp.from[side], answer)) return undefined;
    const other = side === 'caller' ? 'callee' : 'caller';
    const { anchor, media } = this.ctx;
    const fromTag = this.tagOf(side);
    const toTag = this.tagOf(other);
    await anchor.offer({ fromTag, toTag, sdp: answer, initial: false });
    await anchor.answer({ fromTag, toTag, sdp: this.sdp.from[other] });
    this.sdp.from[side] = answer;
    await media.resubscribe();
    return { hold: offerHolds(answer) };
  }

  async hangUp(reason: CallEndReason): Promise<void> {
    if (reason !== 'bye-callee') await this.outbound.bye();
  }
}
