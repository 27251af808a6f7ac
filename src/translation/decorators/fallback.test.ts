import { afterAll, describe, expect, it } from 'vitest';
import { codeOf } from '../../../test/support/errors.js';
import { startChatStandIn } from '../../../test/support/translation/chat.js';
import { startDeepLStandIn } from '../../../test/support/translation/deepl.js';
import { FakeTranslator } from '../../../test/support/translation/fake-translator.js';
import { StandIns } from '../../../test/support/translation/stand-in.js';
import { WhisperlineError } from '../../errors.js';
import { ChatTranslator } from '../chat/chat.js';
import { DeepLTranslator } from '../deepl/deepl.js';
import { FallbackTranslator } from './fallback.js';
import { TimeoutTranslator } from './timeout.js';

// The servers are stand-ins (test/support/translation/), not the real services.
const standIns = new StandIns();
afterAll(() => standIns.closeAll());
const request = { text: 'Ich habe eine Frage.', sourceLanguage: 'de', targetLanguage: 'en' };
const KEY = 'fallback-key:fx';

describe('FallbackTranslator', () => {
  it('translates with the second provider when the first server fails, and says so in provider and stats', async () => {
    const chatServer = standIns.track(await startChatStandIn());
    const deeplServer = standIns.track(await startDeepLStandIn(KEY));
    chatServer.failure = { status: 500, message: 'CUDA out of memory' };
    const fallback = new FallbackTranslator({
      providers: [new ChatTranslator({ baseUrl: chatServer.url, model: 'test-model' }), new DeepLTranslator({ authKey: KEY, baseUrl: deeplServer.url })],
    });
    const result = await fallback.translate(request);
    expect(result).toEqual({ text: '[EN-US] Ich habe eine Frage.', sourceLanguage: 'de', targetLanguage: 'en', provider: 'deepl' });
    expect(chatServer.requests).toHaveLength(1);
    expect(deeplServer.requests).toHaveLength(1);
    expect(fallback.stats()).toEqual({
      requests: 1,
      fallbacks: 1,
      exhausted: 0,
      aborted: 0,
      providers: { chat: { translated: 0, failed: 1, skipped: 0 }, deepl: { translated: 1, failed: 0, skipped: 0 } },
    });
  });

  it('moves on when the first provider times out: its request is aborted at the server, the second translates', async () => {
    const chatServer = standIns.track(await startChatStandIn());
    const deeplServer = standIns.track(await startDeepLStandIn(KEY));
    const fallback = new FallbackTranslator({
      providers: [new TimeoutTranslator(new ChatTranslator({ baseUrl: chatServer.url, model: 'test-model' }), { timeoutMs: 200 }), new DeepLTranslator({ authKey: KEY, baseUrl: deeplServer.url })],
    });
    // A first answered request opens the connection, so the next reaches the server before its deadline.
    expect((await fallback.translate(request)).provider).toBe('chat');
    chatServer.mode = 'slow';
    expect((await fallback.translate({ ...request, text: 'Noch eine.' })).provider).toBe('deepl');
    expect(chatServer.requests).toHaveLength(2);
    await expect.poll(() => chatServer.abandoned.length).toBe(1);
    expect(fallback.stats().providers.chat).toEqual({ translated: 1, failed: 1, skipped: 0 });
  });

  it('passes over a provider that does not support the pair without asking it', async () => {
    const englishOnly = new FakeTranslator('whisper', { supports: (_s, t) => t === 'en' });
    const any = new FakeTranslator('chat');
    const fallback = new FallbackTranslator({ providers: [englishOnly, any] });
    expect((await fallback.translate({ ...request, targetLanguage: 'fr' })).provider).toBe('chat');
    expect(englishOnly.calls).toHaveLength(0);
    // The first is preferred where it can: no fallback counted.
    expect((await fallback.translate(request)).provider).toBe('whisper');
    expect(any.calls).toHaveLength(1);
    expect(fallback.stats().fallbacks).toBe(0);
  });

  it('skips a speech provider for a request without audio', async () => {
    const speech = new FakeTranslator('whisper', { needsAudio: true });
    const text = new FakeTranslator('deepl');
    const fallback = new FallbackTranslator({ providers: [speech, text] });
    expect(fallback.capabilities).toEqual({ needsAudio: true, usesContext: false });
    expect((await fallback.translate(request)).provider).toBe('deepl');
    expect(speech.calls).toHaveLength(0);
    expect((await fallback.translate({ ...request, samples: new Int16Array(160) })).provider).toBe('whisper');
    expect(fallback.stats().providers.whisper).toEqual({ translated: 1, failed: 0, skipped: 1 });
  });

  it('fails with every provider’s reason when all fail, retryable when any was', async () => {
    const a = new FakeTranslator('chat', { behaviour: 'fail' });
    const b = new FakeTranslator('deepl', { behaviour: 'fail' });
    const fallback = new FallbackTranslator({ providers: [a, b] });
    const err = await fallback.translate(request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WhisperlineError);
    expect(err).toMatchObject({ code: 'TRANSLATION_FAILED', retryable: true });
    expect((err as Error).message).toBe('every translation provider failed: chat translation failed: server gone; deepl translation failed: server gone');
    expect(fallback.stats()).toMatchObject({ requests: 1, exhausted: 1 });
  });

  it('stops at the caller’s abort: TRANSLATION_ABORTED, and the next provider is never asked', async () => {
    const slow = new FakeTranslator('chat', { behaviour: 'hang' });
    const next = new FakeTranslator('deepl');
    const fallback = new FallbackTranslator({ providers: [slow, next] });
    const controller = new AbortController();
    const pending = fallback.translate({ ...request, signal: controller.signal });
    await expect.poll(() => slow.calls.length).toBe(1);
    controller.abort();
    expect(await codeOf(pending)).toBe('TRANSLATION_ABORTED');
    expect(next.calls).toHaveLength(0);
    expect(fallback.stats().aborted).toBe(1);
  });

  it('refuses a pair no provider supports, and needs at least one provider', async () => {
    const fallback = new FallbackTranslator({ providers: [new FakeTranslator('a', { supports: () => false })] });
    expect(await codeOf(fallback.translate(request))).toBe('TRANSLATION_UNSUPPORTED');
    expect(() => new FallbackTranslator({ providers: [] })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});
