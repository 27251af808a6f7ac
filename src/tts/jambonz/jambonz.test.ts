import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeSynthesizerContract } from '../../../test/contracts/synthesizer.js';
import { codeOf } from '../../../test/support/errors.js';
import { startJambonzStandIn, type JambonzStandIn } from '../../../test/support/stand-ins/jambonz-tts.js';
import { mp3Encoder } from '../../../test/support/stand-ins/speech-audio.js';
import { startStandIn, deliver } from '../../../test/support/stand-ins/stream.js';
import { rmsDb } from '../../../test/support/signal.js';
import type { SynthesisRequest, SynthesizedAudio } from '../synthesizer.js';
import { JambonzTtsSynthesizer, type JambonzTtsOptions } from './jambonz.js';

// The provider against a stand-in jambonz custom TTS server (real espeak-ng speech in each of the
// API's formats), through the shared contract and then the protocol's details.
let server: JambonzStandIn;
beforeAll(async () => {
  server = await startJambonzStandIn({ apiKey: 'jb-key' });
});
afterAll(() => server.close());

const make = (options: Partial<JambonzTtsOptions> = {}): JambonzTtsSynthesizer =>
  new JambonzTtsSynthesizer({ url: `${server.url}/synthesize`, apiKey: 'jb-key', voice: 'en-US-Standard-A', languages: ['en', 'de'], ssml: true, ...options });

describeSynthesizerContract('jambonz-tts (audio/l16)', () => {
  server.behaviour = { format: 'l16' };
  return { synthesizer: make(), language: 'en-US', unsupportedLanguage: 'xx' };
});
describeSynthesizerContract('jambonz-tts (audio/wav)', () => {
  server.behaviour = { format: 'wav', rate: 8000 };
  return { synthesizer: make(), language: 'en-US', unsupportedLanguage: 'xx' };
});
// mp3 test audio needs an encoder here (lame or ffmpeg; .ci/setup installs neither).
describe.skipIf(mp3Encoder === undefined)('with an mp3 encoder', () => {
  describeSynthesizerContract('jambonz-tts (audio/mpeg)', () => {
    server.behaviour = { format: 'mp3' };
    return { synthesizer: make(), language: 'en-US', unsupportedLanguage: 'xx' };
  });
});

