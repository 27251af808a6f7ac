/**
 * A voice application's `dial` at the call level: the answered caller is bridged to the first
 * of its targets to answer, for as long as that leg lasts; then the call is the gateway's again
 * and the application goes on. What a dial asks for, and how it ended, in jambonz's terms.
 */
import { CalleeRejectedError } from './errors.js';
import type { DialOptions } from './signalling.js';

export interface DialRequest {
  /** SIP URIs dialed at once (jambonz's simultaneous ring); the first to answer is bridged, the others CANCELled. */
  readonly targets: readonly string[];
  /** How long the targets may ring (jambonz's `timeout`, 60 s by default). */
  readonly ringTimeoutMs: number;
  /** The longest the bridge may last (jambonz's `timeLimit`). */
  readonly timeLimitMs?: number;
  readonly options?: DialOptions;
  /** Aborted when the application takes the call back (a redirect): the dialed leg is hung up. */
  readonly signal: AbortSignal;
  /** The callee answered and is bridged (with the party its speech is transcribed as, if it is). */
  readonly onAnswered?: (answer: { readonly party: string | undefined; readonly target: string }) => void;
}

/** jambonz's `dial_call_status`. */
export type DialCallStatus = 'completed' | 'failed' | 'busy' | 'no-answer';

export interface DialOutcome {
  readonly callStatus: DialCallStatus;
  /** The final SIP status of the outbound INVITE (jambonz's `dial_sip_status`). */
  readonly sipStatus: number;
  /** The dialed leg's Call-ID-like id (jambonz's `dial_call_sid`), when one answered. */
  readonly callSid?: string;
  /** The target that answered. */
  readonly target?: string;
  /** The party the callee was transcribed as. */
  readonly party?: string;
  /** Seconds the bridge lasted (jambonz's `dial_call_duration`). */
  readonly durationS?: number;
  /** Who ended an answered dial. */
  readonly endedBy?: 'callee' | 'caller' | 'application' | 'time-limit';
}

/**
 * How an unanswered dial ended, as jambonz reports it: busy for 486/600/603, no-answer for a
 * ring timeout or 408/480/487, failed for anything else (unreachable, 4xx/5xx). A dial the call
 * or the application cancelled has no outcome (the session reports it as CALL_ENDED).
 */
export function unansweredOutcome(err: unknown, ringTimedOut: boolean): DialOutcome {
  if (ringTimedOut) return { callStatus: 'no-answer', sipStatus: 487 };
  if (err instanceof CalleeRejectedError) {
    const status = err.sipStatus;
    if (status === 486 || status === 600 || status === 603) return { callStatus: 'busy', sipStatus: status };
    if (status === 408 || status === 480 || status === 487) return { callStatus: 'no-answer', sipStatus: status };
    return { callStatus: 'failed', sipStatus: status };
  }
  return { callStatus: 'failed', sipStatus: 503 };
}
