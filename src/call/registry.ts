import type { Logger } from '../log.js';
import type { CallSession } from './call-session.js';
import type { CallEndReason } from '../transcripts/events.js';

export type Admission = { readonly ok: true } | { readonly ok: false; readonly status: 503; readonly reason: string; readonly retryAfterSec: number };

export interface CallRegistryOptions {
  /** Calls beyond this are refused with 503 (overload). */
  readonly maxCalls: number;
  readonly logger: Logger;
}

/**
 * The live calls. Admits new INVITEs (503 with Retry-After when full or draining) and drains on
 * shutdown: new calls are refused at once, live calls get a grace period to end by themselves,
 * then are ended with reason `shutdown`.
 */
export class CallRegistry {
  private readonly calls = new Map<string, CallSession>();
  private draining = false;
  private drained: Promise<void> | undefined;

  constructor(private readonly options: CallRegistryOptions) {}

  get size(): number {
    return this.calls.size;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  admit(): Admission {
    if (this.draining) return { ok: false, status: 503, reason: 'Shutting Down', retryAfterSec: 30 };
    if (this.calls.size >= this.options.maxCalls) return { ok: false, status: 503, reason: 'Too Many Calls', retryAfterSec: 5 };
    return { ok: true };
  }

  get(callId: string): CallSession | undefined {
    return this.calls.get(callId);
  }

  /** Tracks `session` until it has ended. */
  add(session: CallSession): void {
    this.calls.set(session.callId, session);
    void session.ended.then(() => this.remove(session));
  }

  private remove(session: CallSession): void {
    if (this.calls.get(session.callId) === session) this.calls.delete(session.callId);
  }

  /** Ends every live call now for `reason`. */
  async closeAll(reason: CallEndReason): Promise<void> {
    await Promise.all([...this.calls.values()].map((c) => c.close(reason)));
  }

  /** Refuses new calls, waits up to `graceMs` for live ones to end, then ends the rest. */
  drain(graceMs: number): Promise<void> {
    // Once: the shutdown and the start-up failure path may both ask.
    return (this.drained ??= this.drainOnce(graceMs));
  }

  private async drainOnce(graceMs: number): Promise<void> {
    this.draining = true;
    this.options.logger.info({ calls: this.calls.size, graceMs }, 'draining calls');
    const deadline = Date.now() + graceMs;
    while (this.calls.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, deadline - Date.now()))));
    const left = [...this.calls.values()];
    if (left.length > 0) this.options.logger.info({ calls: left.length }, 'ending calls still live after the grace period');
    await Promise.all(left.map((c) => c.close('shutdown')));
  }
}
