import { parse as parseSdp, write as writeSdp, type MediaDescription } from 'sdp-transform';
import type { CodecName } from '../audio/codec.js';
import { payloadFormat, SdpError, STATIC_PAYLOAD_TYPES } from './rtp/payload-map.js';

/** SDP answers the gateway makes to rtpengine: for subscriptions (recvonly) and its own call legs. */
const PASSED = new Set(['telephone-event', 'cn']);

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

/** The codecs of an offer the gateway decodes, in the offerer's order of preference (RFC 3264 §6.1). */
export function decodableCodecs(media: MediaDescription): { payloadType: number; codec: CodecName }[] {
  const candidates: { payloadType: number; codec: CodecName }[] = [];
  for (const pt of offeredPayloadTypes(media)) {
    const enc = encodingOf(media, pt);
    if (!enc) continue;
    const f = payloadFormat(enc.name, enc.rate, enc.channels);
    if (f.kind === 'audio') candidates.push({ payloadType: pt, codec: f.codec });
  }
  return candidates;
}

/** The codec to answer with: `wanted` when given, else the offerer's most preferred one the gateway decodes. */
export function chooseCodec(media: MediaDescription, wanted: string | undefined): { payloadType: number; codec: CodecName } | undefined {
  const candidates = decodableCodecs(media);
  return wanted ? candidates.find((c) => c.codec.toLowerCase() === wanted.toLowerCase()) : candidates[0];
}

export type MediaDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

/** One answered `m=` line: the offered media, the codec(s) chosen from it, and the gateway's port. */
export interface AnsweredStream {
  readonly offer: MediaDescription;
  /** The chosen codec's payload type, or several (every offered codec the gateway decodes). */
  readonly codecPt: number | readonly number[];
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
 * One answered `m=` line: the chosen codec(s) plus telephone-event and CN, with rtpengine's own
 * payload type numbers (answering with other numbers makes it fall back, see notes), the offer's
 * fmtp and ptime kept. Always plain RTP: rtpengine does any SRTP on the party's side. No
 * `a=label`: rtpengine 10.5 garbles the label of a second labelled stream of an answer it is
 * given (`a=label:2a=rtpmap:0 PCMU/8000`, and the rtpmap twice); the labels a party offered are
 * put back into the answer to that party (`withOfferedLabels`).
 */
export function answerMedia({ offer, codecPt, port, direction }: AnsweredStream): MediaDescription {
  const chosen = typeof codecPt === 'number' ? [codecPt] : codecPt;
  const pts = offeredPayloadTypes(offer).filter((pt) => chosen.includes(pt) || PASSED.has(encodingOf(offer, pt)?.name.toLowerCase() ?? ''));
  return {
    type: 'audio',
    port,
    protocol: 'RTP/AVP',
    payloads: pts.join(' '),
    rtp: pts.map((pt) => {
      const enc = encodingOf(offer, pt)!;
      return { payload: pt, codec: enc.name, rate: enc.rate, ...(enc.channels > 1 ? { encoding: enc.channels } : {}) };
    }),
    fmtp: offer.fmtp.filter((f) => pts.includes(f.payload)),
    ...(offer.ptime !== undefined ? { ptime: offer.ptime } : {}),
    direction,
    rtcpMux: 'rtcp-mux',
  };
}

/**
 * `answer` (rtpengine's, towards a party) with each m= line labelled as the party labelled it
 * in `offer` (RFC 4574: a recording client pairs its streams and metadata by label), rewritten
 * by the one SDP writer. Streams the answer declines keep no label.
 */
export function withOfferedLabels(answer: string, offer: string): string {
  const offered = parseSdp(offer).media;
  if (!offered.some((m) => m.label !== undefined)) return answer;
  const session = parseSdp(answer);
  session.media = session.media.map((m, i) => {
    const { label: _garbled, ...rest } = m;
    const label = offered[i]?.label;
    return label !== undefined && m.port !== 0 ? { ...rest, label } : rest;
  });
  return writeSdp(session);
}

/** An m= line declined (RFC 3264 §6: port 0, the offered format list kept). */
export function declinedMedia(offer: MediaDescription): MediaDescription {
  return { type: offer.type, port: 0, protocol: offer.protocol, payloads: offer.payloads, rtp: [], fmtp: [] };
}

/**
 * The gateway's answer SDP around its m= lines, written by the one SDP writer (sdp-transform),
 * so attributes are never run together whatever the offer carried.
 */
export function writeAnswer(media: readonly MediaDescription[], address: string, origin?: SdpOrigin): string {
  const ipVer = address.includes(':') ? 6 : 4;
  const { sessionId, version } = origin ?? { sessionId: Date.now(), version: 0 };
  return writeSdp({
    version: 0,
    origin: { username: 'whisperline', sessionId, sessionVersion: version, netType: 'IN', ipVer, address },
    name: 'whisperline',
    connection: { version: ipVer, ip: address },
    timing: { start: 0, stop: 0 },
    media: [...media],
  });
}

/** The answer to every stream in `streams`, in order. */
export function answerSdpStreams(streams: readonly AnsweredStream[], address: string, origin?: SdpOrigin): string {
  return writeAnswer(streams.map(answerMedia), address, origin);
}

/** A one-stream answer (subscriptions, the gateway's own leg). */
export function answerSdp(offer: MediaDescription, codecPt: number | readonly number[], address: string, port: number, direction: MediaDirection, origin?: SdpOrigin): string {
  return answerSdpStreams([{ offer, codecPt, port, direction }], address, origin);
}

/** The o= line's session id and version (RFC 3264 §8: a session keeps its id; each new answer raises the version). */
export interface SdpOrigin {
  readonly sessionId: number;
  readonly version: number;
}

/** An answerer's o= line across a session's offers: the same id, the version raised each time. */
export class SdpSession {
  readonly sessionId = Math.floor(Date.now() / 1000);
  private version = 0;

