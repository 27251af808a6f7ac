/**
 * A deadline for the first audio: a provider that has not started speaking within `firstAudioMs`
 * (default 10 s) is stopped (its request aborted) and the request fails with TTS_FAILED "timed
 * out", which a fallback takes as its cue to ask the next provider. Once audio flows the deadline
 * is off: a long prompt takes as long as it takes.
 */
import { WhisperlineError } from '../../errors.js';
import { aborted, linkedController } from '../http.js';
import type { SynthesisRequest, SynthesizedAudio, Synthesizer, SynthesizerCapabilities } from '../synthesizer.js';

export interface TimeoutOptions {
  /** How long the first chunk may take, ms (default 10 000). */
  readonly firstAudioMs?: number;
}

export const DEFAULT_FIRST_AUDIO_MS = 10_000;

export class TimeoutSynthesizer implements Synthesizer {
  readonly name: string;
  readonly capabilities: SynthesizerCapabilities;
  private readonly firstAudioMs: number;

  constructor(
    private readonly inner: Synthesizer,
    options: TimeoutOptions = {},
  ) {
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    this.firstAudioMs = options.firstAudioMs ?? DEFAULT_FIRST_AUDIO_MS;
    if (!(this.firstAudioMs > 0)) throw new WhisperlineError('CONFIG_INVALID', `${inner.name}: firstAudioMs must be positive, not ${this.firstAudioMs}`);
  }

  supports(language: string): Promise<boolean> {
    return this.inner.supports(language);
  }

  synthesize(request: SynthesisRequest): AsyncIterable<SynthesizedAudio> {
    return { [Symbol.asyncIterator]: () => this.run(request)[Symbol.asyncIterator]() };
  }

  private async *run(request: SynthesisRequest): AsyncGenerator<SynthesizedAudio> {
    if (request.signal?.aborted) throw aborted(request.signal.reason);
    // The provider gets our own signal, so the deadline can stop it without the caller's abort.
    const { controller, release } = linkedController(request.signal);
    const it = this.inner.synthesize({ ...request, signal: controller.signal })[Symbol.asyncIterator]();
    let finished = false;
    try {
      let timer: NodeJS.Timeout | undefined;
      let timedOut = false;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          controller.abort(new Error('timed out'));
          reject(new WhisperlineError('TTS_FAILED', `${this.inner.name} timed out: no audio within ${this.firstAudioMs} ms`, { retryable: true }));
        }, this.firstAudioMs);
      });
      let first: IteratorResult<SynthesizedAudio>;
      try {
        // A provider that ignores its abort still loses the race: the deadline does not wait for it.
        first = await Promise.race([it.next(), deadline]);
      } catch (err) {
        finished = !timedOut;
        if (request.signal?.aborted) throw aborted(request.signal.reason);
        throw err;
      } finally {
        clearTimeout(timer);
        deadline.catch(() => undefined);
      }
      if (first.done) {
        finished = true;
        return;
      }
      yield first.value;
      for (;;) {
        const next = await it.next().catch((err: unknown) => {
          finished = true;
          throw err;
        });
        if (next.done) {
          finished = true;
          return;
        }
        yield next.value;
      }
    } finally {
      release();
      if (!finished) {
        // Stopped early (a break, the deadline): the provider's own cleanup runs (it ends its request).
        controller.abort();
        void it.return?.()?.catch(() => undefined);
      }
    }
  }
}
