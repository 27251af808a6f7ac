import type { CodecName } from '../../audio/codec.js';
import { DtmfDetector, type DtmfEvent } from './dtmf.js';
import { isMalformed, parseRtp, type RtpMalformedReason, type RtpPacket } from './packet.js';
import { STATIC_PAYLOAD_TYPES, type PayloadFormat, type PayloadMap } from './payload-map.js';
import { ReorderBuffer, type ReorderStats } from './reorder.js';

export type AudioPayloadFormat = Extract<PayloadFormat, { kind: 'audio' }>;

/**
 * Where one party's media goes once it is in order. The audio stage implements it; the media stage
 * never decodes. Calls arrive in sequence order of the current SSRC.
 */
export interface MediaSink {
  /**
   * An audio packet; `lostBefore` packets right before it were given up as lost. Returns false
   * when the packet came too late to be used (its place had already been filled).
   */
  audio(format: AudioPayloadFormat, timestamp: number, payload: Uint8Array, lostBefore: number, arrivalMs: number): boolean | void;
  /**
   * The playout clock's tick: whatever has not arrived for media due at the wall-clock time
   * `dueArrivalMs` (performance.now() ms) is filled now, so frames keep coming without packets.
   * May return the earliest due time at which advancing again could fill anything if no audio
   * came meanwhile (audio only moves it later): the stream skips the ticks before it. Every party
   * is visited every tick, and most are talking, so this keeps the tick to a comparison for them.
   */
  advance(dueArrivalMs: number): number | void;
  /** RFC 3389 comfort noise: silence at `levelDbov` (-dBov) until the next audio packet. */
  comfortNoise(levelDbov: number): void;
  /** A new SSRC took over the stream: codec state and timestamps start afresh. */
  streamChange(ssrc: number, arrivalMs: number): void;
  dtmf(event: DtmfEvent): void;
  /** The party's media ended (subscription closed): nothing more will arrive. */
  end(): void;
}

export interface PartyRtpStats {
  packets: number;
  bytes: number;
  /** Sequence numbers given up and concealed. */
  lost: number;
  /** Packets that came after their place in the stream had been concealed. */
  late: number;
  duplicate: number;
  malformed: number;
  /** RTCP that arrived on the RTP port (rtcp-mux); not an error. */
  rtcp: number;
  /** Audio packets without payload (padding only, keepalives): they add nothing. */
  empty: number;
  /** Datagrams from an address other than the latched one (rtpengine's): dropped. */
  foreign: number;
  /** Packets of another SSRC that never took the stream over (strays while the party's stream went on). */
  ssrcRejected: number;
  /** Payload types neither negotiated nor statically assigned. */
  unknownPayloadType: number;
  /** Negotiated formats the gateway does not decode (should not happen: subscriptions ask for PCMU/Opus). */
  undecodable: number;
  ssrcChanges: number;
  dtmfEvents: number;
  /** RFC 3550 interarrival jitter of the current SSRC, in ms. */
  jitterMs: number;
  /** The codec last seen. */
  codec: CodecName | undefined;
}

const DEFAULT_PTIME_MS = 20;
/** A DTMF event whose end packets never came is reported this many packet times after its last packet. */
const DTMF_END_WAIT_PACKETS = 3;
/**
 * RFC 3550 A.1 probation for a new SSRC: it takes the stream over only after this many packets in
 * sequence, spread over at least PROBATION_MS of arrival time, with the current SSRC silent
 * meanwhile. A burst of strays (or a second source interleaved with the party's) never does.
 */
const PROBATION_PACKETS = 3;
const PROBATION_MS = 35;
/** Packets of a candidate SSRC held during its probation (released when it takes over). */
const PROBATION_HOLD = 16;

/**
 * The statistics of one party over the whole call when its media came through several streams
 * in turn (a subscription renewed at each re-INVITE): counters add up; the jitter and the codec
 * are the latest stream's.
 */
export function mergePartyStats(earlier: PartyRtpStats | undefined, later: PartyRtpStats): PartyRtpStats {
  if (!earlier) return later;
  const out = { ...later };
  for (const key of Object.keys(later) as (keyof PartyRtpStats)[]) {
    if (key === 'jitterMs' || key === 'codec') continue;
    (out[key] as number) = (earlier[key] as number) + (later[key] as number);
  }
  out.codec = later.codec ?? earlier.codec;
  return out;
}

