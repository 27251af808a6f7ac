/**
 * RFC 4733 telephone-event detection. A sender repeats packets with a growing duration while a key
 * is held and sends the end packet (E bit) three times; every packet of one event shares its RTP
 * timestamp. The detector reports each event exactly once, when it ends.
 */
export interface DtmfEvent {
  /** '0'-'9', '*', '#', 'A'-'D', or 'flash'. */
  readonly digit: string;
  /** Duration of the key press in ms. */
  readonly durationMs: number;
  /** RTP timestamp of the event's start (identifies it). */
  readonly timestamp: number;
  /** True when the end packet never arrived and the event was closed by what came after it. */
  readonly endLost: boolean;
}

const DIGITS = '0123456789*#ABCD';

export function eventDigit(code: number): string | undefined {
  if (code < 16) return DIGITS[code];
  if (code === 16) return 'flash';
  return undefined;
}

export class DtmfDetector {
  private open: { timestamp: number; code: number; duration: number } | undefined;
  private lastEndedTimestamp: number | undefined;

  constructor(private readonly clockRate: number) {}

  /**
   * Feeds one telephone-event payload (in sequence order) and returns the events it completes:
   * usually none, one when an end packet arrives, two when it also closes an earlier event whose
   * end packets were all lost.
   */
  push(timestamp: number, payload: Uint8Array): DtmfEvent[] {
    if (payload.length < 4) return [];
    const code = payload[0]!;
    const end = (payload[1]! & 0x80) !== 0;
    const duration = (payload[2]! << 8) | payload[3]!;
    // Repeated end packets, and stragglers of an event already reported.
    if (timestamp === this.lastEndedTimestamp) return [];
    const done: DtmfEvent[] = [];
    if (this.open && this.open.timestamp !== timestamp) this.close(true, done);
    if (!this.open) this.open = { timestamp, code, duration };
    else this.open.duration = Math.max(this.open.duration, duration);
    if (end) this.close(false, done);
    return done;
  }

  /** Whether an event has begun and not ended yet. */
  get hasOpenEvent(): boolean {
    return this.open !== undefined;
  }

  /** Closes an event whose end packets never came (stream ended, or a new event began). */
  flush(): DtmfEvent[] {
    const done: DtmfEvent[] = [];
    if (this.open) this.close(true, done);
    return done;
  }

  private close(endLost: boolean, into: DtmfEvent[]): void {
    const o = this.open!;
    this.open = undefined;
    this.lastEndedTimestamp = o.timestamp;
    const digit = eventDigit(o.code);
    // Events 17-255 (tones, line events) are not DTMF: consumed silently.
    if (digit !== undefined) into.push({ digit, durationMs: Math.round((o.duration * 1000) / this.clockRate), timestamp: o.timestamp, endLost });
  }
}
