import { WhisperlineError } from '../errors.js';
import type { CallEndReason } from '../transcripts/events.js';

/**
 * The call level's typed errors. The SIP edge maps them to responses (`sip/errors.ts`); nothing
 * branches on their text.
 */

/** The bridge's callee ended the outbound INVITE with a final error response. */
export class CalleeRejectedError extends WhisperlineError {
  constructor(
    /** The callee's final status (4xx, 5xx, 6xx; a 3xx the gateway does not follow). */
    readonly sipStatus: number,
    /** Its reason phrase. */
    readonly sipReason: string,
    options: { cause?: unknown } = {},
  ) {
    super('CALLEE_REJECTED', `the callee answered ${sipStatus} ${sipReason}`, options);
  }
}

/**
 * The call ended while `what` was under way: the expected end of a set-up, not a failure.
 * `reason` says how, when the one who noticed first knows it (the SIP stack saw the CANCEL).
 */
export class CallEndedError extends WhisperlineError {
  constructor(
    callId: string,
    what: string,
    readonly reason?: CallEndReason,
  ) {
    super('CALL_ENDED', `call ${callId} ended while ${what}`);
  }
}

export function isCallEnded(err: unknown): err is CallEndedError {
  return err instanceof WhisperlineError && err.code === 'CALL_ENDED';
}