async function collect(s: JambonzTtsSynthesizer, request: Partial<SynthesisRequest> = {}): Promise<SynthesizedAudio[]> {
  const out: SynthesizedAudio[] = [];
  for await (const chunk of s.synthesize({ text: 'Hello from the stand-in.', language: 'en-US', ...request })) out.push(chunk);
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

describe('JambonzTtsSynthesizer', () => {
  it('posts {language, voice, type, text} with the bearer key, as jambonz does; type ssml for SSML', async () => {
    server.behaviour = {};
    await collect(make(), { text: 'Plain words.' });
    const plain = server.requests.at(-1)!;
    expect(plain.url).toBe('/synthesize');
    expect(plain.headers.authorization).toBe('Bearer jb-key');
    expect(plain.headers['content-type']).toBe('application/json');
    expect(plain.body).toEqual({ language: 'en-US', voice: 'en-US-Standard-A', type: 'text', text: 'Plain words.' });
    await collect(make({ voiceByLanguage: { de: 'de-DE-Standard-A' } }), { text: '<speak>Guten Tag.</speak>', language: 'de-DE', ssml: true });
    expect(server.requests.at(-1)!.body).toEqual({ language: 'de-DE', voice: 'de-DE-Standard-A', type: 'ssml', text: '<speak>Guten Tag.</speak>' });
  });

  it('reads the rate from audio/l16;rate=N and plays little-endian samples exactly as sent (odd pieces too)', async () => {
    server.behaviour = { format: 'l16', rate: 8000, pieceBytes: 777, pauseMs: 1, contentType: 'audio/L16; rate=8000' };
    const chunks = await collect(make());
    const sent = Buffer.concat(server.requests.at(-1)!.sent);
    expect(chunks.every((c) => c.sampleRate === 8000)).toBe(true);
    expect(joined(chunks)).toEqual(Int16Array.from({ length: sent.length >> 1 }, (_, i) => sent.readInt16LE(i * 2)));
  });

  it('reads big-endian L16 when told to, and the same speech read with the wrong order is noise, not silence', async () => {
    server.behaviour = { format: 'l16', bigEndian: true };
    const right = joined(await collect(make({ l16ByteOrder: 'big' })));
    const sent = Buffer.concat(server.requests.at(-1)!.sent);
    expect(right).toEqual(Int16Array.from({ length: sent.length >> 1 }, (_, i) => sent.readInt16BE(i * 2)));
    const wrong = joined(await collect(make()));
    // Byte-swapped speech is loud broadband noise: far louder than the speech itself.
    expect(rmsDb(wrong)).toBeGreaterThan(rmsDb(right) + 6);
  });

  it('takes audio/x-wav as WAV and its header rate', async () => {
    server.behaviour = { format: 'wav', rate: 24_000, contentType: 'audio/x-wav' };
    const chunks = await collect(make());
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.every((c) => c.sampleRate === 24_000)).toBe(true);
  });

  it.skipIf(mp3Encoder === undefined)('decodes mp3 (audio/mp3 too) as it arrives: the first audio while the server holds the rest', async () => {
    let release!: () => void;
    server.behaviour = { format: 'mp3', contentType: 'audio/mp3', pieceBytes: 4000, holdAfterFirstPiece: new Promise<void>((r) => (release = r)) };
    const it = make().synthesize({ text: 'An mp3 reply long enough for several pieces of the body to be sent.', language: 'en-US' })[Symbol.asyncIterator]();
    const first = await it.next();
    const request = server.requests.at(-1)!;
    expect(first.done).toBe(false);
    expect(first.value!.sampleRate).toBe(22_050);
    expect(request.sentAll).toBe(false);
    release();
    let samples = first.value!.samples.length;
    for (let r = await it.next(); !r.done; r = await it.next()) samples += r.value.samples.length;
    expect(request.sentAll).toBe(true);
    expect(samples / 22_050).toBeGreaterThan(2);
  });

  // An mp3 that every install of the project has (nodejs-whisper ships whisper.cpp's sample):
  // decoded through the same path whether or not an encoder is installed.
  const jfk = 'node_modules/nodejs-whisper/cpp/whisper.cpp/samples/jfk.mp3';
  it.skipIf(!existsSync(jfk))('decodes a real mp3 file (whisper.cpp\'s jfk.mp3: 11 s at 16 kHz, ID3 tag first) sent in pieces', async () => {
    const mp3 = readFileSync(jfk);
    const file = await startStandIn((record, res) => deliver(record, res, 'audio/mpeg', mp3, { pieceBytes: 3000, pauseMs: 1 }));
    try {
      const chunks = await collect(new JambonzTtsSynthesizer({ url: file.url, apiKey: 'k' }));
      const all = joined(chunks);
      expect(chunks.every((c) => c.sampleRate === 16_000)).toBe(true);
      expect(all.length / 16_000).toBeGreaterThan(10.5);
      expect(all.length / 16_000).toBeLessThan(11.5);
      expect(rmsDb(all)).toBeGreaterThan(-40);
    } finally {
      await file.close();
    }
  });

  it('refuses a Content-Type outside the API, and l16 without a rate, as TTS_FAILED', async () => {
    server.behaviour = { contentType: 'audio/ogg' };
    expect(await codeOf(collect(make()))).toBe('TTS_FAILED');
    server.behaviour = { contentType: 'audio/l16' };
    expect(await codeOf(collect(make()))).toBe('TTS_FAILED');
  });

  it('maps error statuses: a bad voice (400) is TTS_INVALID, a wrong key (401) or a fault (503) TTS_FAILED, with the status and text', async () => {
    server.behaviour = {};
    await expect(collect(make(), { voice: 'no-such-voice' })).rejects.toMatchObject({ code: 'TTS_INVALID', message: expect.stringMatching(/HTTP 400: unknown voice no-such-voice/) });
    await expect(collect(make({ apiKey: 'wrong' }))).rejects.toMatchObject({ code: 'TTS_FAILED', retryable: false, message: expect.stringMatching(/HTTP 401: unauthorized/) });
    server.behaviour = { fail: { status: 503, text: 'vendor overloaded' } };
    await expect(collect(make())).rejects.toMatchObject({ code: 'TTS_FAILED', retryable: true, message: expect.stringMatching(/HTTP 503: vendor overloaded/) });
  });

  it('reports a dropped connection mid-body as TTS_FAILED, and refuses SSML unless configured for it', async () => {
    server.behaviour = { dropAfterPieces: 1, pauseMs: 1 };
    expect(await codeOf(collect(make(), { text: 'This reply is cut off in the middle of a long sentence of words.' }))).toBe('TTS_FAILED');
    expect(server.requests.at(-1)!.sentAll).toBe(false);
    server.behaviour = {};
    expect(make({ ssml: false }).capabilities.ssml).toBe(false);
    expect(await codeOf(collect(make({ ssml: false }), { text: '<speak>Hi</speak>', ssml: true }))).toBe('TTS_INVALID');
  });
});
