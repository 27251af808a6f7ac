/**
 * The gateway's typed errors. Callers branch on `code` and `retryable`, never on message text;
 * the SIP edge maps them to SIP status codes.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'RTPENGINE_ERROR'
  | 'RTPENGINE_TIMEOUT'
  | 'RTPENGINE_CLOSED'
  | 'RTPENGINE_PROTOCOL'
  | 'RTPENGINE_SPAWN'
  | 'RTPENGINE_UNREACHABLE'
  /** rtpengine refused an SDP it could not parse or use (its `error-reason` says which). */
  | 'RTPENGINE_SDP'
  | 'PORTS_EXHAUSTED'
  /** The RTP receiver was closed (the gateway is stopping). */
  | 'MEDIA_CLOSED'
  | 'SDP_INVALID'
  | 'SIPREC_INVALID'
  /** A request body over the size the gateway reads (refused before parsing). */
  | 'BODY_TOO_LARGE'
  | 'CODEC_UNSUPPORTED'
  /** A bridge's callee answered the outbound INVITE with a final error status (it carries the status). */
  | 'CALLEE_REJECTED'
  /** The outbound INVITE got no final response (transport failure, timeout). */
  | 'CALLEE_UNREACHABLE'
  /** A SIP operation on an established dialog failed (no ACK, BYE or re-INVITE not sent). */
  | 'SIGNALLING_FAILED'
  /** An operation the call's state does not allow (a re-INVITE before the answer). */
  | 'CALL_STATE'
  /** The call ended while the operation was under way (set-up interrupted by CANCEL, BYE, shutdown). */
  | 'CALL_ENDED'
  /** A voice application refused, timed out or answered something that is not a verb array. */
  | 'APP_FAILED'
  | 'PLAYBACK_QUEUE_FULL'
  | 'PLAYBACK_CLOSED'
  | 'TRANSLATION_UNSUPPORTED'
  | 'TRANSLATION_FAILED'
  | 'TRANSLATION_ABORTED'
  | 'TTS_INVALID'
  | 'TTS_FAILED'
  | 'TTS_ABORTED'
  | 'AUDIO_INVALID'
  | 'VAD_FAILED'
  | 'ASR_QUEUE_FULL'
  | 'ASR_TIMEOUT'
  | 'ASR_FAILED'
  | 'ASR_ABORTED'
  | 'ASR_CLOSED'
  | 'ASR_BUILD'
  | 'MODEL_MISSING'
  /** A model name that is neither in the catalogue nor a path. */
  | 'MODEL_UNKNOWN'
  | 'MODEL_DOWNLOAD'
  | 'NOT_FOUND'
  | 'UNAUTHORIZED'
  | 'PROTOCOL_INVALID'
  | 'FORK_FAILED'
  /** A bug: something threw that is not a WhisperlineError (wrapped where it is caught). */
  | 'INTERNAL';

export class WhisperlineError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** `err` as a WhisperlineError: itself, or wrapped as INTERNAL (a bug somewhere below). */
export function asWhisperlineError(err: unknown, what = 'unexpected failure'): WhisperlineError {
  if (err instanceof WhisperlineError) return err;
  return new WhisperlineError('INTERNAL', `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/**
 * An error's message with its cause's: undici's "fetch failed" and "terminated" hide the reason
 * (ECONNREFUSED, socket closed) in `cause`. For messages about an HTTP peer (providers, apps).
 */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}

/** A base URL without trailing slashes, so `${base}/path` never doubles one. */
export function trimBase(base: string): string {
  return base.replace(/\/+$/, '');
}
