import { WhisperlineError } from '../errors.js';
import type { RtpengineClient } from './rtpengine/client.js';
import { checkOffer, sdpFamily } from './sdp.js';

/** The rtpengine commands anchoring uses. */
export type AnchorControl = Pick<RtpengineClient, 'offer' | 'answer' | 'delete'>;

/** rtpengine options for plain RTP between SIP endpoints on either side. */
const ANCHOR = { replace: ['origin', 'session-connection'], ICE: 'remove', 'transport-protocol': 'RTP/AVP' } as const;

/**
 * One call anchored in rtpengine: every offer and answer between its legs passes through
 * rtpengine, which rewrites the SDP to its own addresses and relays (and can transcode) the media.
 * The owner deletes the call (`delete()`) on every ending: a call with subscriptions never times
 * out in rtpengine.
 */
export class CallAnchor {
  constructor(
    private readonly rtpengine: AnchorControl,
    readonly callId: string,
  ) {}

  /**
   * Offers `sdp` from the party `fromTag` (to `toTag` on a re-offer); resolves with rtpengine's SDP
   * for the other side. An offer the gateway cannot use is refused before rtpengine sees it
   * (SDP_INVALID); rtpengine's own refusals are RTPENGINE_SDP.
   */
  async offer(request: {
    fromTag: string;
    toTag?: string;
    sdp: string;
    transcodeTo?: string;
    initial: boolean;
    /** The family of the receiving side's addresses (the gateway's own sockets), when it is fixed. */
    towards?: 'IP4' | 'IP6';
  }): Promise<string> {
    checkOffer(request.sdp, { initial: request.initial });
    const reply = await this.rtpengine.offer({
      'call-id': this.callId,
      'from-tag': request.fromTag,
      ...(request.toTag !== undefined ? { 'to-tag': request.toTag } : {}),
      sdp: request.sdp,
      ...ANCHOR,
      ...(request.towards ? { 'address family': request.towards } : {}),
      ...(request.transcodeTo ? { codec: { transcode: [request.transcodeTo] } } : {}),
    });
    return sdpOf(reply, 'offer');
  }

  /** Answers the offer of `fromTag` with `sdp` from `toTag`; resolves with rtpengine's SDP for the offerer. */
  async answer(request: { fromTag: string; toTag: string; sdp: string }): Promise<string> {
    const reply = await this.rtpengine.answer({ 'call-id': this.callId, 'from-tag': request.fromTag, 'to-tag': request.toTag, sdp: request.sdp, ...ANCHOR });
    return sdpOf(reply, 'answer');
  }

  /**
   * Why an answer is not in the offer's address family (rtpengine has no media interface of that
   * family), for a Warning the SIP edge adds (RFC 3261 warn-code 301); undefined when it is.
   */
  static familyMismatch(offerSdp: string, answerSdp: string): { readonly code: number; readonly text: string } | undefined {
    const offered = sdpFamily(offerSdp);
    const answered = sdpFamily(answerSdp);
    if (!offered || !answered || offered === answered) return undefined;
    const name = (f: string): string => (f === 'IP6' ? 'IPv6' : 'IPv4');
    return { code: 301, text: `${name(offered)} offered, answered in ${name(answered)}: rtpengine has no ${name(offered)} media interface` };
  }

  /** Forgets the call in rtpengine (its media, subscriptions and playback). */
  async delete(): Promise<void> {
    await this.rtpengine.delete({ 'call-id': this.callId });
  }
}

function sdpOf(reply: { sdp?: string }, command: string): string {
  if (typeof reply.sdp !== 'string' || reply.sdp === '') throw new WhisperlineError('RTPENGINE_PROTOCOL', `rtpengine ${command} returned no SDP`);
  return reply.sdp;
}
