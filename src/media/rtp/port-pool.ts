import { createSocket, type Socket } from 'node:dgram';
import { WhisperlineError } from '../../errors.js';

export class PortsExhaustedError extends WhisperlineError {
  constructor(portMin: number, portMax: number) {
    super('PORTS_EXHAUSTED', `no free RTP port in ${portMin}-${portMax}`, { retryable: true });
  }
}

/**
 * Hands out even UDP ports (RTP convention: RTCP would take the odd one above) from a configured
 * range, binding each socket before it is handed out so a port in use elsewhere is skipped.
 * Next-fit, so a port just released is not reused at once and stray packets of an ended subscription
 * are unlikely to reach a new one.
 */
export class RtpPortPool {
  private readonly inUse = new Set<number>();
  private next: number;
  private readonly first: number;

  constructor(
    private readonly address: string,
    private readonly portMin: number,
    private readonly portMax: number,
  ) {
    this.first = portMin + (portMin & 1);
    this.next = this.first;
  }

  get size(): number {
    return Math.floor((this.portMax - this.first) / 2) + 1;
  }

  get used(): number {
    return this.inUse.size;
  }

  /** Binds a socket on a free port of the range; `release` must be called with the port when done. */
  async bind(): Promise<{ socket: Socket; port: number }> {
    for (let tries = 0; tries < this.size; tries++) {
      const port = this.next;
      this.next = port + 2 > this.portMax ? this.first : port + 2;
      if (this.inUse.has(port)) continue;
      this.inUse.add(port);
      const socket = createSocket({ type: this.address.includes(':') ? 'udp6' : 'udp4' });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind(port, this.address, () => {
            socket.off('error', reject);
            resolve();
          });
        });
        return { socket, port };
      } catch (err) {
        this.inUse.delete(port);
        socket.close();
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
    throw new PortsExhaustedError(this.portMin, this.portMax);
  }

  release(port: number): void {
    this.inUse.delete(port);
  }
}
