/**
 * Remembered translations in front of any provider: the same text in the same pair from the same
 * provider is answered from memory, without asking the provider (IVR prompts, greetings, "yes",
 * "thank you" recur across calls). A bounded LRU: the least recently used entry goes when full.
 *
 * Context and the key: for a provider that reads context (`usesContext`), the same words can come
 * out differently after different earlier finals ("it" as er/sie/es). The key leaves the context
 * out by default all the same: every final of a party has a different context, so with it in the
 * key nothing but a repeated conversation would ever hit, and the cache would only cost memory.
 * Where exactness matters more than hits, `keyIncludesContext` puts it in.
 *
 * For a speech provider (`needsAudio`) the key is the final's text, the transcript of that audio.
 */
import { WhisperlineError } from '../../errors.js';
import { aborted } from '../http.js';
import type { TranslationRequest, TranslationResult, Translator, TranslatorCapabilities } from '../translator.js';

export const DEFAULT_TRANSLATION_CACHE_ENTRIES = 1000;

/** An LRU of translations by key; one can be shared by the caches of several providers (the key names the provider). */
export class TranslationLru {
  private readonly entries = new Map<string, TranslationResult>();
  evictions = 0;

  constructor(readonly maxEntries = DEFAULT_TRANSLATION_CACHE_ENTRIES) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new WhisperlineError('CONFIG_INVALID', `a translation cache needs at least one entry, not ${maxEntries}`);
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): TranslationResult | undefined {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      // Map keeps insertion order: re-inserting makes this the most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  set(key: string, result: TranslationResult): void {
    this.entries.delete(key);
    this.entries.set(key, result);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.evictions += 1;
    }
  }
}

export interface CacheTranslatorOptions {
  /** Bound on entries. Default 1000. Ignored when `store` is given. */
  readonly maxEntries?: number;
  /** An LRU shared with other caches (the key names the provider, so they do not mix). */
  readonly store?: TranslationLru;
  /** Make the request's context part of the key (see above). Default false. */
  readonly keyIncludesContext?: boolean;
}

export interface CacheStats {
  readonly hits: number;
  readonly misses: number;
  /** Entries in the (possibly shared) store and evictions from it. */
  readonly size: number;
  readonly evictions: number;
}

export class CacheTranslator implements Translator {
  readonly name: string;
  readonly capabilities: TranslatorCapabilities;
  private readonly store: TranslationLru;
  private readonly keyIncludesContext: boolean;
  private readonly counters = { hits: 0, misses: 0 };

  constructor(
    private readonly inner: Translator,
    options: CacheTranslatorOptions = {},
  ) {
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    this.store = options.store ?? new TranslationLru(options.maxEntries ?? DEFAULT_TRANSLATION_CACHE_ENTRIES);
    this.keyIncludesContext = options.keyIncludesContext ?? false;
  }

  supports(source: string, target: string): boolean {
    return this.inner.supports(source, target);
  }

  async translate(request: TranslationRequest): Promise<TranslationResult> {
    const { sourceLanguage, targetLanguage } = request;
    // Refusals, and text the provider gives back as it is, are not worth an entry.
    if (!this.inner.supports(sourceLanguage, targetLanguage) || sourceLanguage === targetLanguage) return this.inner.translate(request);
    if (request.signal?.aborted) throw aborted(request.signal);
    const key = JSON.stringify([
      this.inner.name,
      sourceLanguage,
      targetLanguage,
      request.text.trim(),
      ...(this.keyIncludesContext ? [request.context ?? []] : []),
    ]);
    const hit = this.store.get(key);
    if (hit) {
      this.counters.hits += 1;
      return hit;
    }
    this.counters.misses += 1;
    const result = await this.inner.translate(request);
    this.store.set(key, result);
    return result;
  }

  stats(): CacheStats {
    return { ...this.counters, size: this.store.size, evictions: this.store.evictions };
  }
}
