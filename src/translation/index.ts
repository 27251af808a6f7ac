/**
 * The configured translators (`translation.*`), built once at start. Each text provider gets a
 * timeout, its own rate limit (quotas are per provider) and a cache; a fallback goes over them in
 * the configured order. whisper's translate task works from the call's own audio and recognizer,
 * so it is the pipeline's default rather than a member of a chain: an order that starts with
 * `whisper` means "whisper" (undefined here), and a `whisper` later in the list is not used.
 */
import type { TranslationConfig, TranslationProviderConfig } from '../config/schema.js';
import { WhisperlineError } from '../errors.js';
import type { Logger } from '../log.js';
import { ChatTranslator } from './chat/chat.js';
import { CacheTranslator, FallbackTranslator, RateLimitTranslator, TimeoutTranslator, TranslationLru } from './decorators/index.js';
import { DeepLTranslator } from './deepl/deepl.js';
import { LibreTranslateTranslator } from './libretranslate/libretranslate.js';
import type { Translator } from './translator.js';

export interface TranslatorSet {
  /** The translator for a rule's `translator` (that provider first), or the configured order; undefined: whisper's translate task. */
  for(name?: string): Translator | undefined;
  has(name: string): boolean;
  readonly names: readonly string[];
}

async function createProvider(p: Exclude<TranslationProviderConfig, { type: 'whisper' }>): Promise<Translator> {
  switch (p.type) {
    case 'chat':
      return new ChatTranslator({
        name: p.name,
        baseUrl: p.baseUrl,
        model: p.model,
        ...(p.apiKey !== undefined ? { apiKey: p.apiKey } : {}),
        ...(p.languages !== undefined ? { languages: p.languages } : {}),
        ...(p.contextTurns !== undefined ? { contextTurns: p.contextTurns } : {}),
      });
    case 'libretranslate':
      // Reads the server's language pairs once, so `supports` is exact.
      return LibreTranslateTranslator.create({ name: p.name, baseUrl: p.baseUrl, ...(p.apiKey !== undefined ? { apiKey: p.apiKey } : {}), signal: AbortSignal.timeout(10_000) });
    case 'deepl':
      return new DeepLTranslator({
        name: p.name,
        authKey: p.authKey,
        ...(p.baseUrl !== undefined ? { baseUrl: p.baseUrl } : {}),
        ...(p.formality !== undefined ? { formality: p.formality } : {}),
        ...(p.languages !== undefined ? { languages: p.languages } : {}),
      });
  }
}

export async function createTranslators(config: TranslationConfig, logger: Logger): Promise<TranslatorSet> {
  const names = config.providers.map((p) => p.name);
  const wrapped = new Map<string, Translator | 'whisper'>();
  const cache = config.cacheEntries > 0 ? new TranslationLru(config.cacheEntries) : undefined;
  for (const p of config.providers) {
    if (p.type === 'whisper') {
      wrapped.set(p.name, 'whisper');
      continue;
    }
    let provider: Translator;
    try {
      provider = await createProvider(p);
    } catch (err) {
      // A server down at start (LibreTranslate's language list): the others still translate.
      logger.warn({ provider: p.name, err: (err as Error).message }, 'translator unavailable at start; left out');
      continue;
    }
    let t: Translator = new TimeoutTranslator(provider, { timeoutMs: config.timeoutMs });
    if (config.requestsPerSecond > 0) t = new RateLimitTranslator(t, { requestsPerSecond: config.requestsPerSecond, maxQueue: config.maxQueue });
    if (cache) t = new CacheTranslator(t, { store: cache });
    wrapped.set(p.name, t);
  }
  const chains = new Map<string, Translator | undefined>();
  const chain = (first: string | undefined): Translator | undefined => {
    const key = first ?? '';
    if (chains.has(key)) return chains.get(key);
    const order = first === undefined ? names : [first, ...names.filter((n) => n !== first)];
    let made: Translator | undefined;
    if (wrapped.get(order[0]!) !== 'whisper') {
      const members = order.map((n) => wrapped.get(n)).filter((t): t is Translator => t !== undefined && t !== 'whisper');
      made = members.length === 0 ? undefined : members.length === 1 ? members[0] : new FallbackTranslator({ providers: members, name: 'translation' });
    }
    chains.set(key, made);
    return made;
  };
  return {
    for: (name) => {
      if (name !== undefined && !names.includes(name)) throw new WhisperlineError('CONFIG_INVALID', `no translator named "${name}" in translation.providers (${names.join(', ')})`);
      return chain(name);
    },
    has: (name) => names.includes(name),
    names,
  };
}
