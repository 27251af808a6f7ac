import { randomBytes } from 'node:crypto';
import { parse as parseSdp, type MediaDescription } from 'sdp-transform';
import type { CodecName } from '../audio/codec.js';
import type { MediaSink, PartyRtpStats } from './rtp/party-stream.js';
import { payloadMapFromSdp, SdpError } from './rtp/payload-map.js';
import { answerSdp, chooseCodec, decodableCodecs, offeredPayloadTypes } from './sdp.js';
import type { RtpPartyPort, RtpReceiver } from './rtp/receiver.js';

/** The part of the rtpengine client a subscription needs (ng key names as rtpengine spells them). */
export interface SubscriptionControl {
  subscribeRequest(req: {
    'call-id': string;
    'from-tag': string;
    'to-tag': string;
    'transport-protocol'?: 'RTP/AVP';
    codec?: { transcode?: string[] };
  }): Promise<{ sdp?: string }>;
  subscribeAnswer(req: { 'call-id': string; 'to-tag': string; sdp: string; flags?: string[] }): Promise<unknown>;
  unsubscribe(req: { 'call-id': string; 'to-tag': string }): Promise<unknown>;
}

export interface SubscriptionRequest {
  readonly callId: string;
  /** The rtpengine tag of the party whose audio is wanted (its SIP From- or To-tag). */
  readonly fromTag: string;
  /** A short label used in the subscription's own tag (e.g. `caller`). */
  readonly label: string;
  /** Ask rtpengine to transcode the copy to this codec even if the call's codec is decodable. */
  readonly transcodeTo?: 'PCMU' | 'opus';
}

export interface MediaSubscription {
  readonly toTag: string;
  readonly port: RtpPartyPort;
  /** The codec the copy arrives in. */
  readonly codec: CodecName;
  /** True when rtpengine transcodes the copy for the gateway. */
  readonly transcoded: boolean;
  stats(): PartyRtpStats;
  /** Unsubscribes and releases the socket. Idempotent; never rejects. */
  close(): Promise<void>;
}


/**
 * Subscribes the gateway to one party's media in rtpengine (a copy of that party's RTP to a
 * gateway socket): `subscribe request` for that party, a recvonly answer naming the gateway's
 * port, then `subscribe answer`. Codecs the gateway cannot decode are asked for again as
 * `transcodeTo` (`codec.transcode`), never dropped.
 */
export class MediaSubscriber {
  constructor(
    private readonly rtpengine: SubscriptionControl,
    private readonly receiver: RtpReceiver,
    private readonly transcodeTo: 'PCMU' | 'opus',
  ) {}

  async subscribe(req: SubscriptionRequest, sink: MediaSink): Promise<MediaSubscription> {
    const port = await this.receiver.openParty(new Map(), sink);
    try {
      return await this.negotiate(req, port);
    } catch (err) {
      port.close();
      throw err;
    }
  }

  private async negotiate(req: SubscriptionRequest, port: RtpPartyPort): Promise<MediaSubscription> {
    let transcodeTo = req.transcodeTo;
    let toTag = newTag(req.label);
    let offer = await this.request(req, toTag, transcodeTo);
    let chosen = chooseCodec(offer, transcodeTo);
    if (!chosen && !transcodeTo) {
      // The call's codec is not one we decode: drop this subscription and ask for a transcoded one.
      await this.rtpengine.unsubscribe({ 'call-id': req.callId, 'to-tag': toTag });
      transcodeTo = this.transcodeTo;
      toTag = newTag(req.label);
      offer = await this.request(req, toTag, transcodeTo);
      chosen = chooseCodec(offer, transcodeTo);
    }
    if (!chosen) {
      await this.rtpengine.unsubscribe({ 'call-id': req.callId, 'to-tag': toTag }).catch(() => undefined);
      throw new SdpError(`rtpengine offered no codec the gateway decodes for ${req.label} (m=audio ${offer.payloads})`);
    }
    // rtpengine sends the copy from the address it offers: nothing else gets into this party.
    if (offer.sourceAddress !== undefined) port.stream.latch(offer.sourceAddress, offer.port);
    // Every offered codec the gateway decodes (and DTMF, CN): a caller that switches codecs mid-call
    // (PCMU ↔ PCMA, → Opus) is then passed through as it is, never transcoded packet by packet.
    const codecs = transcodeTo !== undefined ? [chosen.payloadType] : decodableCodecs(offer).map((c) => c.payloadType);
    const answer = answerSdp(offer, codecs, port.address, port.port, 'recvonly');
    const answerMap = payloadMapFromSdp(answer);
    port.stream.setPayloadMap(answerMap);
    // rtpengine 10.5 refuses an answer that drops any offered codec unless transcoding is allowed.
    const narrowed = transcodeTo !== undefined || offeredPayloadTypes(offer).some((pt) => !answerMap.has(pt));
    try {
      await this.rtpengine.subscribeAnswer({
        'call-id': req.callId,
        'to-tag': toTag,
        sdp: answer,
        ...(narrowed ? { flags: ['allow transcoding'] } : {}),
      });
    } catch (err) {
      await this.rtpengine.unsubscribe({ 'call-id': req.callId, 'to-tag': toTag }).catch(() => undefined);
      throw err;
    }
    let closed: Promise<void> | undefined;
    return {
      toTag,
      port,
      codec: chosen.codec,
      transcoded: transcodeTo !== undefined,
      stats: () => port.stats(),
      close: () =>
        (closed ??= this.rtpengine
          .unsubscribe({ 'call-id': req.callId, 'to-tag': toTag })
          .then(
            () => undefined,
            // The call may already be deleted; the socket is released either way.
            () => undefined,
          )
          .finally(() => port.close())),
    };
  }

  private async request(req: SubscriptionRequest, toTag: string, transcodeTo: string | undefined): Promise<MediaDescription & { readonly sourceAddress?: string }> {
    const reply = await this.rtpengine.subscribeRequest({
      'call-id': req.callId,
      'from-tag': req.fromTag,
      'to-tag': toTag,
      // The gateway's sockets take plain RTP, whatever the party speaks (SRTP is rtpengine's).
      'transport-protocol': 'RTP/AVP',
      ...(transcodeTo ? { codec: { transcode: [transcodeTo] } } : {}),
    });
    if (!reply.sdp) throw new SdpError('subscribe request returned no SDP');
    const session = parseSdp(reply.sdp);
    const media = session.media?.find((m) => m.type === 'audio');
    if (!media) throw new SdpError('subscribe request SDP has no audio m= line');
    const sourceAddress = (media.connection ?? session.connection)?.ip;
    return { ...media, ...(sourceAddress !== undefined ? { sourceAddress } : {}) };
  }
}

function newTag(label: string): string {
  return `wl-${label}-${randomBytes(4).toString('hex')}`;
}
