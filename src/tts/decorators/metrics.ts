/**
 * Synthesis metrics as plain numbers: per provider the requests, completions, failures (by error
 * code), aborts and a histogram of the time to first audio; and the prompt cache's hits and
 * misses. No metrics library here: whoever exports them (src/http/metrics.ts has prom-client)
 * reads `stats()`. One SynthesisMetrics may be shared by several MeteredSynthesizers, e.g. one
 * around each provider inside a fallback, so failures that the fallback covered are counted
 * against the provider that had them.
 */
import { asWhisperlineError } from '../../errors.js';
import type { SynthesisRequest, SynthesizedAudio, Synthesizer, SynthesizerCapabilities } from '../synthesizer.js';
import { spokenBy, wasCached } from './attribution.js';

/** Upper bounds of the first-audio histogram's buckets, ms (the last bucket is +Inf). */
export const FIRST_AUDIO_BUCKETS_MS: readonly number[] = [50, 100, 250, 500, 1000, 2500, 5000, 10_000];

export interface HistogramStats {
  /** Upper bounds, ms; `counts` has one more entry, for +Inf. */
  readonly bounds: readonly number[];
  /** Observations per bucket (not cumulative). */
  readonly counts: readonly number[];
  readonly count: number;
  readonly sum: number;
  readonly max: number;
}

export interface ProviderStats {
  readonly requests: number;
  /** Spoke to the end. */
  readonly completed: number;
  /** Ended by the caller's abort. */
  readonly aborted: number;
  /** The consumer stopped reading (barge-in). */
  readonly stopped: number;
  readonly failures: number;
  readonly failuresByCode: Readonly<Record<string, number>>;
  readonly firstAudioMs: HistogramStats;
}

export interface SynthesisStats {
  /** By the name of the wrapped synthesizer. */
  readonly providers: Readonly<Record<string, ProviderStats>>;
  /** Requests whose audio each provider spoke (a fallback's chunks say which; a replay counts for its speaker). */
  readonly spokenBy: Readonly<Record<string, number>>;
  readonly cache: { readonly hits: number; readonly misses: number };
}

interface MutableProvider {
  requests: number;
  completed: number;
  aborted: number;
  stopped: number;
  failures: number;
  failuresByCode: Record<string, number>;
  counts: number[];
  count: number;
  sum: number;
  max: number;
}

export class SynthesisMetrics {
  private readonly providers = new Map<string, MutableProvider>();
  private cache = { hits: 0, misses: 0 };
  private readonly spoken = new Map<string, number>();

  recordRequest(provider: string): void {
    this.of(provider).requests++;
  }

  recordFirstAudio(provider: string, ms: number): void {
    const p = this.of(provider);
    const bucket = FIRST_AUDIO_BUCKETS_MS.findIndex((bound) => ms <= bound);
    p.counts[bucket === -1 ? FIRST_AUDIO_BUCKETS_MS.length : bucket]!++;
    p.count++;
    p.sum += ms;
    p.max = Math.max(p.max, ms);
  }

  recordEnd(provider: string, how: 'completed' | 'aborted' | 'stopped'): void {
    this.of(provider)[how]++;
  }

  recordFailure(provider: string, code: string): void {
    const p = this.of(provider);
    p.failures++;
    p.failuresByCode[code] = (p.failuresByCode[code] ?? 0) + 1;
  }

  recordSpeaker(provider: string): void {
    this.spoken.set(provider, (this.spoken.get(provider) ?? 0) + 1);
  }

  recordCache(hit: boolean): void {
    if (hit) this.cache.hits++;
    else this.cache.misses++;
  }

  stats(): SynthesisStats {
    const providers: Record<string, ProviderStats> = {};
    for (const [name, p] of this.providers) {
      providers[name] = {
        requests: p.requests,
        completed: p.completed,
        aborted: p.aborted,
        stopped: p.stopped,
        failures: p.failures,
        failuresByCode: { ...p.failuresByCode },
        firstAudioMs: { bounds: FIRST_AUDIO_BUCKETS_MS, counts: [...p.counts], count: p.count, sum: p.sum, max: p.max },
      };
    }
    return { providers, spokenBy: Object.fromEntries(this.spoken), cache: { ...this.cache } };
  }

  private of(provider: string): MutableProvider {
    let p = this.providers.get(provider);
    if (!p) {
      p = { requests: 0, completed: 0, aborted: 0, stopped: 0, failures: 0, failuresByCode: {}, counts: new Array<number>(FIRST_AUDIO_BUCKETS_MS.length + 1).fill(0), count: 0, sum: 0, max: 0 };
      this.providers.set(provider, p);
    }
    return p;
  }
}

export interface MeteredOptions {
  /** Shared with other wrappers (and a cache); a new one when absent. */
  readonly metrics?: SynthesisMetrics;
  /** The clock, ms (default performance.now); tests drive their own. */
  readonly now?: () => number;
}

/**
 * Counts what passes through, under the wrapped synthesizer's name, and which provider spoke each
 * request (`spokenBy`, from the chunks a fallback or cache attributes). Cache replays are not
 * timed (they would flatter the first-audio histogram); the cache counts them.
 */
export class MeteredSynthesizer implements Synthesizer {
  readonly name: string;
  readonly capabilities: SynthesizerCapabilities;
  readonly metrics: SynthesisMetrics;
  private readonly now: () => number;

  constructor(
    private readonly inner: Synthesizer,
    options: MeteredOptions = {},
  ) {
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    this.metrics = options.metrics ?? new SynthesisMetrics();
    this.now = options.now ?? (() => performance.now());
  }

  supports(language: string): Promise<boolean> {
    return this.inner.supports(language);
  }

  synthesize(request: SynthesisRequest): AsyncIterable<SynthesizedAudio> {
    return { [Symbol.asyncIterator]: () => this.run(request)[Symbol.asyncIterator]() };
  }

  stats(): SynthesisStats {
    return this.metrics.stats();
  }

  private async *run(request: SynthesisRequest): AsyncGenerator<SynthesizedAudio> {
    const m = this.metrics;
    m.recordRequest(this.name);
    const startedAt = this.now();
    let speaker: string | undefined;
    let ended = false;
    try {
      for await (const chunk of this.inner.synthesize(request)) {
        if (speaker === undefined) {
          speaker = spokenBy(chunk) ?? this.name;
          m.recordSpeaker(speaker);
          if (!wasCached(chunk)) m.recordFirstAudio(this.name, this.now() - startedAt);
        }
        yield chunk;
      }
      ended = true;
      m.recordEnd(this.name, 'completed');
    } catch (err) {
      ended = true;
      const e = asWhisperlineError(err);
      if (e.code === 'TTS_ABORTED') m.recordEnd(this.name, 'aborted');
      else m.recordFailure(this.name, e.code);
      throw err;
    } finally {
      if (!ended) m.recordEnd(this.name, 'stopped');
    }
  }
}
