/**
 * The shared fake recognizer for unit tests (the real whisper.cpp engine runs in the integration
 * suites). Each request is recorded; it is answered by `respond` when one is given, otherwise it
 * waits until the test settles it, so ordering can be controlled exactly. An aborted request
 * rejects ASR_ABORTED, as the engine's do.
 */
import type { RecognitionRequest, RecognitionResult, RecognizerCapabilities, SpeechRecognizer } from '../../src/asr/recognizer.js';
import { WhisperlineError } from '../../src/errors.js';

export interface PendingRecognition {
  readonly req: RecognitionRequest;
  resolve(result: RecognitionResult): void;
  reject(err: Error): void;
}

export class FakeRecognizer implements SpeechRecognizer {
  readonly capabilities: RecognizerCapabilities;
  readonly requests: PendingRecognition[] = [];
  /** What `hasSpareCapacity()` answers. */
  spare = true;
  closed = false;

  constructor(
    private readonly respond?: (req: RecognitionRequest) => RecognitionResult | Promise<RecognitionResult>,
    capabilities: Partial<RecognizerCapabilities> = {},
  ) {
    this.capabilities = { translate: true, wordTimestamps: true, languageDetection: true, ...capabilities };
  }

  recognize(req: RecognitionRequest): Promise<RecognitionResult> {
    if (this.closed) return Promise.reject(new WhisperlineError('ASR_CLOSED', 'the fake recognizer is closed'));
    if (req.signal?.aborted) return Promise.reject(new WhisperlineError('ASR_ABORTED', 'aborted'));
    return new Promise((resolve, reject) => {
      this.requests.push({ req, resolve, reject });
      req.signal?.addEventListener('abort', () => reject(new WhisperlineError('ASR_ABORTED', 'aborted')));
      if (this.respond) Promise.resolve(this.respond(req)).then(resolve, reject);
    });
  }

  hasSpareCapacity(): boolean {
    return this.spare;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** A one-segment result with one word, as whisper-server gives it. */
export function recognition(text: string, language = 'en', options: { noSpeechProb?: number; confidence?: number } = {}): RecognitionResult {
  const confidence = options.confidence ?? 0.8;
  return {
    text,
    language,
    segments: [{ text, startMs: 0, endMs: 800, noSpeechProb: options.noSpeechProb ?? 0.05, confidence, words: [{ text: text.trim(), startMs: 100, endMs: 700, confidence }] }],
    processingMs: 5,
    queuedMs: 0,
  };
}
