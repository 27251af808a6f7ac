/**
 * A jambonz custom TTS server as a synthesis provider: the same HTTP API jambonz calls, so a
 * speech server written for jambonz serves the gateway unchanged. `POST <url>` with JSON
 * `{language, voice, type: "text"|"ssml", text}` and `Authorization: Bearer <apiKey>`; the reply's
 * Content-Type names the audio: `audio/l16;rate=N` (raw s16), `audio/wav` / `audio/x-wav`, or
 * `audio/mpeg` / `audio/mp3`. All three are decoded as the body arrives (mp3 frame by frame).
 *
 * L16's byte order: RFC 3551 makes `audio/L16` big-endian, but jambonz does not convert what the
 * server sends: it stores an `audio/l16;rate=8000` body as a raw `.r8` file (`.r16`, `.r24`, …;
 * getFileExtFromMime in @jambonz/speech-utils) that FreeSWITCH plays as native little-endian s16,
 * and its own vendor code says a bare little-endian pcm_8000 body "is exactly the r8 container".
 * So servers written for jambonz send little-endian, and that is the default here;
 * `l16ByteOrder: 'big'` is there for a server that follows the RFC.
 */
import { WhisperlineError } from '../../errors.js';
import { aborted, bodyPieces, linkedController, postForAudio, speaksLanguage, voiceFor } from '../http.js';
import { Pcm16Decoder, split, WavDecoder, type ByteOrder } from '../pcm.js';
import type { SynthesisRequest, SynthesizedAudio, Synthesizer, SynthesizerCapabilities } from '../synthesizer.js';
import { Mp3Decoder } from './mp3.js';

export interface JambonzTtsOptions {
  /** The server's full URL (what jambonz calls `custom_tts_url`). */
  readonly url: string;
  /** Sent as `Authorization: Bearer <apiKey>`, as jambonz does (the key set for the vendor in its portal). */
  readonly apiKey?: string;
  /** The voice when a request names none (and its language has none in `voiceByLanguage`). */
  readonly voice?: string;
  /** A language's default voice, for requests that name a language only. */
  readonly voiceByLanguage?: Readonly<Record<string, string>>;
  /** The language sent when a request has none (default `en-US`; jambonz sends tags like it). */
  readonly language?: string;
  /** The languages the server speaks; absent, `supports` says yes to every language. */
  readonly languages?: readonly string[];
  /** The server takes SSML (`type: "ssml"`); default false. */
  readonly ssml?: boolean;
  /** Byte order of `audio/l16` replies (default `little`: what jambonz plays, see above). */
  readonly l16ByteOrder?: ByteOrder;
  /** The longest text one request takes (default 20 000). */
  readonly maxTextChars?: number;
  /** The name on speech events (default `jambonz-tts`). */
  readonly name?: string;
}

const DEFAULT_MAX_TEXT_CHARS = 20_000;

type Format = { kind: 'l16'; rate: number } | { kind: 'wav' } | { kind: 'mp3' };

export class JambonzTtsSynthesizer implements Synthesizer {
  readonly name: string;
  readonly capabilities: SynthesizerCapabilities;

  constructor(private readonly options: JambonzTtsOptions) {
    this.name = options.name ?? 'jambonz-tts';
    if (!/^[a-z0-9.-]+$/.test(this.name)) throw new WhisperlineError('CONFIG_INVALID', `synthesizer name "${this.name}" is not lower-case letters, digits, dots and dashes`);
    this.capabilities = { streaming: true, ssml: options.ssml ?? false };
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

  private voiceFor(request: SynthesisRequest): string | undefined {
    return voiceFor(request, { voice: this.options.voice, ...(this.options.voiceByLanguage ? { voiceByLanguage: this.options.voiceByLanguage } : {}) });
  }

  private async *run(request: SynthesisRequest): AsyncGenerator<SynthesizedAudio> {
    const { text } = request;
    const max = this.options.maxTextChars ?? DEFAULT_MAX_TEXT_CHARS;
    if (text.trim() === '') throw new WhisperlineError('TTS_INVALID', 'nothing to say: the text is empty');
    if (text.length > max) throw new WhisperlineError('TTS_INVALID', `text of ${text.length} characters is longer than ${max}`);
    if (request.ssml && !this.capabilities.ssml) throw new WhisperlineError('TTS_INVALID', `${this.name} is not configured to take SSML`);
    if (request.language !== undefined && !this.speaks(request.language)) {
      throw new WhisperlineError('TTS_INVALID', `${this.name} has no voice for language "${request.language.slice(0, 32)}"`);
    }
    if (request.signal?.aborted) throw aborted(request.signal.reason);
    const { controller, release } = linkedController(request.signal);
    let mp3: Mp3Decoder | undefined;
    try {
      const response = await postForAudio(this.name, this.options.url, {
        headers: this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {},
        // jambonz sends all four; a server may look for any of them.
        body: { language: request.language ?? this.options.language ?? 'en-US', voice: this.voiceFor(request) ?? '', type: request.ssml ? 'ssml' : 'text', text },
        signal: controller.signal,
      });
      const format = this.formatOf(response.headers.get('content-type'));
      const l16 = format.kind === 'l16' ? new Pcm16Decoder(this.options.l16ByteOrder ?? 'little') : undefined;
      const wav = format.kind === 'wav' ? new WavDecoder(this.name) : undefined;
      mp3 = format.kind === 'mp3' ? await Mp3Decoder.create(this.name) : undefined;
      let samples = 0;
      for await (const piece of bodyPieces(this.name, response, controller.signal)) {
        const decoded = l16 ? l16.push(piece) : wav ? wav.push(piece) : mp3!.push(piece);
        const sampleRate = format.kind === 'l16' ? format.rate : wav ? wav.rate! : mp3!.sampleRate!;
        for (const chunk of split(decoded)) {
          samples += chunk.length;
          yield { samples: chunk, sampleRate };
        }
      }
      if (request.signal?.aborted) throw aborted(request.signal.reason);
      if (samples === 0) throw new WhisperlineError('TTS_FAILED', `${this.name} synthesis failed: the reply held no audio`);
    } finally {
      release();
      mp3?.free();
      // Ended early (the consumer stopped iterating, an error): the request goes with it.
      controller.abort();
    }
  }

  /** The reply's format from its Content-Type, the values jambonz's API allows. */
  private formatOf(contentType: string | null): Format {
    const [mime = '', ...params] = (contentType ?? '').toLowerCase().split(';').map((p) => p.trim());
    const param = (name: string): string | undefined => params.find((p) => p.startsWith(`${name}=`))?.slice(name.length + 1);
    if (mime === 'audio/l16') {
      const rate = Number(param('rate'));
      if (!Number.isInteger(rate) || rate < 4000 || rate > 192_000) throw new WhisperlineError('TTS_FAILED', `${this.name} sent audio/l16 without a usable rate (${contentType})`);
      const channels = Number(param('channels') ?? 1);
      if (channels !== 1) throw new WhisperlineError('TTS_FAILED', `${this.name} sent ${channels}-channel audio/l16; jambonz's API is mono`);
      return { kind: 'l16', rate };
    }
    if (mime === 'audio/wav' || mime === 'audio/x-wav' || mime === 'audio/wave') return { kind: 'wav' };
    if (mime === 'audio/mpeg' || mime === 'audio/mp3') return { kind: 'mp3' };
    throw new WhisperlineError('TTS_FAILED', `${this.name} sent Content-Type "${contentType ?? 'none'}", not one jambonz's API allows (audio/l16;rate=N, audio/wav, audio/mpeg)`);
  }
}
