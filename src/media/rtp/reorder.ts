/**
 * Puts the packets of one RTP stream (one SSRC) back in sequence order, holding packets behind a
 * gap for up to `windowMs` of media time (by their timestamps: the packets held span that much
 * audio) before it declares the missing ones lost. A window in media time holds the same audio
 * whatever the packet time, and a burst released after a stall is reordered within it too.
 *
 * Contract: `release` sees every accepted item exactly once, in increasing sequence order, and
 * learns through `lostBefore` how many sequence numbers were given up right before it. Late
 * packets (behind what was already released) and duplicates are counted and dropped.
 */
export interface ReorderStats {
  late: number;
  duplicate: number;
  lost: number;
}

/** A jump this large is a sender restart (RFC 3550 MAX_DROPOUT), not loss. */
const MAX_DROPOUT = 3000;
const CAPACITY = 256; // power of two, > any sane window (60 ms of 2.5 ms Opus frames is 24)
const MASK = CAPACITY - 1;

export class ReorderBuffer<T> {
  private readonly items: (T | undefined)[] = new Array<T | undefined>(CAPACITY).fill(undefined);
  private readonly seqs = new Float64Array(CAPACITY).fill(-1);
  private readonly arrivals = new Float64Array(CAPACITY);
  /** Media time of each held item (ms on the stream's own continuous scale). */
  private readonly times = new Float64Array(CAPACITY);
  /** Extended sequence numbers recently released, to tell duplicates from late packets. */
  private readonly released = new Float64Array(CAPACITY).fill(-1);
  private started = false;
  private highest = 0;
  private expected = 0;
  private held = 0;
  private pendingLoss = 0;
  readonly stats: ReorderStats = { late: 0, duplicate: 0, lost: 0 };

  /** Media time one packet covers (ms): how far before the first held packet the missing one starts. */
  private packetMs = 20;

  constructor(
    private readonly windowMs: number,
    private readonly release: (item: T, lostBefore: number, arrivalMs: number) => void,
  ) {}

  /** The packet time the sender uses (learnt from its packets). */
  setPacketMs(ms: number): void {
    this.packetMs = ms;
  }

  get heldCount(): number {
    return this.held;
  }

  /** Arrival time of the oldest packet held behind a gap, or undefined when nothing is held. */
  oldestHeldArrival(): number | undefined {
    if (this.held === 0) return undefined;
    let oldest = Infinity;
    for (let s = this.expected; s <= this.highest; s++) {
      const i = s & MASK;
      if (this.seqs[i] === s && this.arrivals[i]! < oldest) oldest = this.arrivals[i]!;
    }
    return oldest;
  }

  /** `mediaMs`: the packet's timestamp as ms on the stream's continuous scale. */
  push(sequence: number, mediaMs: number, item: T, arrivalMs: number): void {
    if (!this.started) {
      this.started = true;
      this.highest = this.expected = sequence;
    }
    // Extend the 16-bit sequence number against the highest seen (handles wrap-around).
    const ext = this.highest + (((sequence - this.highest) << 16) >> 16);
    const ahead = ext - this.expected;
    if (ahead < 0) {
      if (this.released[ext & MASK] === ext) this.stats.duplicate++;
      else this.stats.late++;
      return;
    }
    if (ahead >= CAPACITY - 1) {
      // Beyond what the buffer can hold: release everything and continue from here.
      this.flush();
      if (ahead < MAX_DROPOUT) this.declareLost(ext - this.expected);
      this.expected = ext;
    }
    const slot = ext & MASK;
    if (ahead === 0 && this.held === 0) {
      // The common case, the next packet with nothing held: released at once, without a slot.
      if (ext > this.highest) this.highest = ext;
      this.releaseNext(item, arrivalMs);
      return;
    }
    if (this.seqs[slot] === ext) {
      this.stats.duplicate++;
      return;
    }
    this.seqs[slot] = ext;
    this.items[slot] = item;
    this.arrivals[slot] = arrivalMs;
    this.times[slot] = mediaMs;
    this.held++;
    if (ext > this.highest) this.highest = ext;
    this.drain();
    while (this.held > 0 && this.heldSpanMs() >= this.windowMs) {
      this.skipToNextHeld();
      this.drain();
    }
  }

  /** How much audio waits behind the gap: from the first held packet's start to the newest one's end. */
  private heldSpanMs(): number {
    let first = this.expected;
    while (this.seqs[first & MASK] !== first) first++;
    return this.times[this.highest & MASK]! + this.packetMs - this.times[first & MASK]!;
  }

  /**
   * Starts over for a new stream (new SSRC): everything held is released first, then sequence
   * tracking restarts with the next packet. The counters keep accumulating.
   */
  reset(): void {
    this.flush();
    this.started = false;
    this.pendingLoss = 0;
    this.released.fill(-1);
  }

  /** Releases everything held, declaring the gaps between them lost (stall, SSRC change, end). */
  flush(): void {
    while (this.held > 0) {
      this.skipToNextHeld();
      this.drain();
    }
  }

  private drain(): void {
    for (;;) {
      const slot = this.expected & MASK;
      if (this.seqs[slot] !== this.expected) return;
      const item = this.items[slot] as T;
      this.items[slot] = undefined;
      this.seqs[slot] = -1;
      this.held--;
      this.releaseNext(item, this.arrivals[slot]!);
    }
  }

  /** Releases `item` as the expected sequence number, with the loss declared before it. */
  private releaseNext(item: T, arrivalMs: number): void {
    this.released[this.expected & MASK] = this.expected;
    this.expected++;
    const lost = this.pendingLoss;
    this.pendingLoss = 0;
    this.release(item, lost, arrivalMs);
  }

  private skipToNextHeld(): void {
    let s = this.expected;
    while (this.seqs[s & MASK] !== s) s++;
    this.declareLost(s - this.expected);
    this.expected = s;
  }

  private declareLost(count: number): void {
    this.stats.lost += count;
    this.pendingLoss += count;
  }
}
