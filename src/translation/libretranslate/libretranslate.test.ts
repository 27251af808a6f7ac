import { afterAll, describe, expect, it } from 'vitest';
import { describeTranslatorContract } from '../../../test/contracts/translator.js';
import { codeOf } from '../../../test/support/errors.js';
import { startLibreTranslateStandIn, type LibreTranslateStandIn, type LibreTranslateStandInOptions } from '../../../test/support/translation/libretranslate.js';
import { StandIns, startStandIn } from '../../../test/support/translation/stand-in.js';
import { WhisperlineError } from '../../errors.js';
import { LibreTranslateTranslator } from './libretranslate.js';

// Every server here is a stand-in (test/support/translation/libretranslate.ts), not LibreTranslate.
const standIns = new StandIns();
afterAll(() => standIns.closeAll());

async function setup(
  standInOptions: LibreTranslateStandInOptions = {},
  apiKey?: string,
): Promise<{ translator: LibreTranslateTranslator; standIn: LibreTranslateStandIn }> {
  const standIn = standIns.track(await startLibreTranslateStandIn(standInOptions));
  const translator = await LibreTranslateTranslator.create({ baseUrl: standIn.url, ...(apiKey ? { apiKey } : {}) });
  return { translator, standIn };
}

async function failure(p: Promise<unknown>): Promise<WhisperlineError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof WhisperlineError)) throw new Error(`expected a WhisperlineError, got ${String(err)}`);
  return err;
}

const request = { text: 'Ich habe eine Frage.', sourceLanguage: 'de', targetLanguage: 'en' };

describeTranslatorContract('libretranslate (stand-in server, 429 when broken)', async () => {
  const { translator, standIn } = await setup();
  return { translator, request, unsupported: { sourceLanguage: 'de', targetLanguage: 'es' }, breakIt: () => (standIn.limited = true) };
});

describeTranslatorContract('libretranslate (stand-in server with API keys, dropped connections when broken)', async () => {
  const { translator, standIn } = await setup({ apiKey: 'lt-key' }, 'lt-key');
  return { translator, request, unsupported: { sourceLanguage: 'xx', targetLanguage: 'en' }, breakIt: () => (standIn.mode = 'drop') };
});

describe('LibreTranslateTranslator', () => {
  it('learns the languages once at creation, then posts q, source, target and format text for each final', async () => {
    const { translator, standIn } = await setup();
    const result = await translator.translate(request);
    await translator.translate({ ...request, text: 'Noch eine.' });
    expect(result).toEqual({ text: '[en] Ich habe eine Frage.', sourceLanguage: 'de', targetLanguage: 'en', provider: 'libretranslate' });
    expect(standIn.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /languages', 'POST /translate', 'POST /translate']);
    expect(standIn.requests[1]?.body).toEqual({ q: 'Ich habe eine Frage.', source: 'de', target: 'en', format: 'text' });
  });

  it('answers supports from the server’s own table: targets per source, variants under their ISO code', async () => {
    const { translator, standIn } = await setup();
    expect(translator.supports('de', 'fr')).toBe(true);
    expect(translator.supports('es', 'fr')).toBe(false);
    expect(translator.supports('en', 'ja')).toBe(false);
    expect(translator.supports('auto', 'fr')).toBe(true);
    // zh is zh-Hans on this server.
    expect(translator.supports('en', 'zh')).toBe(true);
    await translator.translate({ text: 'Hello.', sourceLanguage: 'en', targetLanguage: 'zh' });
    expect(standIn.requests.at(-1)?.body).toMatchObject({ source: 'en', target: 'zh-Hans' });
  });

  it('reads a table without targets (servers before targets were listed) as every language to every other', () => {
    const translator = new LibreTranslateTranslator({ baseUrl: 'http://127.0.0.1:1', languages: [{ code: 'en' }, { code: 'de' }, { code: 'it' }] });
    expect(translator.supports('it', 'de')).toBe(true);
    expect(translator.supports('de', 'fr')).toBe(false);
  });

  it('sends source auto as auto; the result keeps the requested labels', async () => {
    const { translator, standIn } = await setup();
    const result = await translator.translate({ ...request, sourceLanguage: 'auto' });
    expect(standIn.requests.at(-1)?.body).toMatchObject({ source: 'auto', target: 'en' });
    expect(result).toMatchObject({ sourceLanguage: 'auto', targetLanguage: 'en', text: '[en] Ich habe eine Frage.' });
  });

  it('sends the API key as api_key; a wrong one is TRANSLATION_FAILED with 403 and the server’s error, not retryable', async () => {
    const { translator, standIn } = await setup({ apiKey: 'lt-key' }, 'lt-key');
    await translator.translate(request);
    expect(standIn.requests.at(-1)?.body).toMatchObject({ api_key: 'lt-key' });
    const wrong = await LibreTranslateTranslator.create({ baseUrl: standIn.url, apiKey: 'nope' });
    const err = await failure(wrong.translate(request));
    expect(err.code).toBe('TRANSLATION_FAILED');
    expect(err.message).toBe('libretranslate translation failed: HTTP 403: Invalid API key');
    expect(err.retryable).toBe(false);
  });

  it('reports the server’s 429 and 400 errors with their message', async () => {
    const { standIn } = await setup();
    // A table that claims more than the server has: the server's 400 says which language.
    const claims = new LibreTranslateTranslator({ baseUrl: standIn.url, languages: [{ code: 'de' }, { code: 'ja' }] });
    const unsupported = await failure(claims.translate({ ...request, targetLanguage: 'ja' }));
    expect(unsupported.message).toBe('libretranslate translation failed: HTTP 400: ja is not supported');
    standIn.limited = true;
    const limited = await failure(claims.translate({ ...request, targetLanguage: 'de', sourceLanguage: 'ja' }));
    expect(limited.message).toBe('libretranslate translation failed: HTTP 429: Too many request limits violations');
    expect(limited.retryable).toBe(true);
  });

  it('fails creation with TRANSLATION_FAILED when the languages cannot be read', async () => {
    const { standIn } = await setup();
    standIn.mode = 'drop';
    expect(await codeOf(LibreTranslateTranslator.create({ baseUrl: standIn.url }))).toBe('TRANSLATION_FAILED');
    const notLibre = standIns.track(await startStandIn(() => ({ status: 200, body: { hello: 'world' } })));
    const err = await failure(LibreTranslateTranslator.create({ baseUrl: notLibre.url }));
    expect(err.message).toMatch(/did not answer with a language list/);
  });

  it('a reply without translatedText is TRANSLATION_FAILED', async () => {
    const odd = standIns.track(await startStandIn((req) => (req.path === '/languages' ? { status: 200, body: [{ code: 'de' }, { code: 'en' }] } : { status: 200, body: {} })));
    const translator = await LibreTranslateTranslator.create({ baseUrl: odd.url });
    expect((await failure(translator.translate(request))).message).toMatch(/no translatedText/);
  });

  it('an abort during a slow reply is TRANSLATION_ABORTED and closes the request at the server', async () => {
    const { translator, standIn } = await setup();
    standIn.mode = 'slow';
    const controller = new AbortController();
    const pending = translator.translate({ ...request, signal: controller.signal });
    await standIn.received(2);
    controller.abort();
    expect(await codeOf(pending)).toBe('TRANSLATION_ABORTED');
    await expect.poll(() => standIn.abandoned.length).toBe(1);
  });
});