/**
 * The RTP state of one subscribed party: header checks, SSRC tracking, reordering, payload type
 * lookup, DTMF and statistics. One per receiver socket.
 */
export class RtpPartyStream {
  /** Counters of this stage; loss, lateness and duplicates are the reorder buffer's (see snapshot). */
  private readonly stats: Omit<PartyRtpStats, keyof ReorderStats> = {
    packets: 0, bytes: 0, malformed: 0, rtcp: 0, empty: 0, foreign: 0, ssrcRejected: 0, unknownPayloadType: 0, undecodable: 0,
    ssrcChanges: 0, dtmfEvents: 0, jitterMs: 0, codec: undefined,
  };
  readonly malformedByReason: Partial<Record<RtpMalformedReason, number>> = {};
  private ssrc: number | undefined;
  private readonly reorder: ReorderBuffer<RtpPacket>;
  private closed = false;
  private dtmf = new Map<number, DtmfDetector>();
  private jitterTicks = 0;
  private lastTransit: number | undefined;
  private lastAudioSeq = -1;
  private lastAudioTs = 0;
  /** The packet time the sender uses (learnt from consecutive audio packets). */
  private ptimeMs = DEFAULT_PTIME_MS;
  /** Arrival of the last packet of a DTMF event not ended yet (its end packets may all be lost). */
  private lastDtmfArrival: number | undefined;
  /** Audio packets the sink refused as too late (their place on the call clock was filled). */
  private playoutLate = 0;
  /**
   * The stream's timestamps as continuous ms (for the reorder window): the last packet's timestamp,
   * its clock rate and its place in ms (rate 0: no packet yet). Plain fields: this runs per packet.
   */
  private mediaTs = 0;
  private mediaRate = 0;
  private mediaMs = 0;
  /** The payload type looked up last and its format: a stream rarely changes it, so most packets skip the map. */
  private lastPayloadType = -1;
  private lastFormat: PayloadFormat | undefined;
  /**
   * The earliest due time at which the sink's `advance` can fill anything, as it said last (see
   * MediaSink.advance); ticks before it skip the sink. Audio only moves this later, so it stays a
   * safe lower bound between ticks.
   */
  private nextAdvanceMs = -Infinity;
  /** The one source address datagrams are taken from, once known (rtpengine's media address). */
  private latched: { readonly address: string; readonly port: number } | undefined;
  /** A new SSRC on probation, and its packets so far. */
  private candidate: { ssrc: number; lastSeq: number; firstArrival: number; held: { packet: RtpPacket; bytes: number; arrivalMs: number }[] } | undefined;

  constructor(
    private payloadMap: PayloadMap,
    private readonly sink: MediaSink,
    private readonly reorderWindowMs: number,
  ) {
    this.reorder = new ReorderBuffer<RtpPacket>(reorderWindowMs, (packet, lostBefore, arrivalMs) =>
      this.release(packet, lostBefore, arrivalMs),
    );
  }

  /** Takes datagrams only from `address:port` from now on (where rtpengine sends this party's media from). */
  latch(address: string, port: number): void {
    this.latched = { address, port };
  }

  /** A re-negotiation (re-INVITE, re-subscription) changed the payload types. */
  setPayloadMap(map: PayloadMap): void {
    this.payloadMap = map;
    this.lastPayloadType = -1;
    this.lastFormat = undefined;
  }

  /** Handles one datagram from the socket (`from`: its source, checked against the latch). Never throws on bad input. */
  receive(datagram: Uint8Array, arrivalMs: number, from?: { readonly address: string; readonly port: number }): void {
    if (this.closed) return;
    if (this.latched && from && (from.port !== this.latched.port || from.address !== this.latched.address)) {
      this.stats.foreign++;
      return;
    }
    const parsed = parseRtp(datagram);
    if (isMalformed(parsed)) {
      if (parsed.malformed === 'rtcp') this.stats.rtcp++;
      else {
        this.stats.malformed++;
        this.malformedByReason[parsed.malformed] = (this.malformedByReason[parsed.malformed] ?? 0) + 1;
      }
      return;
    }
    if (this.ssrc !== undefined && parsed.ssrc !== this.ssrc) {
      this.probation(parsed, datagram.length, arrivalMs);
      return;
    }
    if (this.candidate) this.rejectCandidate();
    if (this.ssrc === undefined) this.changeSsrc(parsed.ssrc, arrivalMs);
    this.accept(parsed, datagram.length, arrivalMs);
  }

