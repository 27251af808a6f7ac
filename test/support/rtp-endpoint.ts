import { createSocket, type Socket } from 'node:dgram';
import { parse as parseSdp } from 'sdp-transform';
import { buildRtp, parseRtp, isMalformed, type RtpPacket } from '../../src/media/rtp/packet.js';

/**
 * A synthetic SIP party's media (named as such: it stands in for a phone or a PBX leg in tests).
 * It offers/answers one audio codec, sends a stream of pre-encoded 20 ms payloads as RTP, and
 * records every packet it receives.
 */
/** G722 is offered so tests can exercise codecs the gateway does not decode (rtpengine transcodes). */
export type EndpointCodec = 'PCMU' | 'PCMA' | 'opus' | 'G722';

const CODEC_LINE: Record<EndpointCodec, { pt: number; rtpmap: string; clockRate: number; fmtp?: string }> = {
  PCMU: { pt: 0, rtpmap: 'PCMU/8000', clockRate: 8000 },
  PCMA: { pt: 8, rtpmap: 'PCMA/8000', clockRate: 8000 },
  opus: { pt: 96, rtpmap: 'opus/48000/2', clockRate: 48000, fmtp: 'useinbandfec=1' },
  // RFC 3551: G.722's RTP clock is 8000 although it samples at 16 kHz.
  G722: { pt: 9, rtpmap: 'G722/8000', clockRate: 8000 },
};

export class RtpEndpoint {
  readonly received: RtpPacket[] = [];
  private socket: Socket | undefined;
  port = 0;
  /** One timer per stream being sent: several streams may be sent at once (another SSRC, DTMF). */
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly codec: EndpointCodec,
    private readonly address = '127.0.0.1',
  ) {}

  async open(): Promise<this> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, this.address, resolve));
    socket.on('message', (msg) => {
      const p = parseRtp(Buffer.from(msg));
      if (!isMalformed(p)) this.received.push(p);
    });
    this.socket = socket;
    this.port = socket.address().port;
    return this;
  }

  get payloadType(): number {
    return CODEC_LINE[this.codec].pt;
  }

  get clockRate(): number {
    return CODEC_LINE[this.codec].clockRate;
  }

  /** The endpoint's SDP (offer or answer), with telephone-event at the codec's clock rate. */
  sdp(sessionId = 1): string {
    const c = CODEC_LINE[this.codec];
    const te = 101;
    return [
      'v=0',
      `o=- ${sessionId} 1 IN IP4 ${this.address}`,
      's=synthetic endpoint',
      `c=IN IP4 ${this.address}`,
      't=0 0',
      `m=audio ${this.port} RTP/AVP ${c.pt} ${te}`,
      `a=rtpmap:${c.pt} ${c.rtpmap}`,
      ...(c.fmtp ? [`a=fmtp:${c.pt} ${c.fmtp}`] : []),
      `a=rtpmap:${te} telephone-event/${c.clockRate}`,
      `a=fmtp:${te} 0-16`,
      'a=ptime:20',
      'a=sendrecv',
      '',
    ].join('\r\n');
  }

  /**
   * Sends `packets` as consecutive 20 ms RTP packets to the address in `remoteSdp`, paced in
   * real time. An `{ event }` item is an RFC 4733 telephone-event payload: a run of them shares
   * the timestamp of its first packet, as one key press does. Resolves when the last one is sent.
   */
  /**
   * Sends `packets` as a stream every 20 ms. `start` continues an earlier stream (a DTX sender's
   * next talkspurt): its first sequence number and timestamp; default 1000 and 5000.
   */
  send(
    remoteSdp: string,
    packets: readonly (Uint8Array | { event: Uint8Array })[],
    ssrc = 0x1000 + this.port,
    mediaIndex = 0,
    start: { readonly sequence: number; readonly timestamp: number } = { sequence: 1000, timestamp: 5000 },
  ): Promise<void> {
    const media = parseSdp(remoteSdp).media[mediaIndex]!;
    const host = media.connection?.ip ?? parseSdp(remoteSdp).connection?.ip ?? '127.0.0.1';
    const port = media.port;
    const ticks = (this.clockRate * 20) / 1000;
    let i = 0;
    let eventStart = -1;
    return new Promise((resolve) => {
      const started = Date.now();
      const tick = (): void => {
        // Catch up to wall-clock time so timer drift does not stretch the stream.
        const due = Math.min(packets.length, Math.floor((Date.now() - started) / 20) + 1);
        for (; i < due; i++) {
          const item = packets[i]!;
          const isEvent = !(item instanceof Uint8Array);
          if (!isEvent) eventStart = -1;
          else if (eventStart < 0) eventStart = i;
          const timestamp = (start.timestamp + (isEvent ? eventStart : i) * ticks) >>> 0;
          const payloadType = isEvent ? 101 : this.payloadType;
          const pkt = buildRtp({ payloadType, sequence: (start.sequence + i) & 0xffff, timestamp, ssrc, marker: i === 0 || (isEvent && eventStart === i) }, isEvent ? item.event : item);
          this.socket!.send(pkt, port, host);
        }
        if (i >= packets.length) {
          clearInterval(timer);
          this.timers.delete(timer);
          resolve();
        }
      };
      const timer = setInterval(tick, 10);
      this.timers.add(timer);
      tick();
    });
  }

  /**
   * Sends `packets` at once, in the order given (a burst, a reordering), each with its own
   * sequence number and timestamp, to the address in `remoteSdp`.
   */
  sendNow(remoteSdp: string, packets: readonly { readonly sequence: number; readonly timestamp: number; readonly payload: Uint8Array }[], ssrc = 0x1000 + this.port): void {
    const media = parseSdp(remoteSdp).media[0]!;
    const host = media.connection?.ip ?? parseSdp(remoteSdp).connection?.ip ?? '127.0.0.1';
    for (const p of packets) {
      this.socket!.send(buildRtp({ payloadType: this.payloadType, sequence: p.sequence & 0xffff, timestamp: p.timestamp >>> 0, ssrc }, p.payload), media.port, host);
    }
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    this.socket?.close();
    this.socket = undefined;
  }
}

/** The remote media address and port an SDP names (c= of the media, else of the session). */
export function sdpAddress(sdp: string): { address: string; port: number } {
  const s = parseSdp(sdp);
  const m = s.media[0]!;
  return { address: m.connection?.ip ?? s.connection?.ip ?? '', port: m.port };
}
