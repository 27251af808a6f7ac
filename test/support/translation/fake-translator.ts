/**
 * A fake `Translator` for the decorator tests (no server): it records every request it is asked,
 * answers `<name>: <text>`, or behaves as told: fail, or hang until its signal aborts.
 */
import { WhisperlineError } from '../../../src/errors.js';
import type { TranslationRequest, TranslationResult, Translator, TranslatorCapabilities } from '../../../src/translation/translator.js';

export type FakeBehaviour = 'answer' | 'fail' | 'hang';

export interface FakeTranslatorOptions {
  readonly supports?: (source: string, target: string) => boolean;
  readonly needsAudio?: boolean;
  readonly usesContext?: boolean;
  readonly behaviour?: FakeBehaviour;
}

export class FakeTranslator implements Translator {
  readonly capabilities: TranslatorCapabilities;
  readonly calls: TranslationRequest[] = [];
  /** Signals of the requests it was asked, to see whether a wrapper aborted them. */
  readonly signals: Array<AbortSignal | undefined> = [];
  behaviour: FakeBehaviour;

  constructor(
    readonly name: string,
    private readonly options: FakeTranslatorOptions = {},
  ) {
    this.capabilities = { needsAudio: options.needsAudio ?? false, usesContext: options.usesContext ?? false };
    this.behaviour = options.behaviour ?? 'answer';
  }

  supports(source: string, target: string): boolean {
    return this.options.supports ? this.options.supports(source, target) : /^[a-z]{2}$/.test(target) && (source === 'auto' || /^[a-z]{2}$/.test(source));
  }

  async translate(request: TranslationRequest): Promise<TranslationResult> {
    const { sourceLanguage, targetLanguage, signal } = request;
    if (!this.supports(sourceLanguage, targetLanguage)) throw new WhisperlineError('TRANSLATION_UNSUPPORTED', `${this.name} does not translate ${sourceLanguage} → ${targetLanguage}`);
    if (signal?.aborted) throw new WhisperlineError('TRANSLATION_ABORTED', 'translation aborted');
    if (sourceLanguage === targetLanguage) return { text: request.text, sourceLanguage, targetLanguage, provider: this.name };
    this.calls.push(request);
    this.signals.push(signal);
    await Promise.resolve();
    if (this.behaviour === 'fail') throw new WhisperlineError('TRANSLATION_FAILED', `${this.name} translation failed: server gone`, { retryable: true });
    if (this.behaviour === 'hang') {
      await new Promise<void>((_, reject) => {
        const stop = (): void => reject(new WhisperlineError('TRANSLATION_ABORTED', 'translation aborted'));
        if (signal?.aborted) stop();
        signal?.addEventListener('abort', stop, { once: true });
      });
    }
    if (signal?.aborted) throw new WhisperlineError('TRANSLATION_ABORTED', 'translation aborted');
    return { text: `${this.name}: ${request.text}`, sourceLanguage, targetLanguage, provider: this.name };
  }
}
