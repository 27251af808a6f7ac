/**
 * The speech synthesis boundary: text → PCM, streamed, the first audio as soon as the provider
 * has it. Small on purpose, like `SpeechRecognizer` and `Translator`: espeak-ng, an
 * OpenAI-compatible speech endpoint or jambonz's custom TTS API fit behind it, and decorators
 * (fallback, timeout, cache) wrap it. It knows nothing of calls or playback.
 *
 * Contract (the shared suite in test/contracts/synthesizer.ts checks every provider):
 * - `synthesize` returns at once; iterating it yields the audio in order, each chunk with its
 *   sample rate (the same for the whole request), and ends when the text has been spoken;
 * - a streaming provider yields its first chunk before it has synthesized the whole text;
 * - bad requests (empty text, a language or voice the provider lacks) throw TTS_INVALID from the
 *   first `next()`; an aborted `signal` ends the iteration with TTS_ABORTED (and stops the work);
 *   a provider failure is TTS_FAILED. Breaking out of the iteration stops the work too.
 */
export interface SynthesisRequest {
  readonly text: string;
  /** ISO 639-1 code (or a provider's language tag); the provider's default voice for it. */
  readonly language?: string;
  /** A provider voice name; overrides `language`'s default. */
  readonly voice?: string;
  /** `text` is SSML (only for providers with `capabilities.ssml`). */
  readonly ssml?: boolean;
  readonly signal?: AbortSignal;
}

/** One chunk of synthesized speech: 16-bit mono PCM. */
export interface SynthesizedAudio {
  readonly samples: Int16Array;
  readonly sampleRate: number;
}

export interface SynthesizerCapabilities {
  /** Audio comes as it is made, not only once the whole text is done. */
  readonly streaming: boolean;
  readonly ssml: boolean;
}

export interface Synthesizer {
  /** Short provider name, carried on speech events (e.g. `espeak-ng`). */
  readonly name: string;
  readonly capabilities: SynthesizerCapabilities;
  /** Whether the provider speaks `language` (ISO 639-1). */
  supports(language: string): Promise<boolean>;
  synthesize(request: SynthesisRequest): AsyncIterable<SynthesizedAudio>;
}