  /** The origin for the next answer. */
  next(): SdpOrigin {
    return { sessionId: this.sessionId, version: this.version++ };
  }
}

const MAX_SDP_CHARS = 64 * 1024;

/**
 * Checks an offer before it reaches rtpengine, so a bad one is refused with what is wrong (the
 * SIP edge answers 488 with it in a Warning) instead of rtpengine's "Failed to parse SDP".
 * `initial`: the offer of a new call, which needs an audio stream that is not declined.
 * Throws SdpError (SDP_INVALID). Codecs are not checked: rtpengine transcodes what the gateway
 * does not decode.
 */
export function checkOffer(sdp: string, options: { initial: boolean }): void {
  if (sdp.length > MAX_SDP_CHARS) throw new SdpError(`SDP of ${sdp.length} characters is larger than ${MAX_SDP_CHARS}`);
  const lines = sdp.split(/\r?\n/).filter((l) => l !== '');
  if (lines[0] !== 'v=0') throw new SdpError(lines.length === 0 ? 'empty SDP' : 'SDP does not start with v=0');
  for (const [i, line] of lines.entries()) {
    if (!/^[a-z]=/.test(line)) throw new SdpError(`SDP line ${i + 1} is not <type>=<value>: "${line.slice(0, 40)}"`);
  }
  for (const type of ['o', 's', 't']) {
    if (!lines.some((l) => l.startsWith(`${type}=`))) throw new SdpError(`SDP has no ${type}= line`);
  }
  for (const line of lines) {
    if (line.startsWith('c=') && !/^c=IN IP[46] \S+$/.test(line)) throw new SdpError(`SDP connection line is not "c=IN IP4|IP6 <address>": "${line.slice(0, 60)}"`);
  }
  const firstMedia = lines.findIndex((l) => l.startsWith('m='));
  const sessionConnection = (firstMedia === -1 ? lines : lines.slice(0, firstMedia)).some((l) => l.startsWith('c='));
  const media = lines.flatMap((l, i) => (l.startsWith('m=') ? [i] : []));
  let audio = 0;
  media.forEach((at, n) => {
    const line = lines[at]!;
    const m = /^m=(\S+) (\d+)(?:\/\d+)? (\S+)((?: \S+)*)$/.exec(line);
    if (!m) throw new SdpError(`SDP m= line ${n + 1} is malformed: "${line.slice(0, 60)}"`);
    const port = Number(m[2]);
    if (port > 65535) throw new SdpError(`SDP m= line ${n + 1} has port ${port}`);
    if (m[4]!.trim() === '') throw new SdpError(`SDP m= line ${n + 1} lists no formats`);
    const end = media[n + 1] ?? lines.length;
    if (!sessionConnection && port !== 0 && !lines.slice(at + 1, end).some((l) => l.startsWith('c='))) {
      throw new SdpError(`SDP m= line ${n + 1} has no connection address (c=)`);
    }
    if (m[1] === 'audio' && port !== 0) audio++;
  });
  if (options.initial && audio === 0) throw new SdpError(media.length === 0 ? 'SDP has no media stream' : 'SDP offers no audio stream (none, or all declined with port 0)');
}

/** Whether an offer puts the call on hold: its audio is sendonly or inactive (or the old c=0.0.0.0). */
export function offerHolds(sdp: string): boolean {
  try {
    const session = parseSdp(sdp);
    const audio = session.media.find((m) => m.type === 'audio');
    if (!audio) return false;
    const direction = audio.direction ?? (session as { direction?: string }).direction;
    return direction === 'sendonly' || direction === 'inactive' || (audio.connection ?? session.connection)?.ip === '0.0.0.0';
  } catch {
    return false;
  }
}

/** Whether every audio stream of an SDP offers a codec the gateway decodes (else rtpengine is asked to transcode). */
export function decodableEverywhere(sdp: string): boolean {
  try {
    return parseSdp(sdp)
      .media.filter((m) => m.type === 'audio' && m.port !== 0)
      .every((m) => chooseCodec(m, undefined) !== undefined);
  } catch {
    return false;
  }
}

/** The address family of an SDP's connection address (session level, else the first stream's). */
export function sdpFamily(sdp: string): 'IP4' | 'IP6' | undefined {
  const m = /^c=IN (IP[46]) /m.exec(sdp);
  return m ? (m[1] as 'IP4' | 'IP6') : undefined;
}

/**
 * What rtpengine is offered on behalf of a caller whose INVITE had no SDP (a delayed offer,
 * RFC 3261 §13.2.1): the codecs every trunk takes (PCMU, PCMA, telephone-event), sendrecv, on the
 * discard port (9) of the gateway's own address. From it rtpengine makes the offer of the 200 OK
 * (its own address, the codecs the far side kept); the caller's answer in the ACK then replaces
 * the stand-in. Not `c=0.0.0.0`: rtpengine reads that as hold and offers the far side sendonly.
 */
export function delayedOfferStandIn(address: string): string {
  const family = address.includes(':') ? 'IP6' : 'IP4';
  return [
    'v=0',
    `o=whisperline ${Math.floor(Date.now() / 1000)} 0 IN ${family} ${address}`,
    's=whisperline',
    `c=IN ${family} ${address}`,
    't=0 0',
    'm=audio 9 RTP/AVP 0 8 101',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=ptime:20',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

/**
 * Whether `next` is the same version of the session `previous` described: the same `o=` line
 * (RFC 3264 §8: a description that changed raises its version; one that did not keeps it), as
 * a caller's ACK repeats it when a refresh changed nothing.
 */
export function sameSessionVersion(previous: string, next: string): boolean {
  const origin = (sdp: string): string | undefined => /^o=(.*?)\s*$/m.exec(sdp)?.[1]?.replace(/\s+/g, ' ');
  const a = origin(previous);
  return a !== undefined && a === origin(next);
}

/** The codec an SDP's first audio stream prefers among those the gateway decodes (static payload types without rtpmap included). */
export function preferredCodec(sdp: string): CodecName | undefined {
  const audio = parseSdp(sdp).media.find((m) => m.type === 'audio' && m.port !== 0);
  return audio ? chooseCodec(audio, undefined)?.codec : undefined;
}

/**
 * `offer` with its audio narrowed to the codec `answered` settled on (plus telephone-event and
 * CN): what a party that is not asked again (no re-INVITE) goes on sending. A voice application's
 * `dial` offers the callee this, so rtpengine never relays a codec the callee did not accept.
 * The offer is returned unchanged when the answer names no codec it offered.
 */
export function narrowedToAnswered(offer: string, answered: string): string {
  const session = parseSdp(offer);
  const audio = session.media.find((m) => m.type === 'audio' && m.port !== 0);
  const answer = parseSdp(answered).media.find((m) => m.type === 'audio' && m.port !== 0);
  if (!audio || !answer) return offer;
  const chosen = offeredPayloadTypes(answer)
    .map((pt) => encodingOf(answer, pt))
    .find((e) => e !== undefined && !PASSED.has(e.name.toLowerCase()));
  if (!chosen) return offer;
  const same = (e: { name: string; rate: number } | undefined): boolean => e !== undefined && e.name.toLowerCase() === chosen.name.toLowerCase() && e.rate === chosen.rate;
  const keep = offeredPayloadTypes(audio).filter((pt) => {
    const e = encodingOf(audio, pt);
    return same(e) || (e !== undefined && PASSED.has(e.name.toLowerCase()));
  });
  if (!keep.some((pt) => same(encodingOf(audio, pt)))) return offer;
  const kept = new Set(keep);
  audio.payloads = keep.join(' ');
  audio.rtp = audio.rtp.filter((r) => kept.has(r.payload));
  audio.fmtp = (audio.fmtp ?? []).filter((f) => kept.has(f.payload));
  if (audio.rtcpFb) audio.rtcpFb = audio.rtcpFb.filter((f) => kept.has(Number(f.payload)));
  return writeSdp(session);
}
