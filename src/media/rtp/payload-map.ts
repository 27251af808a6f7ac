import { parse as parseSdp } from 'sdp-transform';
import { codecFromEncodingName, type CodecName } from '../../audio/codec.js';
import { WhisperlineError } from '../../errors.js';

/** What one RTP payload type carries, as negotiated in the SDP the gateway answered with. */
export type PayloadFormat =
  | { readonly kind: 'audio'; readonly codec: CodecName; readonly clockRate: number; readonly channels: number }
  | { readonly kind: 'telephone-event'; readonly clockRate: number }
  | { readonly kind: 'comfort-noise'; readonly clockRate: number }
  | { readonly kind: 'unsupported'; readonly encodingName: string; readonly clockRate: number };

export type PayloadMap = ReadonlyMap<number, PayloadFormat>;

export class SdpError extends WhisperlineError {
  constructor(message: string) {
    super('SDP_INVALID', message);
  }
}

/**
 * RFC 3551 static assignments. Their meaning holds even when not negotiated, which matters because
 * rtpengine passes through payload types the answer never listed (PCMU arriving on a PCMA call).
 */
export const STATIC_PAYLOAD_TYPES: ReadonlyMap<number, PayloadFormat> = new Map<number, PayloadFormat>([
  [0, { kind: 'audio', codec: 'PCMU', clockRate: 8000, channels: 1 }],
  [8, { kind: 'audio', codec: 'PCMA', clockRate: 8000, channels: 1 }],
  [13, { kind: 'comfort-noise', clockRate: 8000 }],
  [3, { kind: 'unsupported', encodingName: 'GSM', clockRate: 8000 }],
  [9, { kind: 'unsupported', encodingName: 'G722', clockRate: 8000 }],
  [18, { kind: 'unsupported', encodingName: 'G729', clockRate: 8000 }],
]);

export function payloadFormat(encodingName: string, clockRate: number, channels = 1): PayloadFormat {
  const name = encodingName.toLowerCase();
  if (name === 'telephone-event') return { kind: 'telephone-event', clockRate };
  if (name === 'cn') return { kind: 'comfort-noise', clockRate };
  const codec = codecFromEncodingName(encodingName);
  // G.711 at a clock rate other than 8000 is not G.711 as RFC 3551 defines it.
  if (codec && (codec === 'opus' || clockRate === 8000)) return { kind: 'audio', codec, clockRate, channels };
  return { kind: 'unsupported', encodingName, clockRate };
}

/** Builds the payload map of the first audio `m=` line (or the one at `mediaIndex`) of an SDP. */
export function payloadMapFromSdp(sdp: string, mediaIndex?: number): Map<number, PayloadFormat> {
  let session: ReturnType<typeof parseSdp>;
  try {
    session = parseSdp(sdp);
  } catch (err) {
    throw new SdpError(`unparsable SDP: ${(err as Error).message}`);
  }
  const media = mediaIndex === undefined ? session.media?.find((m) => m.type === 'audio') : session.media?.[mediaIndex];
  if (!media || media.type !== 'audio') throw new SdpError(mediaIndex === undefined ? 'SDP has no audio m= line' : `SDP m= line ${mediaIndex} is not audio`);
  const map = new Map<number, PayloadFormat>();
  const declared = String(media.payloads ?? '')
    .split(/\s+/)
    .filter((p) => p !== '')
    .map(Number);
  for (const pt of declared) {
    if (!Number.isInteger(pt) || pt < 0 || pt > 127) throw new SdpError(`bad payload type "${pt}" in m= line`);
    const rtpmap = media.rtp.find((r) => r.payload === pt);
    if (rtpmap) {
      map.set(pt, payloadFormat(rtpmap.codec, rtpmap.rate ?? 8000, Number(rtpmap.encoding ?? 1)));
    } else {
      const fixed = STATIC_PAYLOAD_TYPES.get(pt);
      if (!fixed) throw new SdpError(`payload type ${pt} has no a=rtpmap and no static meaning`);
      map.set(pt, fixed);
    }
  }
  return map;
}
