import { WhisperlineError } from '../errors.js';
import type { RtpengineClient } from './rtpengine/client.js';
import { checkOffer, sdpFamily } from './sdp.js';

/** The rtpengine commands anchoring uses. */
export type AnchorControl = Pick<RtpengineClient, 'offer' | 'answer' | 'delete'>;

/** rtpengine options for every SDP it rewrites for the call. */
const ANCHOR = { replace: ['origin', 'session-connection'] } as const;

/** The transports rtpengine bridges: plain RTP, SDES-SRTP, with or without feedback (AVPF). */
type Transport = 'RTP/AVP' | 'RTP/AVPF' | 'RTP/SAVP' | 'RTP/SAVPF';
const TRANSPORTS: ReadonlySet<string> = new Set<Transport>(['RTP/AVP', 'RTP/AVPF', 'RTP/SAVP', 'RTP/SAVPF']);
/** What a side that has not said otherwise gets: the gateway's own legs, a bridge's callee. */
const DEFAULT_TRANSPORT: Transport = 'RTP/AVP';

/** The transport of an SDP's first audio stream, when rtpengine bridges it. */
function transportOf(sdp: string): Transport | undefined {
  const proto = /^m=audio \d+(?:\/\d+)? (\S+) /m.exec(sdp)?.[1];
  return proto !== undefined && TRANSPORTS.has(proto) ? (proto as Transport) : undefined;
}

/**
 * One call anchored in rtpengine: every offer and answer between its legs passes through
 * rtpengine, which rewrites the SDP to its own addresses and relays (and can transcode) the media.
 * The owner deletes the call (`delete()`) on every ending: a call with subscriptions never times
 * out in rtpengine.
 */
export class CallAnchor {
  /** The transport each party (by rtpengine tag) uses: what its own SDP said. */
  private readonly transports = new Map<string, Transport>();

  constructor(
    private readonly rtpengine: AnchorControl,
    readonly callId: string,
  ) {}

  /**
   * Offers `sdp` from the party `fromTag` (to `toTag` on a re-offer); resolves with rtpengine's SDP
   * for the other side, in the other side's own transport: what it used so far, plain RTP/AVP for
   * a side that has not said (the gateway's own legs, a bridge's callee), whatever the offerer
   * uses (an SRTP caller stays SRTP towards rtpengine only). ICE is taken out towards the side
   * that receives it. An offer the gateway cannot use is refused before rtpengine sees it
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
    this.learn(request.fromTag, request.sdp);
    const towardsTransport = (request.toTag !== undefined ? this.transports.get(request.toTag) : undefined) ?? DEFAULT_TRANSPORT;
    const reply = await this.rtpengine.offer({
      'call-id': this.callId,
      'from-tag': request.fromTag,
      ...(request.toTag !== undefined ? { 'to-tag': request.toTag } : {}),
      sdp: request.sdp,
      ...ANCHOR,
      ICE: 'remove',
      'transport-protocol': towardsTransport,
      ...(request.towards ? { 'address family': request.towards } : {}),
      ...(request.transcodeTo ? { codec: { transcode: [request.transcodeTo] } } : {}),
    });
    return sdpOf(reply, 'offer');
  }

  /**
   * Answers the offer of `fromTag` with `sdp` from `toTag`; resolves with rtpengine's SDP for the
   * offerer, in the transport the offerer offered: an SRTP (SDES) offer gets RTP/SAVP with
   * rtpengine's own keys, whatever the answering side speaks.
   */
  async answer(request: { fromTag: string; toTag: string; sdp: string }): Promise<string> {
    this.learn(request.toTag, request.sdp);
    const reply = await this.rtpengine.answer({ 'call-id': this.callId, 'from-tag': request.fromTag, 'to-tag': request.toTag, sdp: request.sdp, ...ANCHOR });
    return sdpOf(reply, 'answer');
  }

  private learn(tag: string, sdp: string): void {
    const transport = transportOf(sdp);
    if (transport) this.transports.set(tag, transport);
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
