/**
 * RTP (RFC 3550) header parsing. Parsing never throws: the receiver counts and drops whatever is
 * not a well-formed RTP packet, so a hostile or broken peer cannot take a call down.
 */
export interface RtpPacket {
  readonly marker: boolean;
  readonly payloadType: number;
  /** 16-bit sequence number as sent. */
  readonly sequence: number;
  /** 32-bit media timestamp (unsigned). */
  readonly timestamp: number;
  readonly ssrc: number;
  readonly csrcCount: number;
  /** Profile-defined id of the header extension, when the X bit is set. */
  readonly extensionProfile: number | undefined;
  /** The payload without header, CSRCs, extension or padding: a view into the datagram. */
  readonly payload: Uint8Array;
}

export type RtpMalformedReason =
  | 'too-short'
  | 'bad-version'
  | 'truncated-csrc'
  | 'truncated-extension'
  | 'bad-padding'
  | 'rtcp';

export interface RtpMalformed {
  readonly malformed: RtpMalformedReason;
}

export const RTP_HEADER_BYTES = 12;

export function isMalformed(p: RtpPacket | RtpMalformed): p is RtpMalformed {
  return (p as RtpMalformed).malformed !== undefined;
}

/** RTCP packet types that RFC 5761 §4 sets apart from RTP payload types on a shared port (192-223). */
const RTCP_TYPES_MIN = 192;
const RTCP_TYPES_MAX = 223;
const RTCP_HEADER_BYTES = 4;

export function parseRtp(buf: Uint8Array): RtpPacket | RtpMalformed {
  const len = buf.length;
  if (len < RTCP_HEADER_BYTES) return { malformed: 'too-short' };
  const b0 = buf[0]!;
  if (b0 >> 6 !== 2) return { malformed: 'bad-version' };
  const b1 = buf[1]!;
  // RTCP multiplexed on the RTP port (RFC 5761), recognised by its header whatever its length
  // (an empty receiver report is 8 bytes): its packet type reads as RTP PT 64-95 with M set.
  if (b1 >= RTCP_TYPES_MIN && b1 <= RTCP_TYPES_MAX) return { malformed: 'rtcp' };
  if (len < RTP_HEADER_BYTES) return { malformed: 'too-short' };
  const payloadType = b1 & 0x7f;
  const csrcCount = b0 & 0x0f;
  let offset = RTP_HEADER_BYTES + 4 * csrcCount;
  if (offset > len) return { malformed: 'truncated-csrc' };
  let extensionProfile: number | undefined;
  if (b0 & 0x10) {
    if (offset + 4 > len) return { malformed: 'truncated-extension' };
    extensionProfile = (buf[offset]! << 8) | buf[offset + 1]!;
    const words = (buf[offset + 2]! << 8) | buf[offset + 3]!;
    offset += 4 + 4 * words;
    if (offset > len) return { malformed: 'truncated-extension' };
  }
  let end = len;
  if (b0 & 0x20) {
    const pad = buf[len - 1]!;
    if (pad === 0 || offset + pad > len) return { malformed: 'bad-padding' };
    end -= pad;
  }
  return {
    marker: (b1 & 0x80) !== 0,
    payloadType,
    sequence: (buf[2]! << 8) | buf[3]!,
    timestamp: ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0,
    ssrc: ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0,
    csrcCount,
    extensionProfile,
    // A plain view: Buffer's subarray goes through its species constructor, per packet.
    payload: new Uint8Array(buf.buffer, buf.byteOffset + offset, end - offset),
  };
}

export interface RtpHeaderFields {
  readonly payloadType: number;
  readonly sequence: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly marker?: boolean;
}

/** Builds a plain RTP packet (no CSRCs, extension or padding): used by the gateway's own senders. */
export function buildRtp(h: RtpHeaderFields, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(RTP_HEADER_BYTES + payload.length);
  out[0] = 0x80;
  out[1] = (h.marker ? 0x80 : 0) | (h.payloadType & 0x7f);
  out.writeUInt16BE(h.sequence & 0xffff, 2);
  out.writeUInt32BE(h.timestamp >>> 0, 4);
  out.writeUInt32BE(h.ssrc >>> 0, 8);
  out.set(payload, RTP_HEADER_BYTES);
  return out;
}
