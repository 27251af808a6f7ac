import { randomBytes } from 'node:crypto';
import { SinkLeg } from '../../media/local-legs.js';
import { offerHolds } from '../../media/sdp.js';
import type { CallContext, CallStrategy, ConnectedCall, Renegotiation, Side } from '../strategy.js';
import { answerCaller, familyOf } from './common.js';

/**
 * `answer` rules: the gateway is the called party. rtpengine anchors the call; the gateway's leg
 * is a sink socket (it hears the caller through a subscription); prompts play to the caller.
 */
export class AnswerStrategy implements CallStrategy {
  async connect(ctx: CallContext): Promise<ConnectedCall> {
    const { inbound, anchor } = ctx;
    const localTag = `wl-${randomBytes(4).toString('hex')}`;
    // The offer towards the gateway's own socket is in the socket's address family.
    const offer = await anchor.offer({ fromTag: inbound.fromTag, sdp: inbound.offer, initial: true, towards: familyOf(ctx.receiver.address) });
    const sink = await SinkLeg.open(ctx.receiver);
    ctx.defer('media sink', () => sink.close());
    ctx.checkOpen('anchoring');
    const toCaller = await anchor.answer({ fromTag: inbound.fromTag, toTag: localTag, sdp: sink.answer(offer) });
    ctx.checkOpen('anchoring');
    if (ctx.transcribes('caller')) await ctx.media.subscribe('caller', inbound.fromTag);
    ctx.checkOpen('subscribing');
    await answerCaller(ctx, toCaller);
    return new AnsweredCall(ctx, sink, localTag);
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
  ) {
    this.playbackTags = { caller: ctx.inbound.fromTag };
  }

  /** The caller's re-INVITE, offered through rtpengine to the gateway's own leg, which answers it. */
  async reinvite(_from: Side, offerSdp: string): Promise<Renegotiation> {
    const { anchor, inbound, media } = this.ctx;
    const offer = await anchor.offer({ fromTag: inbound.fromTag, toTag: this.localTag, sdp: offerSdp, initial: false, towards: familyOf(this.ctx.receiver.address) });
    const answer = await anchor.answer({ fromTag: inbound.fromTag, toTag: this.localTag, sdp: this.sink.answer(offer) });
    await media.resubscribe();
    return { answer, hold: offerHolds(offerSdp) };
  }

  async hangUp(): Promise<void> {}
}
