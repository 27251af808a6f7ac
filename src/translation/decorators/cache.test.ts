import { afterAll, describe, expect, it } from 'vitest';
import { codeOf } from '../../../test/support/errors.js';
import { startLibreTranslateStandIn } from '../../../test/support/translation/libretranslate.js';
import { FakeTranslator } from '../../../test/support/translation/fake-translator.js';
import { StandIns } from '../../../test/support/translation/stand-in.js';
import { LibreTranslateTranslator } from '../libretranslate/libretranslate.js';
import { CacheTranslator, TranslationLru } from './cache.js';

// The LibreTranslate server is a stand-in (test/support/translation/libretranslate.ts).
const standIns = new StandIns();
afterAll(() => standIns.closeAll());
const request = { text: 'Ich habe eine Frage.', sourceLanguage: 'de', targetLanguage: 'en' };

describe('CacheTranslator', () => {
  it('answers a repeated text from memory: the server is asked once', async () => {
    const server = standIns.track(await startLibreTranslateStandIn());
    const cache = new CacheTranslator(await LibreTranslateTranslator.create({ baseUrl: server.url }));
    const first = await cache.translate(request);
    const translations = (): number => server.requests.filter((r) => r.path === '/translate').length;
    expect(translations()).toBe(1);
    const second = await cache.translate({ ...request, text: ' Ich habe eine Frage. ' });
    expect(second).toEqual(first);
    expect(translations()).toBe(1);
    expect(cache.stats()).toEqual({ hits: 1, misses: 1, size: 1, evictions: 0 });
  });

  it('keys by pair and text: another target, source or text asks the provider', async () => {
    const inner = new FakeTranslator('chat');
    const cache = new CacheTranslator(inner);
    await cache.translate(request);
    await cache.translate({ ...request, targetLanguage: 'fr' });
    await cache.translate({ ...request, sourceLanguage: 'nl' });
    await cache.translate({ ...request, text: 'Noch eine Frage.' });
    expect(inner.calls).toHaveLength(4);
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 4 });
  });

  it('keys by provider: two providers sharing one store do not answer for each other', async () => {
    const store = new TranslationLru(10);
    const chat = new FakeTranslator('chat');
    const deepl = new FakeTranslator('deepl');
    const a = new CacheTranslator(chat, { store });
    const b = new CacheTranslator(deepl, { store });
    expect((await a.translate(request)).provider).toBe('chat');
    expect((await b.translate(request)).provider).toBe('deepl');
    expect((await b.translate(request)).provider).toBe('deepl');
    expect([chat.calls.length, deepl.calls.length]).toEqual([1, 1]);
    expect(store.size).toBe(2);
  });

  it('is bounded: the least recently used entry goes first', async () => {
    const inner = new FakeTranslator('chat');
    const cache = new CacheTranslator(inner, { maxEntries: 2 });
    const say = (text: string): Promise<unknown> => cache.translate({ ...request, text });
    await say('a');
    await say('b');
    await say('a'); // hit: a is now the most recent
    await say('c'); // evicts b
    expect(cache.stats()).toEqual({ hits: 1, misses: 3, size: 2, evictions: 1 });
    await say('a'); // still there
    expect(inner.calls.map((c) => c.text)).toEqual(['a', 'b', 'c']);
    await say('b'); // gone: asked again
    expect(inner.calls.map((c) => c.text)).toEqual(['a', 'b', 'c', 'b']);
  });

  it('leaves context out of the key by default, and puts it in when asked', async () => {
    const inner = new FakeTranslator('chat', { usesContext: true });
    const loose = new CacheTranslator(inner);
    await loose.translate({ ...request, context: ['Guten Tag.'] });
    await loose.translate({ ...request, context: ['Etwas anderes.'] });
    expect(inner.calls).toHaveLength(1);
    const exact = new CacheTranslator(inner, { keyIncludesContext: true });
    await exact.translate({ ...request, context: ['Guten Tag.'] });
    await exact.translate({ ...request, context: ['Etwas anderes.'] });
    await exact.translate({ ...request, context: ['Guten Tag.'] });
    expect(inner.calls).toHaveLength(3);
    expect(exact.stats()).toMatchObject({ hits: 1, misses: 2 });
  });

  it('does not keep failures: the next request asks again', async () => {
    const inner = new FakeTranslator('chat', { behaviour: 'fail' });
    const cache = new CacheTranslator(inner);
    expect(await codeOf(cache.translate(request))).toBe('TRANSLATION_FAILED');
    inner.behaviour = 'answer';
    expect((await cache.translate(request)).text).toBe('chat: Ich habe eine Frage.');
    expect(inner.calls).toHaveLength(2);
    expect(cache.stats().size).toBe(1);
  });

  it('honours an aborted signal even for a text it has', async () => {
    const cache = new CacheTranslator(new FakeTranslator('chat'));
    await cache.translate(request);
    const controller = new AbortController();
    controller.abort();
    expect(await codeOf(cache.translate({ ...request, signal: controller.signal }))).toBe('TRANSLATION_ABORTED');
    expect(cache.stats().hits).toBe(0);
  });

  it('refuses a store without room', () => {
    expect(() => new TranslationLru(0)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});
