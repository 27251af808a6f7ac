/**
 * The configured speech synthesizers (`tts.*`), built once: each provider behind its own prompt
 * cache (so a replay is keyed by who spoke it), a fallback over them in the configured order with
 * a first-audio deadline each, and one set of metrics over it all. A rule naming a provider gets
 * the same chain with that provider first.
 */
import { join } from 'node:path';
import { expandHome } from '../config/load.js';
import type { TtsConfig, TtsProviderConfig } from '../config/schema.js';
import { WhisperlineError } from '../errors.js';
import type { Logger } from '../log.js';
import { CachedSynthesizer, type PromptCacheStats } from './decorators/cache.js';
import { FallbackSynthesizer } from './decorators/fallback.js';
import { MeteredSynthesizer, SynthesisMetrics } from './decorators/metrics.js';
import { EspeakSynthesizer } from './espeak/espeak.js';
import { JambonzTtsSynthesizer } from './jambonz/jambonz.js';
import { OpenAiSpeechSynthesizer } from './openai/openai.js';
import type { Synthesizer } from './synthesizer.js';

export interface SynthesizerSet {
  /** The chain for a rule's `synthesizer` (that provider first, then the others), or the configured order. */
  for(name?: string): Synthesizer;
  /** Whether `name` is a configured provider. */
  has(name: string): boolean;
  readonly names: readonly string[];
  readonly metrics: SynthesisMetrics;
  cacheStats(): Record<string, PromptCacheStats>;
  /** Resolves once every prompt being written to the disk cache is there (shutdown, tests). */
  flush(): Promise<void>;
}

export function createProvider(p: TtsProviderConfig): Synthesizer {
  switch (p.type) {
    case 'espeak-ng':
      return new EspeakSynthesizer({
        ...(p.voice !== undefined ? { defaultVoice: p.voice } : {}),
        ...(p.wordsPerMinute !== undefined ? { wordsPerMinute: p.wordsPerMinute } : {}),
        ...(p.binary !== undefined ? { binary: p.binary } : {}),
      });
    case 'openai':
      return new OpenAiSpeechSynthesizer({ ...definedOnly({ ...p, type: undefined }), name: p.name } as ConstructorParameters<typeof OpenAiSpeechSynthesizer>[0]);
    case 'jambonz':
      return new JambonzTtsSynthesizer({ ...definedOnly({ ...p, type: undefined }), name: p.name } as ConstructorParameters<typeof JambonzTtsSynthesizer>[0]);
  }
}

export function createSynthesizers(config: TtsConfig, logger: Logger): SynthesizerSet {
  const metrics = new SynthesisMetrics();
  const names = config.providers.map((p) => p.name);
  // espeak-ng names itself `espeak-ng`: events say which configured provider spoke by its name.
  const cached = new Map<string, CachedSynthesizer>();
  for (const p of config.providers) {
    const provider = renamed(createProvider(p), p.name);
    cached.set(
      p.name,
      new CachedSynthesizer(provider, {
        memoryBytes: Math.floor(config.cache.memoryBytes / config.providers.length),
        ...(config.cache.directory !== null ? { directory: join(expandHome(config.cache.directory), p.name) } : {}),
        diskBytes: Math.floor(config.cache.diskBytes / config.providers.length),
        // A provider's settings are part of what it says: a changed voice or model is a new prompt.
        namespace: JSON.stringify(p),
        metrics,
      }),
    );
  }
  const chains = new Map<string, Synthesizer>();
  const chain = (first: string | undefined): Synthesizer => {
    const key = first ?? '';
    let made = chains.get(key);
    if (!made) {
      const order = first === undefined ? names : [first, ...names.filter((n) => n !== first)];
      const fallback = new FallbackSynthesizer(
        order.map((n) => cached.get(n)!),
        {
          name: 'tts',
          firstAudioMs: config.timeoutMs,
          onFailure: (provider, error) => logger.warn({ provider, code: error.code, err: error.message }, 'synthesizer failed; trying the next'),
        },
      );
      made = new MeteredSynthesizer(fallback, { metrics });
      chains.set(key, made);
    }
    return made;
  };
  return {
    for: (name) => {
      if (name !== undefined && !cached.has(name)) throw new WhisperlineError('CONFIG_INVALID', `no synthesizer named "${name}" in tts.providers (${names.join(', ')})`);
      return chain(name);
    },
    has: (name) => cached.has(name),
    names,
    metrics,
    cacheStats: () => Object.fromEntries([...cached].map(([n, c]) => [n, c.stats()])),
    flush: async () => {
      await Promise.all([...cached.values()].map((c) => c.flush()));
    },
  };
}

/** The provider under its configured name (what speech events and the cache key carry). */
function renamed(inner: Synthesizer, name: string): Synthesizer {
  if (inner.name === name) return inner;
  return {
    name,
    capabilities: inner.capabilities,
    supports: (language) => inner.supports(language),
    synthesize: (request) => inner.synthesize(request),
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
