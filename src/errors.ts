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
  | 'PORTS_EXHAUSTED'
  | 'SDP_INVALID'
  | 'SIPREC_INVALID'
  | 'CODEC_UNSUPPORTED'
  | 'AUDIO_INVALID'
  | 'VAD_FAILED'
  | 'ASR_QUEUE_FULL'
  | 'ASR_TIMEOUT'
  | 'ASR_FAILED'
  | 'ASR_ABORTED'
  | 'ASR_CLOSED'
  | 'ASR_BUILD'
  | 'MODEL_MISSING'
  | 'MODEL_DOWNLOAD'
  | 'NOT_FOUND'
  | 'UNAUTHORIZED'
  | 'PROTOCOL_INVALID'
  | 'FORK_FAILED';

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
