import { describe, expect, it } from 'vitest';
import { FakeRecognizer, recognition } from '../../test/support/fake-recognizer.js';
import { ModelRouter } from './model-router.js';
import type { RecognitionRequest } from './recognizer.js';

/** A fake engine (the real one is tested in whisper/engine.test.ts) that answers with its model name. */
class FakeEngine extends FakeRecognizer {
  constructor(readonly model: string) {
    super(() => recognition(model));
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
    expect(started[0]!.closed).toBe(true);
    expect(base.closed).toBe(false); // the default engine belongs to the runtime
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
