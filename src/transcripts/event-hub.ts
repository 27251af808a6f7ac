import { EventEmitter } from 'node:events';
import type { CallEvent } from './events.js';
import type { Logger } from '../log.js';
import type { TranscriptStore } from './store.js';

export interface CallEventHubDeps {
  readonly store: TranscriptStore;
  /** Sees every event after it is stored and before anyone else (e.g. Prometheus counters). */
  readonly observe?: (event: CallEvent) => void;
  readonly logger: Logger;
}

/**
 * The one path every call event takes, whoever produced it (a SIP call, an ingest socket): the
 * store first, then the listeners. Listeners get the event's store cursor (undefined for a
 * partial, which is not stored), which is what supervisor clients resume from, and its time.
 *
 * Contract: an event reaches listeners only after `store.record()` returned, so whatever a
 * client saw can be replayed after a restart. A failed write is logged and the event still goes
 * out live (without a cursor): losing it from history is better than hiding it from a supervisor.
 */
export class CallEventHub extends EventEmitter<{ event: [event: CallEvent, cursor: number | undefined, at: number] }> {
  constructor(private readonly deps: CallEventHubDeps) {
    super();
    // Every supervisor client and fork may listen; they are bounded elsewhere (config), not here.
    this.setMaxListeners(0);
  }

  /** Records and publishes one event; `at` is its wall-clock time (ms since the epoch). */
  publish(event: CallEvent, at: number = Date.now()): void {
    let cursor: number | undefined;
    try {
      cursor = this.deps.store.record(event, at);
    } catch (err) {
      this.deps.logger.error({ err, callId: event.callId, seq: event.seq, kind: event.kind }, 'transcript store write failed');
    }
    this.deps.observe?.(event);
    this.emit('event', event, cursor, at);
  }
}
