/**
 * The gateway's own legs of a call in rtpengine, and the SDP answers they make: the sink leg of a
 * call the gateway answers itself, and the recorder leg of a recording (one socket per recorded
 * stream). Codec choice and SDP writing live here, below the call level.
 */
import { parse as parseSdp, type MediaDescription } from 'sdp-transform';
import { payloadMapFromSdp, SdpError } from './rtp/payload-map.js';
import type { MediaSink, PartyRtpStats } from './rtp/party-stream.js';
import type { RtpPartyPort, RtpReceiver } from './rtp/receiver.js';
import { answerDirection, answerMedia, answerSdp, chooseCodec, decodableCodecs, declinedMedia, offeredPayloadTypes, SdpSession, writeAnswer } from './sdp.js';

/**
 * The gateway as the called party: a socket that takes what rtpengine sends towards the
 * gateway's side of the call (the gateway hears the caller through a subscription, not here).
 */
export class SinkLeg {
  private readonly session = new SdpSession();

  private constructor(private readonly sink: { readonly address: string; readonly port: number; close(): void }) {}

  static async open(receiver: RtpReceiver): Promise<SinkLeg> {
    return new SinkLeg(await receiver.openSink());
  }

  /**
   * The answer to rtpengine's offer towards the gateway: the sink socket, the offer's direction
   * mirrored, the offerer's first decodable codec, or with `everyCodec` all of them (a delayed
   * offer: the caller then chooses from the gateway's offer).
   */
  answer(offerSdp: string, options: { readonly everyCodec?: boolean } = {}): string {
    const media = parseSdp(offerSdp).media.find((m) => m.type === 'audio');
    if (!media) throw new SdpError('rtpengine offer has no audio');
    const every = options.everyCodec ? decodableCodecs(media).map((c) => c.payloadType) : [];
    const pts = every.length > 0 ? every : [chooseCodec(media, undefined)?.payloadType ?? offeredPayloadTypes(media)[0]!];
    return answerSdp(media, pts, this.sink.address, this.sink.port, answerDirection(media.direction, 'sendrecv'), this.session.next());
  }

  close(): void {
    this.sink.close();
  }
}

/** One recorded stream: which m= line, and the party it carries. */
export interface RecorderStream {
  readonly mediaIndex: number;
  readonly party: string;
}

/**
 * The gateway as a recording server: each recorded audio stream of rtpengine's offer is received
 * on its own party socket, answered `recvonly` (`inactive` kept for streams on hold), so each
 * stream is one party.
 */
export class RecorderLeg {
  /** o= of every answer: one session id for the call, its version raised per answer (RFC 3264 §8). */
  private readonly session = new SdpSession();

  private constructor(
    private readonly receiver: RtpReceiver,
    private readonly recorded: readonly { readonly party: string; readonly mediaIndex: number; readonly port: RtpPartyPort }[],
  ) {}

  /**
   * Opens one socket per audio stream of `offerSdp` (rtpengine's offer towards the gateway),
   * named from `streams` by m= index (`streamN` when unnamed); `sinkFor` routes each party's
   * media. Nothing is left open when it fails.
   */
  static async open(receiver: RtpReceiver, offerSdp: string, streams: readonly RecorderStream[], sinkFor: (party: string) => MediaSink): Promise<RecorderLeg> {
    const session = parseSdp(offerSdp);
    const media = session.media;
    const recorded: { party: string; mediaIndex: number; port: RtpPartyPort }[] = [];
    try {
      for (const [i, m] of media.entries()) {
        if (m.type !== 'audio' || m.port === 0) continue;
        const party = streams.find((s) => s.mediaIndex === i)?.party ?? `stream${i + 1}`;
        const port = await receiver.openParty(new Map(), sinkFor(party));
        // rtpengine sends each stream from the address it offers it at.
        const source = (m.connection ?? session.connection)?.ip;
        if (source !== undefined) port.stream.latch(source, m.port);
        recorded.push({ party, mediaIndex: i, port });
      }
    } catch (err) {
      for (const r of recorded) r.port.close();
      throw err;
    }
    if (recorded.length === 0) throw new SdpError('recording offer has no audio stream');
    return new RecorderLeg(receiver, recorded);
  }

  /** The recorded parties, in m= line order. */
  get parties(): readonly string[] {
    return this.recorded.map((r) => r.party);
  }

  /**
   * The answer to an offer of the recording (the first, or a re-offer: the same sockets answer
   * it). Every m= line of the offer is answered, in order: a recorded audio stream `recvonly` on
   * its socket (`inactive` where it was offered inactive or recvonly, as RFC 3264 requires), with
   * the chosen codec plus telephone-event and CN in rtpengine's payload type numbers and its
   * `a=label`; anything else (video, streams beyond the original ones) declined with port 0.
   * Written by the one SDP writer (sdp.ts); each socket's payload map follows the answer.
   */
  answer(offerSdp: string): { readonly sdp: string; readonly held: boolean } {
    const offer = parseSdp(offerSdp);
    const media: MediaDescription[] = offer.media.map((m, i): MediaDescription => {
      const recorded = this.recorded.find((r) => r.mediaIndex === i);
      const chosen = m.type === 'audio' ? chooseCodec(m, undefined) : undefined;
      if (!recorded || m.port === 0 || !chosen) return declinedMedia(m);
      return answerMedia({ offer: m, codecPt: chosen.payloadType, port: recorded.port.port, direction: answerDirection(m.direction ?? offer.direction, 'recvonly') });
    });
    const sdp = writeAnswer(media, this.receiver.address, this.session.next());
    for (const r of this.recorded) {
      if (offer.media[r.mediaIndex]) r.port.stream.setPayloadMap(payloadMapFromSdp(sdp, r.mediaIndex));
    }
    const audio = media.filter((m) => m.type === 'audio' && m.port !== 0);
    const held = audio.length === 0 || audio.every((m) => m.direction === 'inactive');
    return { sdp, held };
  }

  /** Closes every socket; returns each party's statistics. */
  close(): Record<string, PartyRtpStats> {
    const stats: Record<string, PartyRtpStats> = {};
    for (const { party, port } of this.recorded) {
      stats[party] = port.stats();
      port.close();
    }
    return stats;
  }
}