  private accept(parsed: RtpPacket, bytes: number, arrivalMs: number): void {
    this.stats.packets++;
    this.stats.bytes += bytes;
    const format = this.formatOf(parsed.payloadType);
    if (format?.kind === 'audio') this.updateJitter(parsed, format.clockRate, arrivalMs);
    this.reorder.push(parsed.sequence, this.mediaMsOf(parsed, format), parsed, arrivalMs);
  }

  /** A packet of another SSRC: it takes over only after its probation (see PROBATION_PACKETS). */
  private probation(parsed: RtpPacket, bytes: number, arrivalMs: number): void {
    const c = this.candidate;
    if (!c || c.ssrc !== parsed.ssrc || parsed.sequence !== ((c.lastSeq + 1) & 0xffff)) {
      if (c) this.rejectCandidate();
      this.candidate = { ssrc: parsed.ssrc, lastSeq: parsed.sequence, firstArrival: arrivalMs, held: [{ packet: parsed, bytes, arrivalMs }] };
      return;
    }
    c.lastSeq = parsed.sequence;
    if (c.held.length < PROBATION_HOLD) c.held.push({ packet: parsed, bytes, arrivalMs });
    else this.stats.ssrcRejected++;
    if (c.held.length < PROBATION_PACKETS || arrivalMs - c.firstArrival < PROBATION_MS) return;
    // A real change of source: the new SSRC takes the stream, its probation packets first.
    this.candidate = undefined;
    this.changeSsrc(c.ssrc, c.held[0]!.arrivalMs);
    for (const h of c.held) this.accept(h.packet, h.bytes, h.arrivalMs);
  }

  private rejectCandidate(): void {
    this.stats.ssrcRejected += this.candidate?.held.length ?? 0;
    this.candidate = undefined;
  }

  /**
   * The playout clock's tick (shared by every party of the receiver): packets held behind a gap
   * for longer than the reorder window are released (the stream stalled), a DTMF key whose end
   * packets were lost is reported three packet times after its last packet, and the sink fills
   * what is due `fillDelayMs` ago and still missing.
   */
  tick(nowMs: number, fillDelayMs: number): void {
    if (this.closed) return;
    const oldest = this.reorder.oldestHeldArrival();
    if (oldest !== undefined && nowMs - oldest >= this.reorderWindowMs) this.reorder.flush();
    if (this.lastDtmfArrival !== undefined && nowMs - this.lastDtmfArrival >= DTMF_END_WAIT_PACKETS * this.ptimeMs) {
      this.lastDtmfArrival = undefined;
      for (const d of this.dtmf.values()) for (const ev of d.flush()) this.emitDtmf(ev);
    }
    const due = nowMs - fillDelayMs;
    if (due < this.nextAdvanceMs) return;
    this.nextAdvanceMs = this.sink.advance(due) ?? -Infinity;
  }

  /** Releases packets held behind a gap for longer than the reorder window (the stream stalled). */
  expire(nowMs: number): void {
    const oldest = this.reorder.oldestHeldArrival();
    if (oldest !== undefined && nowMs - oldest >= this.reorderWindowMs) this.reorder.flush();
  }

  get holdsPackets(): boolean {
    return this.reorder.heldCount > 0;
  }

  /** The stream ends: everything held is released and an unfinished DTMF event reported. */
  end(): void {
    this.reorder.flush();
    for (const d of this.dtmf.values()) for (const ev of d.flush()) this.emitDtmf(ev);
  }

