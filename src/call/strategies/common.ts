import { WhisperlineError } from '../../errors.js';
import { CallAnchor } from '../../media/anchor.js';
import { delayedOfferStandIn } from '../../media/sdp.js';
import { CallEndedError } from '../errors.js';
import type { AnswerWarning } from '../signalling.js';
import type { CallContext, ConnectedCall } from '../strategy.js';

/**
 * The caller's SDP as rtpengine is first offered it: the INVITE's offer, or for a delayed offer
 * (an INVITE without SDP) the gateway's stand-in, which the caller's answer in the ACK replaces.
 */
export function callerOffer(ctx: CallContext): string {
  return ctx.inbound.offer ?? delayedOfferStandIn(ctx.receiver.address);
}

/**
 * Sends the caller its 200 OK with `sdp`: the answer to its offer, or for a delayed offer the
 * gateway's offer, whose answer (from the ACK) it resolves with. An answer not in the offer's
 * address family says so in a Warning (with whatever else `extra` warns of). A failure (no ACK,
 * the transaction gone) is SIGNALLING_FAILED, or CALL_ENDED when the call closed meanwhile (a
 * CANCEL raced the answer). Once the 200 OK is out, a failure here ends the dialog with a BYE.
 */
export async function answerCaller(ctx: CallContext, sdp: string, extra: readonly AnswerWarning[] = []): Promise<string | undefined> {
  const offered = ctx.inbound.offer;
  const family = offered !== undefined ? CallAnchor.familyMismatch(offered, sdp) : undefined;
  const warnings = family ? [...extra, family] : extra;
  if (family) ctx.log.info({ warning: family.text }, 'answered in another address family');
  const options = warnings.length > 0 ? { warnings } : {};
  let callerAnswer: string | undefined;
  try {
    if (offered !== undefined) await ctx.inbound.answer(sdp, options);
    else callerAnswer = await ctx.inbound.answerWithOffer(sdp, options);
  } catch (err) {
    ctx.checkOpen('answering');
    // CALL_ENDED from the leg: the caller cancelled while the 200 OK was being sent.
    if (err instanceof WhisperlineError && err.code === 'CALL_ENDED') throw err;
    // A delayed offer's 200 OK went out but its ACK was unusable: the dialog exists, end it.
    if (offered === undefined) await byeAfterAnswer(ctx);
    if (err instanceof WhisperlineError) throw err;
    throw new WhisperlineError('SIGNALLING_FAILED', `the 200 OK to the caller failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (ctx.signal.aborted) {
    // The 200 OK won the race with the ending (a CANCEL, a shutdown): the dialog exists, end it.
    await byeAfterAnswer(ctx);
    throw new CallEndedError(ctx.callId, 'answering');
  }
  return callerAnswer;
}

/**
 * A delayed offer's answer from the ACK: the connected call takes it in place of the stand-in.
 * If it cannot, the answered dialog is ended with a BYE and the set-up fails.
 */
export async function adoptCallerAnswer(ctx: CallContext, call: ConnectedCall, callerAnswer: string | undefined): Promise<void> {
  if (callerAnswer === undefined) return;
  try {
    await call.adopt('caller', callerAnswer);
  } catch (err) {
    await byeAfterAnswer(ctx);
    throw err;
  }
}

/** Ends a dialog whose set-up cannot go on after its 200 OK (the session's close sends no BYE for a call that never became active). */
export async function byeAfterAnswer(ctx: CallContext): Promise<void> {
  await ctx.inbound.bye().catch((err: unknown) => ctx.log.debug({ err }, 'BYE after the answer failed'));
}

/** The address family of one of the gateway's own addresses. */
export function familyOf(address: string): 'IP4' | 'IP6' {
  return address.includes(':') ? 'IP6' : 'IP4';
}
