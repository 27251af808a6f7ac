/**
 * A deadline per request around any provider: past `timeoutMs` the request is aborted (so the
 * provider lets go of its connection) and rejected TRANSLATION_FAILED "timed out", retryable, so
 * a fallback moves on to the next provider instead of holding a final up behind a stuck server.
 */
import { WhisperlineError } from '../../errors.js';
import { aborted } from '../http.js';
import type { TranslationRequest, TranslationResult, Translator, TranslatorCapabilities } from '../translator.js';

export const DEFAULT_TRANSLATION_TIMEOUT_MS = 5000;

export interface TimeoutTranslatorOptions {
  /** Default 5000: past ~4 s behind the speaker a live translation stops helping. */
  readonly timeoutMs?: number;
}

export interface TimeoutStats {
  readonly requests: number;
  readonly completed: number;
  readonly timedOut: number;
  readonly aborted: number;
  /** Failed before the deadline (the provider's own error). */
  readonly failed: number;
}

export class TimeoutTranslator implements Translator {
  readonly name: string;
  readonly capabilities: TranslatorCapabilities;
  readonly timeoutMs: number;
  private readonly counters = { requests: 0, completed: 0, timedOut: 0, aborted: 0, failed: 0 };

  constructor(
    private readonly inner: Translator,
    options: TimeoutTranslatorOptions = {},
  ) {
    // Transparent: results and events name the provider, not the wrapper.
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TRANSLATION_TIMEOUT_MS;
  }

  supports(source: string, target: string): boolean {
    return this.inner.supports(source, target);
  }

  async translate(request: TranslationRequest): Promise<TranslationResult> {
    if (!this.inner.supports(request.sourceLanguage, request.targetLanguage)) return this.inner.translate(request);
    if (request.signal?.aborted) throw aborted(request.signal);
    this.counters.requests += 1;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(request.signal?.reason);
    request.signal?.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    let timedOut: WhisperlineError | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = new WhisperlineError('TRANSLATION_FAILED', `${this.inner.name} translation timed out after ${this.timeoutMs} ms`, { retryable: true });
        controller.abort(timedOut);
        reject(timedOut);
      }, this.timeoutMs);
    });
    const work = this.inner.translate({ ...request, signal: controller.signal });
    // The provider's own rejection after the deadline won is expected; nobody waits for it.
    work.catch(() => undefined);
    try {
      const result = await Promise.race([work, deadline]);
      this.counters.completed += 1;
      return result;
    } catch (err) {
      if (timedOut) {
        this.counters.timedOut += 1;
        throw timedOut;
      }
      if (request.signal?.aborted) {
        this.counters.aborted += 1;
        throw err instanceof WhisperlineError && err.code === 'TRANSLATION_ABORTED' ? err : aborted(request.signal, err);
      }
      this.counters.failed += 1;
      throw err;
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
    }
  }

  stats(): TimeoutStats {
    return { ...this.counters };
  }
}
