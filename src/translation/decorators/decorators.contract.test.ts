/**
 * The shared Translator contract for each decorator, and for a stack of them, over real
 * providers talking to STAND-IN servers (test/support/translation/), not the real services.
 */
import { afterAll } from 'vitest';
import { describeTranslatorContract } from '../../../test/contracts/translator.js';
import { startChatStandIn } from '../../../test/support/translation/chat.js';
import { startDeepLStandIn } from '../../../test/support/translation/deepl.js';
import { startLibreTranslateStandIn } from '../../../test/support/translation/libretranslate.js';
import { StandIns } from '../../../test/support/translation/stand-in.js';
import { ChatTranslator } from '../chat/chat.js';
import { DeepLTranslator } from '../deepl/deepl.js';
import { LibreTranslateTranslator } from '../libretranslate/libretranslate.js';
import { CacheTranslator, FallbackTranslator, RateLimitTranslator, TimeoutTranslator } from './index.js';

const standIns = new StandIns();
afterAll(() => standIns.closeAll());
const KEY = 'contract-key:fx';
const request = { text: 'Ich habe eine Frage zu meiner Rechnung.', sourceLanguage: 'de', targetLanguage: 'en' };
const unsupported = { sourceLanguage: 'de', targetLanguage: 'xh' };

async function chat(): Promise<{ translator: ChatTranslator; breakIt: () => void }> {
  const standIn = standIns.track(await startChatStandIn());
  return { translator: new ChatTranslator({ baseUrl: standIn.url, model: 'test-model', languages: ['de', 'en', 'fr'] }), breakIt: () => (standIn.mode = 'drop') };
}

async function deepl(): Promise<{ translator: DeepLTranslator; breakIt: () => void }> {
  const standIn = standIns.track(await startDeepLStandIn(KEY));
  return { translator: new DeepLTranslator({ authKey: KEY, baseUrl: standIn.url }), breakIt: () => (standIn.account = 'quota') };
}

describeTranslatorContract('fallback: chat, then deepl (stand-in servers)', async () => {
  const [first, second] = [await chat(), await deepl()];
  return {
    translator: new FallbackTranslator({ providers: [first.translator, second.translator] }),
    request,
    unsupported,
    providers: ['chat', 'deepl'],
    breakIt: () => {
      first.breakIt();
      second.breakIt();
    },
  };
});

describeTranslatorContract('timeout around chat (stand-in server that stops answering when broken)', async () => {
  const standIn = standIns.track(await startChatStandIn());
  const inner = new ChatTranslator({ baseUrl: standIn.url, model: 'test-model', languages: ['de', 'en'] });
  return { translator: new TimeoutTranslator(inner, { timeoutMs: 1000 }), request, unsupported, breakIt: () => (standIn.mode = 'slow') };
});

describeTranslatorContract('cache around libretranslate (stand-in server)', async () => {
  const standIn = standIns.track(await startLibreTranslateStandIn());
  const inner = await LibreTranslateTranslator.create({ baseUrl: standIn.url });
  return { translator: new CacheTranslator(inner, { maxEntries: 2 }), request, unsupported, breakIt: () => (standIn.limited = true) };
});

describeTranslatorContract('rate limit around deepl (stand-in server, 2 at once then 50/s)', async () => {
  const { translator, breakIt } = await deepl();
  return { translator: new RateLimitTranslator(translator, { requestsPerSecond: 50, burst: 2, maxQueue: 5 }), request, unsupported, breakIt };
});

describeTranslatorContract('a stack: cache over fallback over timeouts over (rate-limited) chat and deepl', async () => {
  const [first, second] = [await chat(), await deepl()];
  const fallback = new FallbackTranslator({
    providers: [new TimeoutTranslator(new RateLimitTranslator(first.translator, { requestsPerSecond: 50, burst: 2 })), new TimeoutTranslator(second.translator)],
  });
  return {
    translator: new CacheTranslator(fallback),
    request,
    unsupported,
    providers: ['chat', 'deepl'],
    breakIt: () => {
      first.breakIt();
      second.breakIt();
    },
  };
});
