import { randomBytes } from 'node:crypto';
import { WhisperlineError } from '../../errors.js';
import { SinkLeg } from '../../media/local-legs.js';
import { offerHolds, sameSessionVersion } from '../../media/sdp.js';
import type { CallContext, CallStrategy, ConnectedCall, Renegotiation, Side } from '../strategy.js';
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

class AnsweredCall implements ConnectedCall {
  readonly parties = ['caller'] as const;
  readonly playbackTags;
  readonly channels: readonly [string | undefined, string | undefined] = ['caller', undefined];

  constructor(
    private readonly ctx: CallContext,
    private readonly sink: SinkLeg,
    private readonly localTag: string,
    /** The SDP last sent to the caller, and the caller's own latest. */
    private readonly sdp: { towards: string; from: string },
  ) {
    this.playbackTags = { caller: ctx.inbound.fromTag };
  }

  /** The caller's re-INVITE, offered through rtpengine to the gateway's own leg, which answers it. */
  async reinvite(_from: Side, offerSdp: string): Promise<Renegotiation> {
    const answer = await this.renegotiate(offerSdp);
    this.sdp.towards = answer;
    return { answer, hold: offerHolds(offerSdp) };
  }

  sdpTowards(side: Side): string {
    if (side !== 'caller') throw new WhisperlineError('CALL_STATE', `an answered call has no ${side}`);
    return this.sdp.towards;
  }

  /** The caller's answer to the gateway's offer: rtpengine learns it as the caller's new SDP; the caller already has the gateway's side. */
  async adopt(_side: Side, answer: string): Promise<{ readonly hold: boolean } | undefined> {
    if (sameSessionVersion(this.sdp.from, answer)) return undefined;
    await this.renegotiate(answer);
    return { hold: offerHolds(answer) };
  }

  async hangUp(): Promise<void> {}

  private async renegotiate(callerSdp: string): Promise<string> {
    const { anchor, inbound, media } = this.ctx;
    const offer = await anchor.offer({ fromTag: inbound.fromTag, toTag: this.localTag, sdp: callerSdp, initial: false, towards: familyOf(this.ctx.receiver.address) });
    const answer = await anchor.answer({ fromTag: inbound.fromTag, toTag: this.localTag, sdp: this.sink.answer(offer) });
    this.sdp.from = callerSdp;
    await media.resubscribe();
    return answer;
  }
}
