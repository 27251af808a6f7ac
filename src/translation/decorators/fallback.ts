/**
 * Several providers behind one `Translator`: each request goes to the first provider that
 * supports its pair, and on to the next when that one fails (a local model down, DeepL's quota
 * spent). The result's `provider` names the provider that translated, so events say who did.
 */
import { WhisperlineError } from '../../errors.js';
import { aborted } from '../http.js';
import type { TranslationRequest, TranslationResult, Translator, TranslatorCapabilities } from '../translator.js';

export interface FallbackTranslatorOptions {
  /** In order of preference. */
  readonly providers: readonly Translator[];
  /** The decorator's own name (results carry the translating provider's). Default `fallback`. */
  readonly name?: string;
}

export interface FallbackProviderStats {
  readonly translated: number;
  readonly failed: number;
  /** Passed over: it needs the audio and the request had none. */
  readonly skipped: number;
}

export interface FallbackStats {
  readonly requests: number;
  /** Requests a provider after the first candidate translated. */
  readonly fallbacks: number;
  /** Requests every candidate failed. */
  readonly exhausted: number;
  readonly aborted: number;
  readonly providers: Readonly<Record<string, FallbackProviderStats>>;
}

export class FallbackTranslator implements Translator {
  readonly name: string;
  readonly capabilities: TranslatorCapabilities;
  private readonly providers: readonly Translator[];
  private readonly counters = { requests: 0, fallbacks: 0, exhausted: 0, aborted: 0 };
  private readonly perProvider = new Map<Translator, { translated: number; failed: number; skipped: number }>();

  constructor(options: FallbackTranslatorOptions) {
    if (options.providers.length === 0) throw new WhisperlineError('CONFIG_INVALID', 'a translation fallback needs at least one provider');
    this.name = options.name ?? 'fallback';
    this.providers = options.providers;
    // The caller hands over audio and context when any provider may read them.
    this.capabilities = {
      needsAudio: this.providers.some((p) => p.capabilities.needsAudio),
      usesContext: this.providers.some((p) => p.capabilities.usesContext),
    };
    for (const p of this.providers) this.perProvider.set(p, { translated: 0, failed: 0, skipped: 0 });
  }

  supports(source: string, target: string): boolean {
    return this.providers.some((p) => p.supports(source, target));
  }

  async translate(request: TranslationRequest): Promise<TranslationResult> {
    const { sourceLanguage, targetLanguage } = request;
    const candidates = this.providers.filter((p) => p.supports(sourceLanguage, targetLanguage));
    if (candidates.length === 0) {
      throw new WhisperlineError('TRANSLATION_UNSUPPORTED', `no translation provider (${this.providers.map((p) => p.name).join(', ')}) translates ${sourceLanguage} → ${targetLanguage}`);
    }
    this.counters.requests += 1;
    const failures: WhisperlineError[] = [];
    let tried = 0;
    for (const provider of candidates) {
      if (request.signal?.aborted) {
        this.counters.aborted += 1;
        throw aborted(request.signal);
      }
      const counts = this.perProvider.get(provider)!;
      // A speech provider cannot work without the audio (text already in the target language needs none).
      if (provider.capabilities.needsAudio && !request.samples?.length && sourceLanguage !== targetLanguage) {
        counts.skipped += 1;
        continue;
      }
      tried += 1;
      try {
        const result = await provider.translate(request);
        counts.translated += 1;
        if (tried > 1 || failures.length > 0) this.counters.fallbacks += 1;
        return result;
      } catch (err) {
        if (request.signal?.aborted) {
          this.counters.aborted += 1;
          throw err instanceof WhisperlineError && err.code === 'TRANSLATION_ABORTED' ? err : aborted(request.signal, err);
        }
        counts.failed += 1;
        failures.push(
          err instanceof WhisperlineError ? err : new WhisperlineError('TRANSLATION_FAILED', `${provider.name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }),
        );
      }
    }
    this.counters.exhausted += 1;
    if (failures.length === 0) {
      throw new WhisperlineError('TRANSLATION_FAILED', `no translation provider for ${sourceLanguage} → ${targetLanguage} works without the audio`);
    }
    throw new WhisperlineError('TRANSLATION_FAILED', `every translation provider failed: ${failures.map((f) => f.message).join('; ')}`, {
      retryable: failures.some((f) => f.retryable),
      cause: failures.at(-1),
    });
  }

  stats(): FallbackStats {
    const providers: Record<string, FallbackProviderStats> = {};
    for (const [p, counts] of this.perProvider) {
      // Two providers of the same name (two chat servers) share a line rather than hide one.
      const seen = providers[p.name];
      providers[p.name] = seen
        ? { translated: seen.translated + counts.translated, failed: seen.failed + counts.failed, skipped: seen.skipped + counts.skipped }
        : { ...counts };
    }
    return { ...this.counters, providers };
  }
}
