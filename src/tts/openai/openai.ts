/**
 * An OpenAI-compatible speech endpoint as a synthesis provider: `POST {baseUrl}/v1/audio/speech`
 * (OpenAI, Kokoro-FastAPI, speaches, openedai-speech). The reply is read as it streams, so the
 * first audio is out as soon as the server sends it, not when the whole text is spoken. Two of
 * the endpoint's formats carry PCM without a codec: `pcm` (raw s16le mono, 24 kHz at OpenAI and
 * Kokoro) and `wav` (its header says the rate). No SSML: these servers speak plain text.
 */
import { WhisperlineError } from '../../errors.js';
import { aborted, bodyPieces, linkedController, postForAudio, speaksLanguage, trimBase, voiceFor } from '../http.js';
import { Pcm16Decoder, split, WavDecoder } from '../pcm.js';
import type { SynthesisRequest, SynthesizedAudio, Synthesizer, SynthesizerCapabilities } from '../synthesizer.js';

export interface OpenAiSpeechOptions {
  /** The server, e.g. `http://127.0.0.1:8880`; a trailing `/v1` is taken as part of the path, not doubled. */
  readonly baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` (local servers usually need none). */
  readonly apiKey?: string;
  /** `tts-1`, `gpt-4o-mini-tts`, `kokoro`, … */
  readonly model: string;
  /** The voice when a request names none (and its language has none in `voiceByLanguage`). */
  readonly voice: string;
  /** A language's default voice (ISO 639-1 or a tag such as `en-GB`), for requests that name a language only. */
  readonly voiceByLanguage?: Readonly<Record<string, string>>;
  /** `pcm` (default) or `wav`. */
  readonly responseFormat?: 'pcm' | 'wav';
  /**
   * The rate of `pcm` replies (default 24 000, OpenAI's and Kokoro's). When set it is also sent
   * as `sample_rate`, which speaches honours; `wav` replies carry their own.
   */
  readonly sampleRate?: number;
  /** 0.25–4.0; not sent when absent (the server's 1.0). */
  readonly speed?: number;
  /** The languages its voices speak; absent, `supports` says yes to every language. */
  readonly languages?: readonly string[];
  /** The longest text one request takes (default 4096, OpenAI's limit). */
  readonly maxTextChars?: number;
  /** The name on speech events (default `openai-speech`); a deployment with two servers names them apart. */
  readonly name?: string;
}

/** OpenAI's documented rate for `pcm`. */
const DEFAULT_PCM_RATE = 24_000;
const DEFAULT_MAX_TEXT_CHARS = 4096;

export class OpenAiSpeechSynthesizer implements Synthesizer {
  readonly name: string;
  readonly capabilities: SynthesizerCapabilities = { streaming: true, ssml: false };
  private readonly url: string;

  constructor(private readonly options: OpenAiSpeechOptions) {
    this.name = options.name ?? 'openai-speech';
    if (!/^[a-z0-9.-]+$/.test(this.name)) throw new WhisperlineError('CONFIG_INVALID', `synthesizer name "${this.name}" is not lower-case letters, digits, dots and dashes`);
    if (options.speed !== undefined && !(options.speed >= 0.25 && options.speed <= 4)) {
      throw new WhisperlineError('CONFIG_INVALID', `${this.name}: speed ${options.speed} is outside 0.25–4.0`);
    }
    const base = trimBase(options.baseUrl);
    this.url = `${base.endsWith('/v1') ? base : `${base}/v1`}/audio/speech`;
  }

  supports(language: string): Promise<boolean> {
    return Promise.resolve(this.speaks(language));
  }

  synthesize(request: SynthesisRequest): AsyncIterable<SynthesizedAudio> {
    return { [Symbol.asyncIterator]: () => this.run(request)[Symbol.asyncIterator]() };
  }

  private speaks(language: string): boolean {
    return speaksLanguage(this.options, language);
  }

  private voiceFor(request: SynthesisRequest): string {
    return voiceFor(request, { voice: this.options.voice, ...(this.options.voiceByLanguage ? { voiceByLanguage: this.options.voiceByLanguage } : {}) });
  }

  private async *run(request: SynthesisRequest): AsyncGenerator<SynthesizedAudio> {
    const { text } = request;
    const max = this.options.maxTextChars ?? DEFAULT_MAX_TEXT_CHARS;
    if (text.trim() === '') throw new WhisperlineError('TTS_INVALID', 'nothing to say: the text is empty');
    if (text.length > max) throw new WhisperlineError('TTS_INVALID', `text of ${text.length} characters is longer than ${max}`);
    if (request.ssml) throw new WhisperlineError('TTS_INVALID', `${this.name} does not take SSML`);
    if (request.language !== undefined && !this.speaks(request.language)) {
      throw new WhisperlineError('TTS_INVALID', `${this.name} has no voice for language "${request.language.slice(0, 32)}"`);
    }
    if (request.signal?.aborted) throw aborted(request.signal.reason);
    const format = this.options.responseFormat ?? 'pcm';
    const { controller, release } = linkedController(request.signal);
    try {
      const response = await postForAudio(this.name, this.url, {
        headers: this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {},
        body: {
          model: this.options.model,
          input: text,
          voice: this.voiceFor(request),
          response_format: format,
          ...(this.options.speed === undefined ? {} : { speed: this.options.speed }),
          ...(this.options.sampleRate === undefined ? {} : { sample_rate: this.options.sampleRate }),
        },
        signal: controller.signal,
      });
      // A 200 with a JSON or HTML body is a proxy or gateway page, not audio.
      const type = (response.headers.get('content-type') ?? '').toLowerCase();
      if (type.startsWith('application/json') || type.startsWith('text/')) {
        throw new WhisperlineError('TTS_FAILED', `${this.name} synthesis failed: the reply is ${type}, not audio`);
      }
      const pcm = format === 'pcm' ? new Pcm16Decoder('little') : undefined;
      const wav = format === 'wav' ? new WavDecoder(this.name) : undefined;
      const pcmRate = this.options.sampleRate ?? DEFAULT_PCM_RATE;
      let samples = 0;
      for await (const piece of bodyPieces(this.name, response, controller.signal)) {
        const decoded = pcm ? pcm.push(piece) : wav!.push(piece);
        const sampleRate = pcm ? pcmRate : wav!.rate!;
        for (const chunk of split(decoded)) {
          samples += chunk.length;
          yield { samples: chunk, sampleRate };
        }
      }
      if (request.signal?.aborted) throw aborted(request.signal.reason);
      if (samples === 0) throw new WhisperlineError('TTS_FAILED', `${this.name} synthesis failed: the reply held no audio`);
    } finally {
      release();
      // Ended early (the consumer stopped iterating, an error): the request goes with it.
      controller.abort();
    }
  }
}
