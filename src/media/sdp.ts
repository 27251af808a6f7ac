import { type MediaDescription } from 'sdp-transform';
import type { CodecName } from '../audio/codec.js';
import { payloadFormat, STATIC_PAYLOAD_TYPES } from './rtp/payload-map.js';

/** SDP answers the gateway makes to rtpengine: for subscriptions (recvonly) and its own call legs. */
const PASSED = new Set(['telephone-event', 'cn']);
/** Preference when the offer lists several codecs the gateway decodes: wideband first. */
const PREFERENCE: CodecName[] = ['opus', 'PCMA', 'PCMU'];

export function offeredPayloadTypes(media: MediaDescription): number[] {
  return String(media.payloads ?? '')
    .split(/\s+/)
    .filter((p) => p !== '')
    .map(Number);
}

export function encodingOf(media: MediaDescription, pt: number): { name: string; rate: number; channels: number } | undefined {
  const r = media.rtp.find((x) => x.payload === pt);
  if (r) return { name: r.codec, rate: r.rate ?? 8000, channels: Number(r.encoding ?? 1) };
  const fixed = STATIC_PAYLOAD_TYPES.get(pt);
  if (!fixed) return undefined;
  const name = fixed.kind === 'audio' ? fixed.codec : fixed.kind === 'comfort-noise' ? 'CN' : fixed.kind === 'unsupported' ? fixed.encodingName : 'telephone-event';
  return { name, rate: fixed.clockRate, channels: 1 };
}

export function chooseCodec(media: MediaDescription, wanted: string | undefined): { payloadType: number; codec: CodecName } | undefined {
  const candidates: { payloadType: number; codec: CodecName }[] = [];
  for (const pt of offeredPayloadTypes(media)) {
    const enc = encodingOf(media, pt);
    if (!enc) continue;
    const f = payloadFormat(enc.name, enc.rate, enc.channels);
    if (f.kind === 'audio') candidates.push({ payloadType: pt, codec: f.codec });
  }
  if (wanted) return candidates.find((c) => c.codec.toLowerCase() === wanted.toLowerCase());
  candidates.sort((a, b) => PREFERENCE.indexOf(a.codec) - PREFERENCE.indexOf(b.codec));
  return candidates[0];
}

export type MediaDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

/** One answered `m=` line: the offered media, the codec chosen from it, and the gateway's port. */
export interface AnsweredStream {
  readonly offer: MediaDescription;
  readonly codecPt: number;
  readonly port: number;
  readonly direction: MediaDirection;
}

/** The direction an answerer takes for an offered direction when it would otherwise send and receive. */
export function answerDirection(offered: string | undefined, wanted: MediaDirection): MediaDirection {
  if (offered === 'inactive') return 'inactive';
  if (offered === 'sendonly') return wanted === 'sendrecv' || wanted === 'recvonly' ? 'recvonly' : 'inactive';
  if (offered === 'recvonly') return wanted === 'sendrecv' || wanted === 'sendonly' ? 'sendonly' : 'inactive';
  return wanted;
}

/**
 * The gateway's answer: per stream the chosen codec plus telephone-event and CN, with rtpengine's
 * own payload type numbers (answering with other numbers makes it fall back, see notes).
 */
export function answerSdpStreams(streams: readonly AnsweredStream[], address: string): string {
  const family = address.includes(':') ? 'IP6' : 'IP4';
  const id = Date.now();
  const lines = ['v=0', `o=whisperline ${id} ${id} IN ${family} ${address}`, 's=whisperline', `c=IN ${family} ${address}`, 't=0 0'];
  for (const { offer, codecPt, port, direction } of streams) {
    const pts = offeredPayloadTypes(offer).filter((pt) => {
      if (pt === codecPt) return true;
      const enc = encodingOf(offer, pt);
      return enc !== undefined && PASSED.has(enc.name.toLowerCase());
    });
    lines.push(`m=audio ${port} RTP/AVP ${pts.join(' ')}`);
    for (const pt of pts) {
      const enc = encodingOf(offer, pt)!;
      lines.push(`a=rtpmap:${pt} ${enc.name}/${enc.rate}${enc.channels > 1 ? `/${enc.channels}` : ''}`);
      const fmtp = offer.fmtp.find((f) => f.payload === pt);
      if (fmtp) lines.push(`a=fmtp:${pt} ${fmtp.config}`);
    }
    if (offer.ptime) lines.push(`a=ptime:${offer.ptime}`);
    if (offer.label !== undefined) lines.push(`a=label:${offer.label}`);
    lines.push(`a=${direction}`, 'a=rtcp-mux');
  }
  return lines.join('\r\n') + '\r\n';
}

/** A one-stream answer (subscriptions, the gateway's own leg). */
export function answerSdp(offer: MediaDescription, codecPt: number, address: string, port: number, direction: MediaDirection): string {
  return answerSdpStreams([{ offer, codecPt, port, direction }], address);
}
