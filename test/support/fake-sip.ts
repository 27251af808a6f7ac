/**
 * Fakes of the SIP legs a CallSession drives, for suites that test calls against the real
 * rtpengine without drachtio. The media is real: each leg's SDP names a synthetic RTP endpoint.
 * The final response of an unanswered call is the SIP edge's own mapping (`sip/errors.ts`), so
 * what a fake leg records is what drachtio would have sent.
 */
import { CalleeRejectedError, CallEndedError } from '../../src/call/errors.js';
import type { AnswerWarning, CallEnding, DialOptions, InboundLeg, OutboundDialer, OutboundLeg } from '../../src/call/signalling.js';
import { WhisperlineError } from '../../src/errors.js';
import { finalResponseFor, warningHeader, type SipFinalResponse } from '../../src/sip/errors.js';
import { RtpEndpoint } from './rtp-endpoint.js';

/** The caller's SIP leg as the session sees it (a fake: no SIP stack). */
export class FakeInboundLeg implements InboundLeg {
  readonly fromTag = 'caller-tag';
  readonly offer: string | undefined;
  readonly from = '"Alice" <sip:alice@example.com>;tag=caller-tag';
  readonly to = '<sip:line@example.com>';
  readonly requestUri = 'sip:line@example.com';
  answered: string | undefined;
  /** The gateway's offer in the 200 OK of a delayed-offer call. */
  offered: string | undefined;
  /** What the caller's ACK carries for a delayed offer: its endpoint's SDP unless set (`''`: an ACK without SDP). */
  ackAnswer: string | undefined;
  /** The Warning header values the 200 OK carried (as the SIP edge writes them). */
  answerWarnings: string[] = [];
  /** The final response the SIP edge sent for an unanswered call. */
  rejected: SipFinalResponse | undefined;
  /** How the session ended the unanswered call (reason and typed cause). */
  ending: CallEnding | undefined;
  byes = 0;
  /** The answer waits for this (a slow ACK, to end a call while it is being answered). */
  gate: Promise<void> = Promise.resolve();
  /** The answer fails (no ACK). */
  failAnswer = false;
  /** The caller's CANCEL reaches the SIP stack while the 200 OK is being sent (drachtio answers 487). */
  cancelDuringAnswer = false;

  /** `offer` null: a delayed offer (an INVITE without SDP). */
  constructor(
    readonly callId: string,
    readonly endpoint: RtpEndpoint,
    offer?: string | null,
  ) {
    this.offer = offer === null ? undefined : (offer ?? endpoint.sdp());
  }

  async answer(sdp: string, options: { readonly warnings?: readonly AnswerWarning[] } = {}): Promise<void> {
    await this.gate;
    if (this.failAnswer) throw new WhisperlineError('SIGNALLING_FAILED', 'no ACK');
    if (this.cancelDuringAnswer) throw new CallEndedError(this.callId, 'answering (cancelled)', 'cancel');
    this.answered = sdp;
    this.answerWarnings = (options.warnings ?? []).map((w) => warningHeader(w.code, w.text));
  }

  async answerWithOffer(sdp: string, options: { readonly warnings?: readonly AnswerWarning[] } = {}): Promise<string> {
    await this.gate;
    if (this.failAnswer) throw new WhisperlineError('SIGNALLING_FAILED', 'no ACK');
    this.offered = sdp;
    this.answerWarnings = (options.warnings ?? []).map((w) => warningHeader(w.code, w.text));
    const answer = this.ackAnswer ?? this.endpoint.sdp();
    if (answer === '') throw new WhisperlineError('SDP_INVALID', 'the ACK carried no SDP answer to the offer of the 200 OK');
    return answer;
  }

  async progress(): Promise<void> {}

  async reject(ending: CallEnding): Promise<number | undefined> {
    this.ending = ending;
    const response = finalResponseFor(ending);
    if (!response) return undefined;
    this.rejected = response;
    return response.status;
  }

  async bye(): Promise<void> {
    this.byes++;
  }

  /** The offers of the re-INVITEs sent towards the caller. */
  readonly reoffers: string[] = [];

  /** A re-INVITE towards the caller: the synthetic phone accepts the offer with its own SDP. */
  async modify(offer: string): Promise<string> {
    this.reoffers.push(offer);
    return this.endpoint.sdp(3);
  }
}

/** The B2BUA's outbound leg: a synthetic callee that answers at once. */
export class FakeDialer implements OutboundDialer {
  callee: RtpEndpoint | undefined;
  offer: string | undefined;
  byes = 0;
  /** The re-INVITEs sent to the callee. */
  modifies = 0;

  /** `onCallee` sees each callee endpoint opened (e.g. to close it after the test). */
  constructor(private readonly onCallee?: (callee: RtpEndpoint) => void) {}

  async dial(_target: string, offer: string): Promise<OutboundLeg> {
    const callee = await new RtpEndpoint('PCMU').open();
    this.callee = callee;
    this.offer = offer;
    this.onCallee?.(callee);
    return { toTag: 'callee-tag', answer: callee.sdp(2), bye: async () => void this.byes++, modify: async () => (this.modifies++, callee.sdp(4)) };
  }
}

/** A callee that answers the outbound INVITE with a final error response (as drachtio's dialer reports it). */
export class RejectingDialer implements OutboundDialer {
  constructor(
    private readonly status: number,
    private readonly reason: string,
  ) {}

  async dial(): Promise<OutboundLeg> {
    throw new CalleeRejectedError(this.status, this.reason);
  }
}

/** How a `RoutingDialer` target behaves: answers, rings until CANCELled, or refuses with a status. */
export type DialRoute = 'answer' | 'answer-pcma' | 'ring' | number;

/**
 * Outbound INVITEs by target, as a voice application's `dial` places them: each target answers
 * with its own synthetic callee, rings until the INVITE is CANCELled (drachtio reports the 487), or
 * refuses with a final status. Unknown targets get 404.
 */
export class RoutingDialer implements OutboundDialer {
  readonly invites: { readonly target: string; readonly offer: string; readonly options: DialOptions | undefined; cancelled: boolean }[] = [];
  /** The callees that answered, in order, with the BYEs the gateway sent each. */
  readonly answered: { readonly target: string; readonly toTag: string; readonly offer: string; readonly callee: RtpEndpoint; byes: number }[] = [];

  constructor(
    private readonly routes: Readonly<Record<string, DialRoute>>,
    private readonly onCallee?: (callee: RtpEndpoint) => void,
  ) {}

  async dial(target: string, offer: string, _inbound: InboundLeg, signal: AbortSignal, options?: DialOptions): Promise<OutboundLeg> {
    const invite = { target, offer, options, cancelled: false };
    this.invites.push(invite);
    const route = this.routes[target] ?? 404;
    if (route === 'ring') {
      return new Promise<OutboundLeg>((_resolve, reject) => {
        const cancel = (): void => {
          invite.cancelled = true;
          reject(new CalleeRejectedError(487, 'Request Terminated'));
        };
        if (signal.aborted) cancel();
        else signal.addEventListener('abort', cancel, { once: true });
      });
    }
    if (typeof route === 'number') throw new CalleeRejectedError(route, route === 486 ? 'Busy Here' : 'Refused');
    const callee = await new RtpEndpoint(route === 'answer-pcma' ? 'PCMA' : 'PCMU').open();
    this.onCallee?.(callee);
    const entry = { target, toTag: `callee-${this.answered.length + 1}`, offer, callee, byes: 0 };
    this.answered.push(entry);
    return { toTag: entry.toTag, answer: callee.sdp(2), bye: async () => void entry.byes++, modify: async () => callee.sdp(4) };
  }
}
