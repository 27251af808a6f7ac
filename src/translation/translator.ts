/**
 * The translation boundary: a final's text (and, for providers that translate speech, its audio)
 * in one language → text in another. Small on purpose, like `SpeechRecognizer`: whisper's
 * translate task is one provider; chat-completion models, LibreTranslate or DeepL fit behind it.
 * It knows nothing of calls, parties or SIP.
 *
 * Contract (the shared suite in test/contracts/translator.ts checks every provider):
 * - `translate` resolves with the text in `targetLanguage`, or rejects with a typed error:
 *   TRANSLATION_UNSUPPORTED for a language pair `supports` refuses, TRANSLATION_ABORTED when
 *   `signal` aborts, TRANSLATION_FAILED otherwise;
 * - a source already in the target language comes back unchanged, without asking the provider;
 * - an empty result (nothing worth translating) resolves with empty text, it does not reject.
 */
export interface TranslationRequest {
  readonly text: string;
  /** ISO 639-1 code of `text` (the final's detected or configured language). */
  readonly sourceLanguage: string;
  /** ISO 639-1 code wanted. */
  readonly targetLanguage: string;
  /** The utterance's audio (16 kHz mono), for providers that translate speech (`needsAudio`). */
  readonly samples?: Int16Array;
  /** Earlier finals of the same party, oldest first, as context (`usesContext`). */
  readonly context?: readonly string[];
  readonly signal?: AbortSignal;
}

export interface TranslationResult {
  readonly text: string;
  readonly sourceLanguage: string;
  readonly targetLanguage: string;
  /** The provider's name, as `Translator.name`. */
  readonly provider: string;
}

export interface TranslatorCapabilities {
  /** Translates from `samples` (speech), not from the text. */
  readonly needsAudio: boolean;
  /** Reads `context`. */
  readonly usesContext: boolean;
}

export interface Translator {
  /** Short provider name, carried on every translation event (e.g. `whisper`). */
  readonly name: string;
  readonly capabilities: TranslatorCapabilities;
  /** Whether the provider translates from `source` (or 'auto') to `target`. */
  supports(source: string, target: string): boolean;
  translate(request: TranslationRequest): Promise<TranslationResult>;
}
