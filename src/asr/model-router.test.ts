import { describe, expect, it } from 'vitest';
import { ModelRouter } from './model-router.js';
import type { RecognitionRequest, RecognitionResult, SpeechRecognizer } from './recognizer.js';

/** A fake engine (the real one is tested in engine.test.ts) that answers with its model name. */
class FakeEngine implements SpeechRecognizer {
  readonly capabilities = { translate: true, wordTimestamps: true, languageDetection: true };
  closed = 0;
  constructor(readonly model: string) {}
  async recognize(_r: RecognitionRequest): Promise<RecognitionResult> {
    return { text: this.model, language: 'en', segments: [], processingMs: 0, queuedMs: 0 };
  }
  hasSpareCapacity(): boolean {
    return true;
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

const request: RecognitionRequest = { samples: new Int16Array(16), language: 'en', task: 'transcribe', priority: 'final' };

describe('ModelRouter', () => {
  it('serves the default model directly and starts other models once, on first use', async () => {
    const base = new FakeEngine('base');
    const started: FakeEngine[] = [];
    const router = new ModelRouter('base', base, async (model) => {
      const e = new FakeEngine(model);
      started.push(e);
      return e;
    });
    expect(router.recognizerFor()).toBe(base);
    expect(router.recognizerFor('base')).toBe(base);
    const small1 = router.recognizerFor('small');
    const small2 = router.recognizerFor('small');
    expect(started).toHaveLength(0);
    expect(small1.hasSpareCapacity()).toBe(false);
    expect((await small1.recognize(request)).text).toBe('small');
    expect((await small2.recognize(request)).text).toBe('small');
    expect(started.map((e) => e.model)).toEqual(['small']);
    await router.close();
    expect(started[0]!.closed).toBe(1);
    expect(base.closed).toBe(0); // the default engine belongs to the runtime
  });

  it('retries a model that failed to start on the next call', async () => {
    let attempts = 0;
    const router = new ModelRouter('base', new FakeEngine('base'), async (model) => {
      if (++attempts === 1) throw new Error('MODEL_MISSING');
      return new FakeEngine(model);
    });
    await expect(router.recognizerFor('medium').recognize(request)).rejects.toThrow('MODEL_MISSING');
    expect((await router.recognizerFor('medium').recognize(request)).text).toBe('medium');
    await router.close();
  });
});
