/**
 * The speech-recognition boundary. Small on purpose: anything that turns 16 kHz mono PCM into text
 * (whisper.cpp servers, another local engine, a cloud API) fits behind it. It knows nothing of
 * calls, parties or SIP.
 */
export type RecognitionTask = 'transcribe' | 'translate';

/** Finals are what users keep; partials are previews and may be dropped under load. */
export type RecognitionPriority = 'final' | 'partial';

export interface RecognitionRequest {
  /** 16 kHz mono signed 16-bit PCM. */
  readonly samples: Int16Array;
  /** ISO 639-1 code, or 'auto' to detect. */
  readonly language: string;
  /** 'translate' gives English text whatever the spoken language (whisper's own task). */
  readonly task: RecognitionTask;
  readonly priority: RecognitionPriority;
  /** Text that preceded this audio (same speaker), as decoding context. */
  readonly prompt?: string;
  /** Cancels the request (e.g. a partial overtaken by its final). */
  readonly signal?: AbortSignal;
}

export interface RecognizedWord {
  readonly text: string;
  /** Offsets from the start of the request's audio, in ms. */
  readonly startMs: number;
  readonly endMs: number;
  readonly confidence: number;
}

export interface RecognizedSegment {
  readonly text: string;
  readonly startMs: number;
  readonly endMs: number;
  /** Probability (0-1) that the segment is not speech at all. */
  readonly noSpeechProb: number;
  /** exp(mean token log-probability), 0-1. */
  readonly confidence: number;
  readonly words?: readonly RecognizedWord[];
}

export interface RecognitionResult {
  readonly text: string;
  /** The language spoken (detected or as requested). */
  readonly language: string;
  readonly segments: readonly RecognizedSegment[];
  /** Time the engine spent on this request, queueing excluded (ms). */
  readonly processingMs: number;
  /** Time spent waiting in the queue (ms). */
  readonly queuedMs: number;
}

export interface RecognizerCapabilities {
  readonly translate: boolean;
  readonly wordTimestamps: boolean;
  readonly languageDetection: boolean;
}

export interface SpeechRecognizer {
  readonly capabilities: RecognizerCapabilities;
  /**
   * Recognises one utterance. Rejects with a typed error (`AsrError`): `ASR_QUEUE_FULL` when
   * dropped by the queue policy, `ASR_TIMEOUT`, `ASR_FAILED` after the retry, `ASR_ABORTED`.
   */
  recognize(request: RecognitionRequest): Promise<RecognitionResult>;
  /** True when a partial sent now would start at once without delaying any final. */
  hasSpareCapacity(): boolean;
  /** Stops accepting work, fails what is queued, releases processes. Idempotent. */
  close(): Promise<void>;
}
