import { afterAll, describe, expect, it } from 'vitest';
import { describeTranslatorContract } from '../../../test/contracts/translator.js';
import { codeOf } from '../../../test/support/errors.js';
import { startDeepLStandIn, type DeepLStandIn } from '../../../test/support/translation/deepl.js';
import { StandIns } from '../../../test/support/translation/stand-in.js';
import { WhisperlineError } from '../../errors.js';
import { DeepLTranslator, deeplBaseUrl, type DeepLTranslatorOptions } from './deepl.js';

// Every server here is a stand-in (test/support/translation/deepl.ts), not DeepL.
const standIns = new StandIns();
afterAll(() => standIns.closeAll());
const KEY = '0b1c2d3e-aaaa-bbbb-cccc-123456789abc:fx';

async function setup(options: Partial<DeepLTranslatorOptions> = {}): Promise<{ translator: DeepLTranslator; standIn: DeepLStandIn }> {
  const standIn = standIns.track(await startDeepLStandIn(KEY));
  return { translator: new DeepLTranslator({ authKey: KEY, baseUrl: standIn.url, ...options }), standIn };
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

describeTranslatorContract('deepl (stand-in server, quota exceeded when broken)', async () => {
  const { translator, standIn } = await setup();
  return { translator, request, unsupported: { sourceLanguage: 'de', targetLanguage: 'xh' }, breakIt: () => (standIn.account = 'quota') };
});

describe('DeepLTranslator', () => {
  it('posts /v2/translate with the DeepL-Auth-Key header and {text: [...], source_lang, target_lang} in DeepL’s codes', async () => {
    const { translator, standIn } = await setup();
    const result = await translator.translate(request);
    expect(result).toEqual({ text: '[EN-US] Ich habe eine Frage.', sourceLanguage: 'de', targetLanguage: 'en', provider: 'deepl' });
    const sent = standIn.requests[0]!;
    expect(sent).toMatchObject({ method: 'POST', path: '/v2/translate' });
    expect(sent.headers.authorization).toBe(`DeepL-Auth-Key ${KEY}`);
    expect(sent.body).toEqual({ text: ['Ich habe eine Frage.'], source_lang: 'DE', target_lang: 'EN-US' });
  });

  it('maps targets that need a variant (EN, PT, ZH) by default and as configured; no → NB', async () => {
    const { translator } = await setup({ targetVariants: { en: 'en-gb' } });
    expect(translator.targetCode('en')).toBe('EN-GB');
    expect(translator.targetCode('pt')).toBe('PT-BR');
    expect(translator.targetCode('zh')).toBe('ZH-HANS');
    expect(translator.targetCode('de')).toBe('DE');
    expect(translator.targetCode('no')).toBe('NB');
    const { translator: portuguese, standIn } = await setup({ targetVariants: { pt: 'PT-PT' } });
    await portuguese.translate({ ...request, targetLanguage: 'pt' });
    expect(standIn.requests[0]?.body).toMatchObject({ source_lang: 'DE', target_lang: 'PT-PT' });
  });

  it('leaves source_lang out for auto (DeepL detects), and sends the party’s last finals as context', async () => {
    const { translator, standIn } = await setup({ contextTurns: 2 });
    await translator.translate({ ...request, sourceLanguage: 'auto', context: ['Eins.', 'Zwei.', 'Drei.'] });
    expect(standIn.requests[0]?.body).toEqual({ text: ['Ich habe eine Frage.'], target_lang: 'EN-US', context: 'Zwei.\nDrei.' });
    expect(translator.capabilities.usesContext).toBe(true);
    const { translator: noContext, standIn: other } = await setup({ useContext: false });
    await noContext.translate({ ...request, context: ['Eins.'] });
    expect(other.requests[0]?.body).not.toHaveProperty('context');
    expect(noContext.capabilities.usesContext).toBe(false);
  });

  it('chooses the free endpoint for a :fx key and the pro endpoint otherwise', () => {
    expect(deeplBaseUrl('abc:fx')).toBe('https://api-free.deepl.com');
    expect(deeplBaseUrl('abc')).toBe('https://api.deepl.com');
  });

  it('says what 403, 456 and 429 mean: TRANSLATION_FAILED, a bad key and a spent quota not retryable, too many requests retryable', async () => {
    const { standIn } = await setup();
    const wrongKey = new DeepLTranslator({ authKey: 'wrong', baseUrl: standIn.url });
    const forbidden = await failure(wrongKey.translate(request));
    expect(forbidden).toMatchObject({ code: 'TRANSLATION_FAILED', retryable: false });
    expect(forbidden.message).toMatch(/^deepl translation failed: HTTP 403: authorization failed.*\(Forbidden\)$/);
    const translator = new DeepLTranslator({ authKey: KEY, baseUrl: standIn.url });
    standIn.account = 'quota';
    const quota = await failure(translator.translate(request));
    expect(quota).toMatchObject({ code: 'TRANSLATION_FAILED', retryable: false });
    expect(quota.message).toMatch(/^deepl translation failed: HTTP 456: quota exceeded/);
    standIn.account = 'busy';
    const busy = await failure(translator.translate(request));
    expect(busy).toMatchObject({ code: 'TRANSLATION_FAILED', retryable: true });
    expect(busy.message).toMatch(/^deepl translation failed: HTTP 429: too many requests/);
  });

  it('passes DeepL’s message on for other errors (a target DeepL refuses)', async () => {
    const { standIn } = await setup();
    const translator = new DeepLTranslator({ authKey: KEY, baseUrl: standIn.url, targetVariants: { en: 'EN-AU' } });
    const err = await failure(translator.translate(request));
    expect(err.message).toBe("deepl translation failed: HTTP 400: Value for 'target_lang' not supported.");
  });

  it('supports DeepL’s languages (or the configured ones) and refuses others without asking', async () => {
    const { translator, standIn } = await setup();
    expect(translator.supports('ja', 'de')).toBe(true);
    expect(translator.supports('auto', 'pt')).toBe(true);
    expect(translator.supports('de', 'xh')).toBe(false);
    expect(await codeOf(translator.translate({ ...request, targetLanguage: 'hi' }))).toBe('TRANSLATION_UNSUPPORTED');
    expect(standIn.requests).toHaveLength(0);
    const { translator: limited } = await setup({ languages: ['de', 'en'] });
    expect(limited.supports('de', 'fr')).toBe(false);
  });

  it('an abort during a slow reply is TRANSLATION_ABORTED and closes the request at the server', async () => {
    const { translator, standIn } = await setup();
    standIn.mode = 'slow';
    const controller = new AbortController();
    const pending = translator.translate({ ...request, signal: controller.signal });
    await standIn.received(1);
    controller.abort();
    expect(await codeOf(pending)).toBe('TRANSLATION_ABORTED');
    await expect.poll(() => standIn.abandoned.length).toBe(1);
  });
});
