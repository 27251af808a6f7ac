import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeSynthesizerContract } from '../../../test/contracts/synthesizer.js';
import { codeOf } from '../../../test/support/errors.js';
import { startOpenAiStandIn, type OpenAiStandIn } from '../../../test/support/stand-ins/openai-speech.js';
import type { WhisperlineError } from '../../errors.js';
import type { SynthesizedAudio } from '../synthesizer.js';
import { OpenAiSpeechSynthesizer, type OpenAiSpeechOptions } from './openai.js';

// The provider against a stand-in OpenAI speech server on loopback (real espeak-ng speech in
// OpenAI's framing), through the shared contract and then the protocol's details.
let server: OpenAiStandIn;
beforeAll(async () => {
  server = await startOpenAiStandIn({ apiKey: 'sk-test' });
});
afterAll(() => server.close());

const make = (options: Partial<OpenAiSpeechOptions> = {}): OpenAiSpeechSynthesizer =>
  new OpenAiSpeechSynthesizer({ baseUrl: server.url, apiKey: 'sk-test', model: 'tts-1', voice: 'alloy', languages: ['en'], ...options });

describeSynthesizerContract('openai-speech (pcm)', () => {
  server.behaviour = {};
  return { synthesizer: make(), language: 'en', unsupportedLanguage: 'xx' };
});
describeSynthesizerContract('openai-speech (wav)', () => {
  server.behaviour = {};
  return { synthesizer: make({ responseFormat: 'wav', name: 'openai-wav' }), language: 'en', unsupportedLanguage: 'xx' };
});

async function collect(s: OpenAiSpeechSynthesizer, text: string, voice?: string): Promise<SynthesizedAudio[]> {
  const out: SynthesizedAudio[] = [];
  for await (const chunk of s.synthesize({ text, language: 'en', ...(voice ? { voice } : {}) })) out.push(chunk);
  return out;
}
const joined = (chunks: SynthesizedAudio[]): Int16Array => {
  const out = new Int16Array(chunks.reduce((n, c) => n + c.samples.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c.samples, at);
    at += c.samples.length;
  }
  return out;
};
const le16 = (bytes: Buffer): Int16Array => Int16Array.from({ length: bytes.length >> 1 }, (_, i) => bytes.readInt16LE(i * 2));

