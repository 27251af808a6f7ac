/**
 * Live interpretation on a bridge: each party's translated finals are spoken into the other
 * party's leg. One queue per direction, spoken one at a time in order; an item that waited past
 * `maxLagMs` (the conversation has moved on) or that overflows `maxQueued` is dropped and counted,
 * never spoken late. Transcription of both parties goes on throughout: the playback mutes the
 * speaker towards the listener only (see RtpenginePlayer), or passes it (`original: pass`).
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import type { TranslationEvent } from '../transcripts/events.js';
import type { PlaybackTarget } from './playback.js';
import type { CallSpeaker } from './speaker.js';

export interface InterpreterOptions {
  /** A translation not started this long after it arrived is dropped (ms). */
  readonly maxLagMs: number;
  /** Translations waiting per direction; the oldest is dropped beyond it. */
  readonly maxQueued: number;
  /** The voice to speak into each leg (its listener's language's default when absent). */
  readonly voices?: Partial<Record<PlaybackTarget, string>>;
}

export interface InterpreterStats {
  readonly spoken: number;
  /** Dropped unspoken: waited past maxLagMs, or pushed out of a full queue. */
  readonly droppedStale: number;
  readonly failed: number;
}

interface Pending {
  readonly event: TranslationEvent;
  readonly arrivedAt: number;
}

class Direction {
  readonly queue: Pending[] = [];
  running = false;
  constructor(readonly listener: PlaybackTarget) {}
}

export class Interpreter {
  private readonly directions = new Map<PlaybackTarget, Direction>();
  private readonly counters = { spoken: 0, droppedStale: 0, failed: 0 };
  private closed = false;

  constructor(
    private readonly speaker: CallSpeaker,
    private readonly options: InterpreterOptions,
    private readonly logger: Logger,
  ) {}

  /** A party's translation, to be spoken to `listener` (the other party). */
  translation(event: TranslationEvent, listener: PlaybackTarget): void {
    if (this.closed || event.text.trim() === '') return;
    let direction = this.directions.get(listener);
    if (!direction) {
      direction = new Direction(listener);
      this.directions.set(listener, direction);
    }
    direction.queue.push({ event, arrivedAt: performance.now() });
    while (direction.queue.length > this.options.maxQueued) this.drop(direction.queue.shift()!, 'queue full');
    if (!direction.running) void this.run(direction);
  }

  stats(): InterpreterStats {
    return { ...this.counters };
  }

  /** Drops what waits; what is speaking is stopped by the playback's own close. Idempotent. */
  close(): void {
    this.closed = true;
    for (const d of this.directions.values()) d.queue.splice(0);
  }

  private async run(direction: Direction): Promise<void> {
    direction.running = true;
    try {
      for (;;) {
        const next = direction.queue.shift();
        if (!next || this.closed) return;
        if (performance.now() - next.arrivedAt > this.options.maxLagMs) {
          this.drop(next, 'stale');
          continue;
        }
        const voice = this.options.voices?.[direction.listener];
        const outcome = await this.speaker.say(direction.listener, {
          text: next.event.text,
          language: next.event.language,
          ...(voice !== undefined ? { voice } : {}),
          purpose: 'interpretation',
          translationSeq: next.event.seq,
        });
        if (outcome.status === 'failed') this.counters.failed++;
        else this.counters.spoken++;
      }
    } finally {
      direction.running = false;
    }
  }

  private drop(item: Pending, why: string): void {
    this.counters.droppedStale++;
    this.logger.info({ translationSeq: item.event.seq, party: item.event.party, why }, 'interpretation dropped unspoken');
  }
}
