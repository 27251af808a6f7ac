import { WhisperlineError } from '../errors.js';
import type { RtpengineClient } from './rtpengine/client.js';
import { checkOffer } from './sdp.js';

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
  async offer(request: { fromTag: string; toTag?: string; sdp: string; transcodeTo?: string; initial: boolean }): Promise<string> {
    checkOffer(request.sdp, { initial: request.initial });
    const reply = await this.rtpengine.offer({
      'call-id': this.callId,
      'from-tag': request.fromTag,
      ...(request.toTag !== undefined ? { 'to-tag': request.toTag } : {}),
      sdp: request.sdp,
      ...ANCHOR,
      ...(request.transcodeTo ? { codec: { transcode: [request.transcodeTo] } } : {}),
    });
    return sdpOf(reply, 'offer');
  }

  /** Answers the offer of `fromTag` with `sdp` from `toTag`; resolves with rtpengine's SDP for the offerer. */
  async answer(request: { fromTag: string; toTag: string; sdp: string }): Promise<string> {
    const reply = await this.rtpengine.answer({ 'call-id': this.callId, 'from-tag': request.fromTag, 'to-tag': request.toTag, sdp: request.sdp, ...ANCHOR });
    return sdpOf(reply, 'answer');
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
