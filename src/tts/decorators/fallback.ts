/**
 * Several providers in order of preference: a request goes to the first that can take it (its
 * language, SSML), and if that one fails before any audio (an error, its first-audio deadline) the
 * next is asked. Once a provider has started speaking the request stays with it: a failure then
 * ends the stream with TTS_FAILED rather than finishing the sentence in another voice. Each chunk
 * carries the provider that spoke it (`spokenBy`), and `onProvider` says it once per request, so
 * a speech event can name the real voice.
 */
import { asWhisperlineError, WhisperlineError } from '../../errors.js';
import { aborted } from '../http.js';
import type { SynthesisRequest, SynthesizedAudio, Synthesizer, SynthesizerCapabilities } from '../synthesizer.js';
import { checkedName, spokenBy, type AttributedAudio } from './attribution.js';
import { TimeoutSynthesizer } from './timeout.js';

export interface FallbackOptions {
  /** The name of the chain (default `fallback`); chunks name the provider that spoke. */
  readonly name?: string;
  /** Give each provider this long for its first audio (wraps each in a TimeoutSynthesizer); absent, no deadline. */
  readonly firstAudioMs?: number;
  /** Told once per request which provider speaks it, before its first chunk is handed out. */
  readonly onProvider?: (provider: string, request: SynthesisRequest) => void;
  /** Told of each provider that failed before speaking (and so was passed over), for logs. */
  readonly onFailure?: (provider: string, error: WhisperlineError, request: SynthesisRequest) => void;
}

export class FallbackSynthesizer implements Synthesizer {
  readonly name: string;
  readonly capabilities: SynthesizerCapabilities;
  private readonly providers: readonly Synthesizer[];

  constructor(
    providers: readonly Synthesizer[],
    private readonly options: FallbackOptions = {},
  ) {
    if (providers.length === 0) throw new WhisperlineError('CONFIG_INVALID', 'a fallback chain needs at least one provider');
    this.name = checkedName(options.name ?? 'fallback');
    const deadline = options.firstAudioMs;
    this.providers = deadline === undefined ? providers : providers.map((p) => new TimeoutSynthesizer(p, { firstAudioMs: deadline }));
    // Streams only if every provider does (any may end up speaking); SSML if one takes it (it gets those requests).
    this.capabilities = { streaming: providers.every((p) => p.capabilities.streaming), ssml: providers.some((p) => p.capabilities.ssml) };
  }

  async supports(language: string): Promise<boolean> {
    for (const p of this.providers) if (await p.supports(language).catch(() => false)) return true;
    return false;
  }

  synthesize(request: SynthesisRequest): AsyncIterable<AttributedAudio> {
    return { [Symbol.asyncIterator]: () => this.run(request)[Symbol.asyncIterator]() };
  }

  private async *run(request: SynthesisRequest): AsyncGenerator<AttributedAudio> {
    if (request.text.trim() === '') throw new WhisperlineError('TTS_INVALID', 'nothing to say: the text is empty');
    const failures: { provider: string; error: WhisperlineError }[] = [];
    const passOver = (provider: string, error: WhisperlineError): void => {
      failures.push({ provider, error });
      this.options.onFailure?.(provider, error, request);
    };
    for (const provider of this.providers) {
      if (request.signal?.aborted) throw aborted(request.signal.reason);
      if (request.ssml && !provider.capabilities.ssml) {
        failures.push({ provider: provider.name, error: new WhisperlineError('TTS_INVALID', `${provider.name} does not take SSML`) });
        continue;
      }
      if (request.language !== undefined && request.voice === undefined) {
        let speaks: boolean;
        try {
          speaks = await provider.supports(request.language);
        } catch (err) {
          passOver(provider.name, asWhisperlineError(err));
          continue;
        }
        if (!speaks) {
          failures.push({ provider: provider.name, error: new WhisperlineError('TTS_INVALID', `${provider.name} does not speak "${request.language.slice(0, 32)}"`) });
          continue;
        }
      }
      const it = provider.synthesize(request)[Symbol.asyncIterator]();
      let first: IteratorResult<SynthesizedAudio>;
      try {
        first = await it.next();
      } catch (err) {
        // The caller's abort ends the request; anything else passes it to the next provider.
        if (request.signal?.aborted) throw aborted(request.signal.reason);
        passOver(provider.name, asWhisperlineError(err));
        continue;
      }
      if (first.done) {
        passOver(provider.name, new WhisperlineError('TTS_FAILED', `${provider.name} ended without audio`));
        continue;
      }
      // A nested chain (or a cache) already knows the real voice; keep the innermost name.
      const speaker = spokenBy(first.value) ?? provider.name;
      this.options.onProvider?.(speaker, request);
      try {
        yield { ...first.value, provider: speaker };
        for (let next = await it.next(); !next.done; next = await it.next()) yield { ...next.value, provider: spokenBy(next.value) ?? speaker };
        return;
      } catch (err) {
        if (request.signal?.aborted) throw aborted(request.signal.reason);
        const e = asWhisperlineError(err);
        // No second voice mid-sentence: the caller gets a failure, not a mix.
        throw new WhisperlineError('TTS_FAILED', `${speaker} failed after its audio had started: ${e.message}`, { retryable: e.retryable, cause: e });
      } finally {
        await it.return?.()?.catch(() => undefined);
      }
    }
    const summary = failures.map((f) => `${f.provider}: ${f.error.message}`).join('; ');
    // Nobody could take the request as asked (empty text, language, voice, SSML): the caller's to fix.
    if (failures.every((f) => f.error.code === 'TTS_INVALID')) throw new WhisperlineError('TTS_INVALID', `no provider takes this request: ${summary}`);
    throw new WhisperlineError('TTS_FAILED', `no provider spoke: ${summary}`, { retryable: failures.some((f) => f.error.retryable) });
  }
}
