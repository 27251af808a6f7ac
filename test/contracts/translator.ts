/**
 * The contract every `Translator` provider must pass (see src/translation/translator.ts). A
 * provider's test calls `describeTranslatorContract` with a factory.
 */
import { describe, expect, it } from 'vitest';
import { codeOf } from '../support/errors.js';
import type { TranslationRequest, Translator } from '../../src/translation/translator.js';

export interface TranslatorUnderTest {
  readonly translator: Translator;
  /** A request of a pair it translates (with audio when it needs audio). */
  readonly request: TranslationRequest;
  /** A pair it does not translate. */
  readonly unsupported: { readonly sourceLanguage: string; readonly targetLanguage: string };
  /** Makes the provider fail from now on (a server gone); undefined when it cannot be made to. */
  readonly breakIt?: () => void;
  /**
   * The names a result's `provider` may carry. Default: the translator's own name. A decorator
   * over several providers (a fallback) names the provider that translated, not itself.
   */
  readonly providers?: readonly string[];
}


export function describeTranslatorContract(name: string, setup: () => TranslatorUnderTest | Promise<TranslatorUnderTest>): void {
  describe(`Translator contract: ${name}`, () => {
    it('names itself and says what it needs', async () => {
      const { translator } = await setup();
      expect(translator.name).toMatch(/^[a-z0-9.-]+$/);
      expect(typeof translator.capabilities.needsAudio).toBe('boolean');
      expect(typeof translator.capabilities.usesContext).toBe('boolean');
    });

    it('translates a pair it supports: text in the target language, labelled with both languages and the provider', async () => {
      const { translator, request, providers } = await setup();
      expect(translator.supports(request.sourceLanguage, request.targetLanguage)).toBe(true);
      const result = await translator.translate(request);
      expect(typeof result.text).toBe('string');
      expect(result).toMatchObject({ sourceLanguage: request.sourceLanguage, targetLanguage: request.targetLanguage });
      expect(providers ?? [translator.name]).toContain(result.provider);
    });

    it('gives text already in the target language back unchanged', async () => {
      const { translator, request } = await setup();
      const same = { ...request, sourceLanguage: request.targetLanguage };
      if (!translator.supports(same.sourceLanguage, same.targetLanguage)) return;
      expect((await translator.translate(same)).text).toBe(request.text);
    });

    it('refuses a pair it does not support with TRANSLATION_UNSUPPORTED', async () => {
      const { translator, request, unsupported } = await setup();
      expect(translator.supports(unsupported.sourceLanguage, unsupported.targetLanguage)).toBe(false);
      expect(await codeOf(translator.translate({ ...request, ...unsupported }))).toBe('TRANSLATION_UNSUPPORTED');
    });

    it('stops when aborted: TRANSLATION_ABORTED, before or while it works', async () => {
      const { translator, request } = await setup();
      const before = new AbortController();
      before.abort();
      expect(await codeOf(translator.translate({ ...request, signal: before.signal }))).toBe('TRANSLATION_ABORTED');
      const during = new AbortController();
      const pending = translator.translate({ ...request, signal: during.signal });
      during.abort();
      expect(await codeOf(pending)).toBe('TRANSLATION_ABORTED');
    });

    it('serves concurrent requests, each with its own result', async () => {
      const { translator, request } = await setup();
      const results = await Promise.all([1, 2, 3].map((n) => translator.translate({ ...request, text: `${request.text} ${n}` })));
      expect(results.every((r) => r.targetLanguage === request.targetLanguage)).toBe(true);
    });

    it('reports a provider failure as TRANSLATION_FAILED', async () => {
      const under = await setup();
      if (!under.breakIt) return;
      under.breakIt();
      expect(await codeOf(under.translator.translate(under.request))).toBe('TRANSLATION_FAILED');
    });
  });
}
