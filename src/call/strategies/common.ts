import { WhisperlineError } from '../../errors.js';
import { CallAnchor } from '../../media/anchor.js';
import { CallEndedError } from '../errors.js';
import type { AnswerWarning } from '../signalling.js';
import type { CallContext } from '../strategy.js';

/**
 * Sends the caller its 200 OK, saying so in a Warning when it is not in the offer's address family
 * (and with whatever else `extra` warns of). A failure (no ACK, the transaction gone) is SIGNALLING_FAILED, or
 * CALL_ENDED when the call closed meanwhile (a CANCEL raced the answer).
 */
export async function answerCaller(ctx: CallContext, sdp: string, extra: readonly AnswerWarning[] = []): Promise<void> {
  const family = CallAnchor.familyMismatch(ctx.inbound.offer, sdp);
  const warnings = family ? [...extra, family] : extra;
  if (family) ctx.log.info({ warning: family.text }, 'answered in another address family');
  try {
    await ctx.inbound.answer(sdp, warnings.length > 0 ? { warnings } : {});
  } catch (err) {
    ctx.checkOpen('answering');
    // CALL_ENDED from the leg: the caller cancelled while the 200 OK was being sent.
    if (err instanceof WhisperlineError) throw err;
    throw new WhisperlineError('SIGNALLING_FAILED', `the 200 OK to the caller failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (ctx.signal.aborted) {
    // The 200 OK won the race with the ending (a CANCEL, a shutdown): the dialog exists, end it.
    await ctx.inbound.bye().catch((err: unknown) => ctx.log.debug({ err }, 'BYE after a raced answer failed'));
    throw new CallEndedError(ctx.callId, 'answering');
  }
}

/** The address family of one of the gateway's own addresses. */
export function familyOf(address: string): 'IP4' | 'IP6' {
  return address.includes(':') ? 'IP6' : 'IP4';
}
