import type { RecognitionResult, SpeechRecognizer } from '../asr/recognizer.js';
import { WhisperlineError } from '../errors.js';
import type { TranslationRequest, TranslationResult, Translator, TranslatorCapabilities } from './translator.js';

export interface WhisperTranslatorOptions {
  /**
   * Judges a decode of the translate task: the text to keep, or undefined to drop it (e.g. the
   * transcript filters' verdict on audio that is probably not speech). Default: the text, trimmed.
   */
  readonly accept?: (result: RecognitionResult, samples: Int16Array) => string | undefined;
}

/**
 * Whisper's own translate task as a translation provider: the utterance's audio decoded again,
 * straight into English. It needs the audio (not the text), and translates into English only.
 */
export class WhisperTranslator implements Translator {
  readonly name = 'whisper';
  readonly capabilities: TranslatorCapabilities = { needsAudio: true, usesContext: false };

  constructor(
    private readonly recognizer: SpeechRecognizer,
    private readonly options: WhisperTranslatorOptions = {},
  ) {}

  supports(_source: string, target: string): boolean {
    return target === 'en' && this.recognizer.capabilities.translate;
  }

  async translate(request: TranslationRequest): Promise<TranslationResult> {
    const { sourceLanguage, targetLanguage } = request;
    const result = (text: string): TranslationResult => ({ text, sourceLanguage, targetLanguage, provider: this.name });
    if (!this.supports(sourceLanguage, targetLanguage)) {
      throw new WhisperlineError('TRANSLATION_UNSUPPORTED', `whisper translates into English only, not ${sourceLanguage} → ${targetLanguage}`);
    }
    if (request.signal?.aborted) throw new WhisperlineError('TRANSLATION_ABORTED', 'translation aborted');
    // Speech already in English needs no second decode.
    if (sourceLanguage === targetLanguage) return result(request.text);
    if (!request.samples || request.samples.length === 0) {
      throw new WhisperlineError('TRANSLATION_FAILED', 'whisper translation needs the utterance audio');
    }
    let decoded: RecognitionResult;
    try {
      decoded = await this.recognizer.recognize({
        samples: request.samples,
        language: sourceLanguage,
        task: 'translate',
        priority: 'final',
        ...(request.signal ? { signal: request.signal } : {}),
      });
    } catch (err) {
      if (err instanceof WhisperlineError && err.code === 'ASR_ABORTED') throw new WhisperlineError('TRANSLATION_ABORTED', 'translation aborted', { cause: err });
      throw new WhisperlineError('TRANSLATION_FAILED', `whisper translation failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const text = this.options.accept ? this.options.accept(decoded, request.samples) : decoded.text.trim();
    return result(text ?? '');
  }
}
