/**
 * The gateway as a jambonz custom TTS vendor (POST /v1/tts), spoken to by the jambonz protocol's
 * client in this repository (JambonzTtsSynthesizer: the request jambonz sends, the reply formats
 * it reads) and by raw HTTP for the refusals. espeak-ng synthesizes for real.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayHttpServer } from '../http/server.js';
import { EspeakSynthesizer } from '../tts/espeak/espeak.js';
import { JambonzTtsSynthesizer } from '../tts/jambonz/jambonz.js';
import { ttsRoutes } from './tts-vendor.js';

const KEY = 'jambonz-vendor-key-0123456789';
const log = pino({ level: 'silent' });
let server: GatewayHttpServer;
let url: string;

beforeAll(async () => {
  server = await GatewayHttpServer.start({
    host: '127.0.0.1',
    port: 0,
    health: () => ({ status: 'ok' }),
    logger: log,
    routes: ttsRoutes({ synthesizer: () => new EspeakSynthesizer(), apiKeys: [KEY], sampleRate: 8000, logger: log }),
  });
  url = `http://127.0.0.1:${server.port}/v1/tts`;
});
afterAll(async () => server?.close());

const post = (body: unknown, key: string | null = KEY): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('the jambonz custom TTS endpoint', () => {
  it('speaks what a jambonz client asks for: audio/l16 at the configured rate, as long as espeak-ng makes it', async () => {
    const client = new JambonzTtsSynthesizer({ url, apiKey: KEY, voice: 'en-us' });
    let samples = 0;
    let rate = 0;
    for await (const chunk of client.synthesize({ text: 'Thank you for calling. An agent will be with you shortly.', language: 'en' })) {
      samples += chunk.samples.length;
      rate = chunk.sampleRate;
    }
    expect(rate).toBe(8000);
    let reference = 0;
    let referenceRate = 0;
    for await (const chunk of new EspeakSynthesizer().synthesize({ text: 'Thank you for calling. An agent will be with you shortly.', language: 'en', voice: 'en-us' })) {
      reference += chunk.samples.length;
      referenceRate = chunk.sampleRate;
    }
    expect(Math.abs(samples / rate - reference / referenceRate)).toBeLessThan(0.1);
    const raw = await post({ language: 'en-US', voice: 'en-us', type: 'text', text: 'Hello.' });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toBe('audio/l16;rate=8000');
    expect((await raw.arrayBuffer()).byteLength).toBeGreaterThan(4000);
  });

  it('refuses a missing or unknown key (401), a body that is not the API\'s (400), a language it cannot speak (400)', async () => {
    const noKey = await post({ text: 'x' }, null);
    expect(noKey.status).toBe(401);
    expect(noKey.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await post({ text: 'x' }, 'not-the-vendor-key-0123456789')).status).toBe(401);
    const notJson = await post('{"text": ');
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toEqual({ error: 'the body is not JSON: expected {language, voice, type, text}' });
    expect(await (await post({ language: 'en-US' })).json()).toEqual({ error: 'text is missing or empty' });
    expect((await post({ text: 'x', type: 'markdown' })).status).toBe(400);
    const unknownVoice = await post({ text: 'Hallo.', voice: 'no-such-voice' });
    expect(unknownVoice.status).toBe(400);
    expect(((await unknownVoice.json()) as { error: string }).error).toMatch(/voice/);
  });

  it('is off without keys', () => {
    expect(ttsRoutes({ synthesizer: () => new EspeakSynthesizer(), apiKeys: [], sampleRate: 8000, logger: log })).toEqual([]);
  });
});
