import { afterAll, describe, expect, it } from 'vitest';
import { codeOf } from '../../../test/support/errors.js';
import { startChatStandIn } from '../../../test/support/translation/chat.js';
import { FakeTranslator } from '../../../test/support/translation/fake-translator.js';
import { StandIns } from '../../../test/support/translation/stand-in.js';
import { ChatTranslator } from '../chat/chat.js';
import { DEFAULT_TRANSLATION_TIMEOUT_MS, TimeoutTranslator } from './timeout.js';

// The chat server is a stand-in (test/support/translation/chat.ts).
const standIns = new StandIns();
afterAll(() => standIns.closeAll());
const request = { text: 'Ich habe eine Frage.', sourceLanguage: 'de', targetLanguage: 'en' };

describe('TimeoutTranslator', () => {
  // The provider below never answers on its own, so only the deadline can end these requests:
  // the assertions hold however slow the machine is.
  it('rejects a request past its deadline with TRANSLATION_FAILED "timed out", and aborts it at the provider', async () => {
    const inner = new FakeTranslator('chat', { behaviour: 'hang' });
    const translator = new TimeoutTranslator(inner, { timeoutMs: 20 });
    const err = await translator.translate(request).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TRANSLATION_FAILED', retryable: true, message: 'chat translation timed out after 20 ms' });
    expect(inner.signals[0]?.aborted).toBe(true);
    expect(translator.stats()).toEqual({ requests: 1, completed: 0, timedOut: 1, aborted: 0, failed: 0 });
  });

  it('closes the HTTP request of a server that stops answering', async () => {
    const server = standIns.track(await startChatStandIn());
    const translator = new TimeoutTranslator(new ChatTranslator({ baseUrl: server.url, model: 'test-model' }), { timeoutMs: 200 });
    // A first answered request opens the connection, so the next one reaches the server well before its deadline.
    await translator.translate(request);
    server.mode = 'slow';
    expect(await codeOf(translator.translate({ ...request, text: 'Noch eine.' }))).toBe('TRANSLATION_FAILED');
    expect(server.requests).toHaveLength(2);
    await expect.poll(() => server.abandoned.length).toBe(1);
  });

  it('lets the caller’s abort through as TRANSLATION_ABORTED, not as a timeout', async () => {
    const inner = new FakeTranslator('chat', { behaviour: 'hang' });
    const translator = new TimeoutTranslator(inner, { timeoutMs: 60_000 });
    const controller = new AbortController();
    const pending = translator.translate({ ...request, signal: controller.signal });
    await expect.poll(() => inner.calls.length).toBe(1);
    controller.abort();
    expect(await codeOf(pending)).toBe('TRANSLATION_ABORTED');
    expect(inner.signals[0]?.aborted).toBe(true);
    expect(translator.stats()).toMatchObject({ aborted: 1, timedOut: 0 });
  });

  it('passes a prompt answer and the provider’s own failure through, with its name and capabilities', async () => {
    const inner = new FakeTranslator('deepl', { usesContext: true });
    const translator = new TimeoutTranslator(inner);
    expect(translator.timeoutMs).toBe(DEFAULT_TRANSLATION_TIMEOUT_MS);
    expect(translator.name).toBe('deepl');
    expect(translator.capabilities).toEqual({ needsAudio: false, usesContext: true });
    expect(await translator.translate(request)).toMatchObject({ text: 'deepl: Ich habe eine Frage.', provider: 'deepl' });
    inner.behaviour = 'fail';
    const err = await translator.translate(request).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TRANSLATION_FAILED', message: 'deepl translation failed: server gone' });
    expect(translator.stats()).toEqual({ requests: 2, completed: 1, timedOut: 0, aborted: 0, failed: 1 });
  });
});