  /** Ends the stream for good: flushes it and tells the sink. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.end();
    this.sink.end();
  }

  private changeSsrc(ssrc: number, arrivalMs: number): void {
    if (this.ssrc !== undefined) {
      this.stats.ssrcChanges++;
      this.end();
      this.reorder.reset();
      this.reorder.setPacketMs(DEFAULT_PTIME_MS);
      this.dtmf.clear();
    }
    this.ssrc = ssrc;
    this.mediaRate = 0;
    this.lastTransit = undefined;
    this.jitterTicks = 0;
    this.lastAudioSeq = -1;
    this.sink.streamChange(ssrc, arrivalMs);
  }

  /**
   * A packet's timestamp as ms on the stream's continuous scale, each step in its own codec's
   * clock rate; a step across codecs of different rates counts as one packet time.
   */
  private mediaMsOf(packet: RtpPacket, format: PayloadFormat | undefined): number {
    const rate = format && 'clockRate' in format ? format.clockRate : 8000;
    const ms =
      this.mediaRate === 0 ? 0 : this.mediaRate === rate ? this.mediaMs + (((packet.timestamp - this.mediaTs) | 0) * 1000) / rate : this.mediaMs + this.ptimeMs;
    this.mediaTs = packet.timestamp;
    this.mediaRate = rate;
    this.mediaMs = ms;
    return ms;
  }

  private formatOf(payloadType: number): PayloadFormat | undefined {
    if (payloadType === this.lastPayloadType) return this.lastFormat;
    const format = this.payloadMap.get(payloadType) ?? STATIC_PAYLOAD_TYPES.get(payloadType);
    this.lastPayloadType = payloadType;
    this.lastFormat = format;
    return format;
  }

  private release(packet: RtpPacket, lostBefore: number, arrivalMs: number): void {
    const format = this.formatOf(packet.payloadType);
    switch (format?.kind) {
      case 'audio': {
        // An empty payload (padding only, a keepalive) carries no audio and no time: nothing is
        // added for it; the next packet's timestamp says how much time really passed.
        if (packet.payload.length === 0) {
          this.stats.empty++;
          break;
        }
        this.learnPtime(packet, format.clockRate);
        this.stats.codec = format.codec;
        if (this.sink.audio(format, packet.timestamp, packet.payload, lostBefore, arrivalMs) === false) this.playoutLate++;
        break;
      }
      case 'telephone-event': {
        let d = this.dtmf.get(format.clockRate);
        if (!d) this.dtmf.set(format.clockRate, (d = new DtmfDetector(format.clockRate)));
        for (const ev of d.push(packet.timestamp, packet.payload)) this.emitDtmf(ev);
        this.lastDtmfArrival = d.hasOpenEvent ? arrivalMs : undefined;
        break;
      }
      case 'comfort-noise':
        // RFC 3389: the first byte is the noise level in -dBov; an empty payload means no level.
        this.sink.comfortNoise(packet.payload.length > 0 ? packet.payload[0]! & 0x7f : 127);
        break;
      case 'unsupported':
        this.stats.undecodable++;
        break;
      case undefined:
        this.stats.unknownPayloadType++;
        break;
    }
  }

  private emitDtmf(ev: DtmfEvent): void {
    this.stats.dtmfEvents++;
    this.sink.dtmf(ev);
  }

  /** Sizes the reorder window in packets from the packet duration the sender actually uses. */
  private learnPtime(packet: RtpPacket, clockRate: number): void {
    const seq = packet.sequence;
    if (this.lastAudioSeq >= 0 && ((this.lastAudioSeq + 1) & 0xffff) === seq) {
      const ptimeMs = (((packet.timestamp - this.lastAudioTs) >>> 0) * 1000) / clockRate;
      if (ptimeMs >= 2.5 && ptimeMs <= 120) {
        this.ptimeMs = ptimeMs;
        this.reorder.setPacketMs(ptimeMs);
      }
    }
    this.lastAudioSeq = seq;
    this.lastAudioTs = packet.timestamp;
  }

  /** RFC 3550 A.8: J += (|D| - J) / 16, with D the change in transit time, in timestamp units. */
  private updateJitter(packet: RtpPacket, clockRate: number, arrivalMs: number): void {
    const transit = (arrivalMs * clockRate) / 1000 - packet.timestamp;
    if (this.lastTransit !== undefined) {
      const d = Math.abs(transit - this.lastTransit);
      // A timestamp jump (silence suppression, DTMF) is not jitter.
      if (d < clockRate) this.jitterTicks += (d - this.jitterTicks) / 16;
    }
    this.lastTransit = transit;
    this.stats.jitterMs = (this.jitterTicks * 1000) / clockRate;
  }

  /** Current totals of this party. */
  snapshot(): PartyRtpStats {
    // Late: behind what was already released in order, or behind what the playout clock filled.
    return { ...this.stats, ...this.reorder.stats, late: this.reorder.stats.late + this.playoutLate };
  }
}
