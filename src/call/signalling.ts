import type { WhisperlineError } from '../errors.js';
import type { CallEndReason } from '../transcripts/events.js';

/**
 * What a call session needs of SIP, and nothing more: the SIP edge (drachtio-srf) implements
 * these for real dialogs; tests implement them with synthetic endpoints. Keeping SIP behind this
 * port is what lets every ending path of a call be tested against a real rtpengine without a
 * SIP server. Every method rejects with a `WhisperlineError` (SIGNALLING_FAILED when the SIP
 * stack could not do it), never a bare Error.
 */

/** Why a call ends before it was answered: what the SIP edge turns into a final response. */
export interface CallEnding {
  readonly reason: CallEndReason;
  /** The typed error behind a `failed` ending (a callee's rejection, an SDP error, ports exhausted...). */
  readonly cause?: WhisperlineError;
}

/** Something the caller should know about the answer (RFC 3261 §20.43 warn-code and text). */
export interface AnswerWarning {
  readonly code: number;
  readonly text: string;
}

export interface InboundLeg {
  /** SIP Call-ID; also the rtpengine call-id. */
  readonly callId: string;
  readonly fromTag: string;
  /**
   * The INVITE's SDP offer (the SDP part of a multipart body); undefined for a delayed offer (an
   * INVITE without SDP: the gateway offers in its 200 OK and the caller answers in the ACK).
   */
  readonly offer: string | undefined;
  /** The INVITE's From and To header values and request URI, for call metadata. */
  readonly from?: string;
  readonly to?: string;
  readonly requestUri?: string;
  /** Sends 200 OK with `sdp`, and a Warning header for each of `warnings`. */
  answer(sdp: string, options?: { readonly warnings?: readonly AnswerWarning[] }): Promise<void>;
  /**
   * For a delayed offer: sends 200 OK carrying the gateway's offer `sdp` and resolves with the
   * caller's answer from the ACK. Rejects SDP_INVALID when the ACK carries none, SIGNALLING_FAILED
   * when no ACK comes, CALL_ENDED when the caller's CANCEL won the race.
   */
  answerWithOffer(sdp: string, options?: { readonly warnings?: readonly AnswerWarning[] }): Promise<string>;
  /** Relays the far end's ringing (180) or session progress (183, without media) before the answer. */
  progress(status: 180 | 183): Promise<void>;
  /**
   * Ends the unanswered INVITE with the final response the SIP edge maps `ending` to (the
   * callee's own status relayed, 503 + Retry-After, 488 + Warning, 500...). Resolves with the
   * status sent, or undefined when none was (already answered, CANCELled, no transport).
   */
  reject(ending: CallEnding): Promise<number | undefined>;
  /** Sends BYE (only after `answer`). */
  bye(): Promise<void>;
  /** Sends a re-INVITE with `offer` towards the caller; resolves with the caller's answer. */
  modify(offer: string): Promise<string>;
}

/** The B2BUA's second leg, towards a bridge rule's target. */
export interface OutboundLeg {
  /** Tag of the far end (its To-tag): the callee's party tag in rtpengine. */
  readonly toTag: string;
  /** The far end's SDP answer. */
  readonly answer: string;
  bye(): Promise<void>;
  /** Sends a re-INVITE with `offer` towards the callee; resolves with its answer. */
  modify(offer: string): Promise<string>;
}

/** How an outbound INVITE is placed, beyond its target and offer. */
export interface DialOptions {
  /**
   * Whether the callee's ringing is relayed to the caller (a bridge rule, before the caller is
   * answered). A voice application's `dial` comes after the answer: nothing is relayed.
   */
  readonly relayProgress?: boolean;
  /** The user part of the From URI (jambonz's `callerId`); the caller's own otherwise. */
  readonly callingNumber?: string;
  /** Extra headers of the INVITE (jambonz's `dial.headers`). */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface OutboundDialer {
  /**
   * Places the outbound INVITE with `offer` (rtpengine's SDP) and resolves on its 200 OK. Rejects
   * with CALLEE_REJECTED (carrying the callee's final status) or CALLEE_UNREACHABLE. When `signal`
   * aborts first (the caller cancelled, a ring timeout), the INVITE is CANCELled and the promise
   * rejects.
   */
  dial(target: string, offer: string, inbound: InboundLeg, signal: AbortSignal, options?: DialOptions): Promise<OutboundLeg>;
}

/** Provisional responses of the outbound leg that the caller should hear about. */
export function relayableProgress(status: number): 180 | 183 | undefined {
  return status === 180 || status === 183 ? status : undefined;
}
