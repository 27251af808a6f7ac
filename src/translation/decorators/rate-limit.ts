/**
 * A request rate in front of any provider (DeepL's and hosted models' rate limits, a local model
 * that should not be flooded): a token bucket of `requestsPerSecond`, `burst` deep. A request
 * without a token waits in a bounded FIFO queue; beyond the bound it is refused at once,
 * TRANSLATION_FAILED "rate limited" (retryable, so a fallback tries the next provider), since a
 * translation that waits long is no longer live.
 */
import { WhisperlineError } from '../../errors.js';
import { aborted } from '../http.js';
import type { TranslationRequest, TranslationResult, Translator, TranslatorCapabilities } from '../translator.js';

/** Time as the bucket reads it; tests inject a manual one. */
export interface RateLimitClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Runs `fn` after `ms`; returns a cancel. */
  schedule(fn: () => void, ms: number): () => void;
}

export const systemClock: RateLimitClock = {
  now: () => performance.now(),
  schedule: (fn, ms) => {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

export const DEFAULT_RATE_LIMIT_QUEUE = 10;

export interface RateLimitTranslatorOptions {
  /** Sustained rate, requests per second (> 0; 0.5 is one every 2 s). */
  readonly requestsPerSecond: number;
  /** Bucket depth: requests that may go at once after a quiet spell. Default max(1, requestsPerSecond). */
  readonly burst?: number;
  /** Requests that may wait for a token; more are refused. Default 10. */
  readonly maxQueue?: number;
  readonly clock?: RateLimitClock;
}

export interface RateLimitStats {
  /** Passed at once, with a token to spare. */
  readonly immediate: number;
  /** Had to wait in the queue (including those still waiting). */
  readonly queued: number;
  /** Refused: the queue was full. */
  readonly refused: number;
  /** Aborted while waiting. */
  readonly aborted: number;
  /** Waiting now. */
  readonly waiting: number;
}

interface Waiter {
  readonly resolve: () => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/** Float rounding must not keep a full token waiting (10/s over 100 ms is 0.9999… tokens). */
const EPSILON = 1e-9;

export class RateLimitTranslator implements Translator {
  readonly name: string;
  readonly capabilities: TranslatorCapabilities;
  private readonly rate: number;
  private readonly burst: number;
  private readonly maxQueue: number;
  private readonly clock: RateLimitClock;
  private tokens: number;
  private refilledAt: number;
  private readonly queue: Waiter[] = [];
  private cancelTimer: (() => void) | undefined;
  private readonly counters = { immediate: 0, queued: 0, refused: 0, aborted: 0 };

  constructor(
    private readonly inner: Translator,
    options: RateLimitTranslatorOptions,
  ) {
    if (!(options.requestsPerSecond > 0)) throw new WhisperlineError('CONFIG_INVALID', `a translation rate limit needs requestsPerSecond > 0, not ${options.requestsPerSecond}`);
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    this.rate = options.requestsPerSecond;
    this.burst = Math.max(1, options.burst ?? options.requestsPerSecond);
    this.maxQueue = Math.max(0, options.maxQueue ?? DEFAULT_RATE_LIMIT_QUEUE);
    this.clock = options.clock ?? systemClock;
    this.tokens = this.burst;
    this.refilledAt = this.clock.now();
  }

  supports(source: string, target: string): boolean {
    return this.inner.supports(source, target);
  }

  async translate(request: TranslationRequest): Promise<TranslationResult> {
    // Refusals and text already in the target language never reach the server: no token spent.
    if (!this.inner.supports(request.sourceLanguage, request.targetLanguage) || request.sourceLanguage === request.targetLanguage) {
      return this.inner.translate(request);
    }
    if (request.signal?.aborted) throw aborted(request.signal);
    await this.admit(request.signal);
    return this.inner.translate(request);
  }

  stats(): RateLimitStats {
    return { ...this.counters, waiting: this.queue.length };
  }

  private admit(signal: AbortSignal | undefined): Promise<void> {
    this.refill();
    if (this.queue.length === 0 && this.tokens >= 1 - EPSILON) {
      this.tokens -= 1;
      this.counters.immediate += 1;
      return Promise.resolve();
    }
    if (this.queue.length >= this.maxQueue) {
      this.counters.refused += 1;
      return Promise.reject(
        new WhisperlineError('TRANSLATION_FAILED', `${this.name} translation rate limited: ${this.rate}/s with ${this.queue.length} waiting already`, { retryable: true }),
      );
    }
    this.counters.queued += 1;
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        signal,
        onAbort: () => {
          const at = this.queue.indexOf(waiter);
          if (at < 0) return;
          this.queue.splice(at, 1);
          this.counters.aborted += 1;
          reject(aborted(signal));
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.queue.push(waiter);
      this.scheduleDrain();
    });
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) * this.rate) / 1000);
    this.refilledAt = now;
  }

  /** One timer at a time, set for when the next token is due. */
  private scheduleDrain(): void {
    if (this.cancelTimer || this.queue.length === 0) return;
    this.refill();
    const wait = this.tokens >= 1 - EPSILON ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.rate);
    this.cancelTimer = this.clock.schedule(() => {
      this.cancelTimer = undefined;
      this.drain();
    }, wait);
  }

  private drain(): void {
    this.refill();
    while (this.queue.length > 0 && this.tokens >= 1 - EPSILON) {
      this.tokens -= 1;
      const waiter = this.queue.shift()!;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve();
    }
    this.scheduleDrain();
  }
}