describe('OpenAiSpeechSynthesizer', () => {
  it('posts what the API documents: model, input, voice, response_format, speed, the bearer key; a trailing /v1 is not doubled', async () => {
    server.behaviour = {};
    await collect(make({ baseUrl: `${server.url}/v1/`, speed: 1.25, voiceByLanguage: { de: 'nova' }, languages: ['en', 'de'] }), 'Hello there.');
    const request = server.requests.at(-1)!;
    expect(request.url).toBe('/v1/audio/speech');
    expect(request.headers.authorization).toBe('Bearer sk-test');
    expect(request.body).toEqual({ model: 'tts-1', input: 'Hello there.', voice: 'alloy', response_format: 'pcm', speed: 1.25 });
    // A language's voice, and a request's own voice over both.
    const s = make({ voiceByLanguage: { de: 'nova' }, languages: ['en', 'de'] });
    for await (const _ of s.synthesize({ text: 'Hallo.', language: 'de' })) void _;
    expect((server.requests.at(-1)!.body as { voice: string }).voice).toBe('nova');
    for await (const _ of s.synthesize({ text: 'Hallo.', language: 'de', voice: 'alloy' })) void _;
    expect((server.requests.at(-1)!.body as { voice: string }).voice).toBe('alloy');
  });

  it('hands out the first audio while the server still holds the rest of the body', async () => {
    let release!: () => void;
    server.behaviour = { holdAfterFirstPiece: new Promise<void>((r) => (release = r)) };
    const it = make().synthesize({ text: 'A sentence that is long enough to need several pieces of audio.', language: 'en' })[Symbol.asyncIterator]();
    const first = await it.next();
    // Had the provider waited for the whole reply, next() would still be pending: the server is held.
    const request = server.requests.at(-1)!;
    expect(first.done).toBe(false);
    expect(request.sent.length).toBe(1);
    expect(request.sentAll).toBe(false);
    release();
    let samples = first.value!.samples.length;
    for (let r = await it.next(); !r.done; r = await it.next()) samples += r.value.samples.length;
    expect(request.sentAll).toBe(true);
    expect(samples * 2).toBe(Buffer.concat(request.sent).length);
  });

  it('decodes samples split across pieces of odd byte counts exactly as sent (pcm at 24 kHz)', async () => {
    server.behaviour = { pieceBytes: 1001, pauseMs: 1 };
    const chunks = await collect(make(), 'Odd pieces of audio.');
    const sent = Buffer.concat(server.requests.at(-1)!.sent);
    expect(server.requests.at(-1)!.sent.length).toBeGreaterThan(3);
    expect(chunks.every((c) => c.sampleRate === 24_000)).toBe(true);
    expect(joined(chunks)).toEqual(le16(sent));
  });

  it('reads the rate from a WAV header whatever its sizes say: streamed (0xFFFFFFFF), zero, exact with a trailing chunk', async () => {
    for (const wavSize of ['streamed', 'zero', 'exact'] as const) {
      server.behaviour = { wavSize, wavTrailer: wavSize === 'exact', pieceBytes: 999, pauseMs: 1 };
      const chunks = await collect(make({ responseFormat: 'wav' }), 'Wave.');
      const sent = Buffer.concat(server.requests.at(-1)!.sent);
      // 12 bytes RIFF, 24 fmt, 20 LIST, 8 data header; the trailer (16 bytes) is not audio.
      const pcm = sent.subarray(64, wavSize === 'exact' ? sent.length - 16 : sent.length);
      expect(chunks.every((c) => c.sampleRate === 24_000)).toBe(true);
      expect(joined(chunks)).toEqual(le16(pcm));
    }
  });

  it('maps error replies: a bad voice or model is TTS_INVALID, a wrong key or a server fault TTS_FAILED, each with the status and the server message', async () => {
    server.behaviour = {};
    const failure = async (s: OpenAiSpeechSynthesizer, voice?: string): Promise<WhisperlineError> => {
      try {
        await collect(s, 'Hello.', voice);
      } catch (err) {
        return err as WhisperlineError;
      }
      throw new Error('no error');
    };
    const voice = await failure(make(), 'no-such-voice');
    expect(voice).toMatchObject({ code: 'TTS_INVALID' });
    expect(voice.message).toContain('HTTP 400');
    expect(voice.message).toContain("Invalid value for 'voice'");
    const model = await failure(make({ model: 'tts-9' }));
    expect(model).toMatchObject({ code: 'TTS_INVALID' });
    expect(model.message).toMatch(/HTTP 404.*model 'tts-9' does not exist/);
    const key = await failure(make({ apiKey: 'sk-wrong' }));
    expect(key).toMatchObject({ code: 'TTS_FAILED', retryable: false });
    expect(key.message).toMatch(/HTTP 401.*Incorrect API key/);
    server.behaviour = { fail: { status: 500, body: { error: { message: 'The server had an error while processing your request.', type: 'server_error' } } } };
    const fault = await failure(make());
    expect(fault).toMatchObject({ code: 'TTS_FAILED', retryable: true });
    expect(fault.message).toMatch(/HTTP 500.*server had an error/);
    // FastAPI's shape (Kokoro-FastAPI, speaches).
    server.behaviour = { fail: { status: 422, body: { detail: [{ loc: ['body', 'speed'], msg: 'Input should be less than or equal to 4', type: 'less_than_equal' }] } } };
    expect((await failure(make())).message).toMatch(/HTTP 422.*less than or equal to 4/);
  });

  it('aborts a request waiting for its first byte: TTS_ABORTED, and the server sees the connection close', async () => {
    server.behaviour = { holdFirstByte: new Promise(() => undefined) };
    const controller = new AbortController();
    const before = server.requests.length;
    const pending = codeOf(collect2(make(), controller.signal));
    // Aborted once the server holds the request (it has read it and sends nothing).
    await until(() => server.requests.length > before);
    controller.abort();
    expect(await pending).toBe('TTS_ABORTED');
    await server.requests.at(-1)!.over;
    expect(server.requests.at(-1)!.closedEarly).toBe(true);
  });

  it('reports a connection dropped mid-body as TTS_FAILED after the audio already received', async () => {
    server.behaviour = { dropAfterPieces: 2, pauseMs: 1 };
    const received: SynthesizedAudio[] = [];
    const code = await codeOf(
      (async () => {
        for await (const chunk of make().synthesize({ text: 'This reply will be cut off in the middle of the sentence.', language: 'en' })) received.push(chunk);
      })(),
    );
    expect(code).toBe('TTS_FAILED');
    expect(received.length).toBeGreaterThan(0);
    expect(server.requests.at(-1)!.sentAll).toBe(false);
  });

  it('closes the connection when the consumer stops reading', async () => {
    server.behaviour = { pieceBytes: 2400, pauseMs: 5 };
    for await (const _ of make().synthesize({ text: 'A long prompt that the caller interrupts after the first chunk of its audio.', language: 'en' })) break;
    const request = server.requests.at(-1)!;
    await request.over;
    expect(request.closedEarly).toBe(true);
    expect(request.sentAll).toBe(false);
  });

  it('says which languages it speaks (a configured list, regional tags by their base, or every language) and refuses SSML', async () => {
    expect(await make({ languages: ['en', 'de'] }).supports('de')).toBe(true);
    expect(await make({ languages: ['en', 'de'] }).supports('en-GB')).toBe(true);
    expect(await make({ languages: ['en'] }).supports('fr')).toBe(false);
    expect(await make({ languages: undefined }).supports('fr')).toBe(true);
    const ssml = make().synthesize({ text: '<speak>Hi</speak>', ssml: true })[Symbol.asyncIterator]().next();
    expect(await codeOf(ssml)).toBe('TTS_INVALID');
  });
});

function collect2(s: OpenAiSpeechSynthesizer, signal: AbortSignal): Promise<void> {
  return (async () => {
    for await (const _ of s.synthesize({ text: 'Hello there.', language: 'en', signal })) void _;
  })();
}

/** Polls `cond` until it holds (the tests wait on server-side events, never on a duration). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}
