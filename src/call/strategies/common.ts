import { WhisperlineError } from '../../errors.js';
import { CallEndedError } from '../errors.js';
import type { CallContext } from '../strategy.js';

/**
 * Sends the caller its 200 OK. A failure (no ACK, the transaction gone) is SIGNALLING_FAILED, or
 * CALL_ENDED when the call closed meanwhile (a CANCEL raced the answer).
 */
export async function answerCaller(ctx: CallContext, sdp: string): Promise<void> {
  try {
    await ctx.inbound.answer(sdp);
  } catch (err) {
    ctx.checkOpen('answering');
    if (err instanceof WhisperlineError) throw err;
    throw new WhisperlineError('SIGNALLING_FAILED', `the 200 OK to the caller failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (ctx.signal.aborted) {
    // The 200 OK won the race with the ending (a CANCEL, a shutdown): the dialog exists, end it.
    await ctx.inbound.bye().catch((err: unknown) => ctx.log.debug({ err }, 'BYE after a raced answer failed'));
    throw new CallEndedError(ctx.callId, 'answering');
  }
}
