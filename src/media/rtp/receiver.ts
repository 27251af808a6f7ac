import type { Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { WhisperlineError } from '../../errors.js';
import { RtpPartyStream, type MediaSink, type PartyRtpStats } from './party-stream.js';
import type { PayloadMap } from './payload-map.js';
import { RtpPortPool } from './port-pool.js';

export interface RtpReceiverOptions {
  readonly bindAddress: string;
  readonly portMin: number;
  readonly portMax: number;
  readonly reorderWindowMs: number;
  /**
   * The playout clock fills what a party has not sent once it is this late (ms, default 200):
   * longer than the reorder window, so a jitter spike delays audio instead of losing it.
   */
  readonly fillDelayMs?: number;
  /** Socket receive buffer per party; a burst after a stall must fit (default 256 KiB). */
  readonly recvBufferBytes?: number;
}

/** The default playout fill delay (see `fillDelayMs`). */
export const DEFAULT_FILL_DELAY_MS = 200;

/** One party's receive socket: what the gateway advertises to rtpengine, and what it closes. */
export interface RtpPartyPort {
  readonly address: string;
  readonly port: number;
  readonly stream: RtpPartyStream;
  stats(): PartyRtpStats;
  /** Closes the socket and releases the port; everything still held is released first. Idempotent. */
  close(): void;
}

/** The playout clock's tick: one timer for every party of the receiver (ms). */
const TICK_MS = 20;

/**
 * Owns the RTP sockets of all subscribed parties: one UDP socket per party from the configured
 * range, and the playout clock: one timer for all of them that, every tick, releases packets held
 * behind a gap once a stream stalls and lets each party's audio fill what is due and missing.
 */
export class RtpReceiver {
  private readonly pool: RtpPortPool;
  private readonly open = new Set<RtpPartyPort>();
  private timer: NodeJS.Timeout | undefined;
  private readonly clock = { ticks: 0, partyTicks: 0, busyMs: 0 };
  private closed = false;
  private sinks = 0;

  constructor(private readonly options: RtpReceiverOptions) {
    this.pool = new RtpPortPool(options.bindAddress, options.portMin, options.portMax);
  }

  /** The address the receiver's sockets bind to and that SDP answers advertise. */
  get address(): string {
    return this.options.bindAddress;
  }

  get openPorts(): number {
    return this.open.size;
  }

  /** The playout clock's work so far: ticks run, party-ticks (one party in one tick), time spent in them. */
  get clockStats(): { readonly ticks: number; readonly partyTicks: number; readonly busyMs: number } {
    return { ...this.clock };
  }

  async openParty(payloadMap: PayloadMap, sink: MediaSink): Promise<RtpPartyPort> {
    if (this.closed) throw new WhisperlineError('MEDIA_CLOSED', 'the RTP receiver is closed');
    const { socket, port } = await this.pool.bind();
    try {
      socket.setRecvBufferSize(this.options.recvBufferBytes ?? 256 * 1024);
    } catch {
      // Capped by net.core.rmem_max; the default buffer still works.
    }
    const stream = new RtpPartyStream(payloadMap, sink, this.options.reorderWindowMs);
    socket.on('message', (msg, rinfo) => stream.receive(msg, performance.now(), rinfo));
    // A UDP socket error (ICMP unreachable echoes, etc.) must not take the gateway down.
    socket.on('error', () => undefined);
    let done = false;
    const party: RtpPartyPort = {
      address: this.options.bindAddress,
      port,
      stream,
      stats: () => stream.snapshot(),
      close: () => {
        if (done) return;
        done = true;
        this.open.delete(party);
        closeSocket(socket);
        this.pool.release(port);
        stream.close();
      },
    };
    this.open.add(party);
    this.startTimer();
    return party;
  }

  /**
   * A socket from the same range that takes a call leg's media and drops it: the gateway's own
   * end of a call it answers (rtpengine needs an answerer; what the caller says reaches the
   * gateway through the caller's subscription). Counts what arrives. `close()` is idempotent.
   */
  async openSink(): Promise<{ readonly address: string; readonly port: number; readonly packets: () => number; close(): void }> {
    if (this.closed) throw new WhisperlineError('MEDIA_CLOSED', 'the RTP receiver is closed');
    const { socket, port } = await this.pool.bind();
    let packets = 0;
    socket.on('message', () => void packets++);
    socket.on('error', () => undefined);
    let done = false;
    this.sinks++;
    return {
      address: this.options.bindAddress,
      port,
      packets: () => packets,
      close: () => {
        if (done) return;
        done = true;
        this.sinks--;
        closeSocket(socket);
        this.pool.release(port);
      },
    };
  }

  /** Sockets held by sinks (for leak checks). */
  get openSinks(): number {
    return this.sinks;
  }

  /** Closes every party's socket. Idempotent. */
  close(): void {
    this.closed = true;
    for (const p of [...this.open]) p.close();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.open.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
        return;
      }
      const now = performance.now();
      const fillDelay = this.options.fillDelayMs ?? DEFAULT_FILL_DELAY_MS;
      for (const p of this.open) p.stream.tick(now, fillDelay);
      this.clock.ticks++;
      this.clock.partyTicks += this.open.size;
      this.clock.busyMs += performance.now() - now;
    }, TICK_MS);
    this.timer.unref();
  }
}

function closeSocket(socket: Socket): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}
