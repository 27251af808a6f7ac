/**
 * The SIP edge's mapping of how a call ended before it was answered to the final response the
 * caller gets. The only place that picks a SIP status for a failure: everything below raises
 * typed errors (`code`, `retryable`) and never a status.
 *
 * - the callee's own final response (a bridge): relayed, 486 Busy Here stays 486, 603 stays 603;
 *   a 503 becomes 500 (RFC 3261 §16.7: a 503 relayed upstream would take the gateway itself out
 *   of service), a 3xx the gateway does not follow becomes 480;
 * - shutdown, and every retryable error (RTP ports exhausted, an rtpengine timeout or load limit):
 *   503 with Retry-After, so the caller's proxy or SBC tries again or elsewhere;
 * - an offer the gateway cannot take (SDP the gateway or rtpengine cannot parse, no usable codec,
 *   a SIPREC body it cannot use): 488 Not Acceptable Here with a Warning header saying why
 *   (RFC 3261 §20.43: 304 media type not available, 305 incompatible media format, 399 otherwise);
 * - everything else: 500.
 */
import { STATUS_CODES } from 'node:http';
import type { CallEnding } from '../call/signalling.js';
import { CalleeRejectedError } from '../call/errors.js';
import type { WhisperlineError } from '../errors.js';

export interface SipFinalResponse {
  readonly status: number;
  readonly reason: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** Seconds a caller is asked to wait before retrying after a 503 for load (ports, rtpengine). */
export const RETRY_AFTER_BUSY_SEC = 5;
/** ... after a 503 because the gateway is shutting down (it will be back, or another one takes it). */
export const RETRY_AFTER_SHUTDOWN_SEC = 30;

const REASONS: Readonly<Record<number, string>> = {
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  480: 'Temporarily Unavailable',
  486: 'Busy Here',
  413: 'Request Entity Too Large',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  500: 'Server Internal Error',
  503: 'Service Unavailable',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
};

/** The standard reason phrase of a SIP status. */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? STATUS_CODES[status] ?? 'Rejected';
}

/** The final response for a call that ends unanswered; undefined when none is to be sent (CANCEL: the stack answers 487). */
export function finalResponseFor(ending: CallEnding): SipFinalResponse | undefined {
  const { reason, cause } = ending;
  if (reason === 'cancel' || reason === 'disconnect') return undefined;
  if (reason === 'shutdown') return serviceUnavailable(RETRY_AFTER_SHUTDOWN_SEC, 'Shutting Down');
  if (cause) return responseForError(cause);
  // Ended by the gateway without an error (a local hang-up): the call is not taken.
  return reason === 'failed' ? { status: 500, reason: reasonPhrase(500), headers: {} } : { status: 480, reason: reasonPhrase(480), headers: {} };
}

/** The final response for a typed error (see the module comment). */
export function responseForError(cause: WhisperlineError): SipFinalResponse {
  if (cause instanceof CalleeRejectedError) return relayed(cause.sipStatus, cause.sipReason);
  if (cause.retryable) return serviceUnavailable(RETRY_AFTER_BUSY_SEC);
  switch (cause.code) {
    case 'SDP_INVALID':
    case 'RTPENGINE_SDP':
    case 'SIPREC_INVALID':
      return notAcceptable(399, cause.message);
    case 'CODEC_UNSUPPORTED':
      return notAcceptable(305, cause.message);
    case 'BODY_TOO_LARGE':
      return { status: 413, reason: reasonPhrase(413), headers: { Warning: warningHeader(399, cause.message) } };
    case 'CALLEE_UNREACHABLE':
      return { status: 480, reason: reasonPhrase(480), headers: {} };
    default:
      return { status: 500, reason: reasonPhrase(500), headers: {} };
  }
}

/**
 * A Warning header value (RFC 3261 §25.1: warn-code SP warn-agent SP quoted-string): the text
 * cut to fit a header, without quotes, backslashes or control characters.
 */
export function warningHeader(code: number, text: string): string {
  const printable = [...text].map((c) => (c < ' ' || c === '\u007f' || c === '"' || c === '\\' ? ' ' : c)).join('');
  const clean = printable.replace(/\s+/g, ' ').trim().slice(0, 200);
  return `${code} whisperline "${clean}"`;
}

function notAcceptable(warnCode: number, text: string): SipFinalResponse {
  return { status: 488, reason: reasonPhrase(488), headers: { Warning: warningHeader(warnCode, text) } };
}

function serviceUnavailable(retryAfterSec: number, reason = reasonPhrase(503)): SipFinalResponse {
  return { status: 503, reason, headers: { 'Retry-After': String(retryAfterSec) } };
}

function relayed(status: number, reason: string): SipFinalResponse {
  if (status === 503) return { status: 500, reason: reasonPhrase(500), headers: {} };
  if (status < 400 || status > 699) return { status: 480, reason: reasonPhrase(480), headers: {} };
  return { status, reason: reason || reasonPhrase(status), headers: {} };
}
