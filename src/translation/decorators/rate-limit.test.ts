import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../test/support/errors.js';
import { FakeTranslator } from '../../../test/support/translation/fake-translator.js';
import { RateLimitTranslator, type RateLimitClock } from './rate-limit.js';

/** Time that moves only when the test says: the bucket's refills are asserted by counts and order, never by elapsed time. */
class ManualClock implements RateLimitClock {
  private t = 0;
  private timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];

  now(): number {
    return this.t;
  }

  schedule(fn: () => void, ms: number): () => void {
    const timer = { at: this.t + ms, fn, cancelled: false };
    this.timers.push(timer);
    return () => (timer.cancelled = true);
  }

  /** Moves time on by `ms`, running the timers due on the way, then lets the woken requests run. */
  async advance(ms: number): Promise<void> {
    const until = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => !x.cancelled && x.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = until;
    await settle();
  }
}

/** Lets queued promise callbacks run (the fake provider answers after one microtask). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

const request = { text: 'Hallo.', sourceLanguage: 'de', targetLanguage: 'en' };

function setup(options: { burst?: number; maxQueue?: number } = {}): { limiter: RateLimitTranslator; inner: FakeTranslator; clock: ManualClock } {
  const clock = new ManualClock();
  const inner = new FakeTranslator('deepl');
  return { limiter: new RateLimitTranslator(inner, { requestsPerSecond: 10, burst: 2, maxQueue: 2, clock, ...options }), inner, clock };
}

describe('RateLimitTranslator', () => {
  it('lets a burst through, queues the next ones in order as tokens come, and refuses beyond the queue', async () => {
    const { limiter, inner, clock } = setup();
    const outcomes: string[] = [];
    const requests = ['1', '2', '3', '4', '5'].map((n) =>
      limiter.translate({ ...request, text: n }).then(
        (r) => outcomes.push(`${r.text}`),
        (e: { code: string; message: string }) => outcomes.push(`${n} ${e.code} ${e.message}`),
      ),
    );
    await settle();
    expect(inner.calls.map((c) => c.text)).toEqual(['1', '2']);
    expect(outcomes).toEqual(['5 TRANSLATION_FAILED deepl translation rate limited: 10/s with 2 waiting already', 'deepl: 1', 'deepl: 2']);
    expect(limiter.stats()).toEqual({ immediate: 2, queued: 2, refused: 1, aborted: 0, waiting: 2 });
    // 10/s: one token each 100 ms.
    await clock.advance(99);
    expect(inner.calls).toHaveLength(2);
    await clock.advance(1);
    expect(inner.calls.map((c) => c.text)).toEqual(['1', '2', '3']);
    await clock.advance(100);
    expect(inner.calls.map((c) => c.text)).toEqual(['1', '2', '3', '4']);
    await Promise.all(requests);
    expect(outcomes.slice(3)).toEqual(['deepl: 3', 'deepl: 4']);
    expect(limiter.stats()).toMatchObject({ waiting: 0 });
  });

  it('refills up to the burst only, after a quiet spell', async () => {
    const { limiter, inner, clock } = setup({ maxQueue: 0 });
    await clock.advance(10_000);
    const results = await Promise.all(['a', 'b', 'c'].map((text) => codeOf(limiter.translate({ ...request, text }))));
    expect(results).toEqual([undefined, undefined, 'TRANSLATION_FAILED']);
    expect(inner.calls).toHaveLength(2);
    expect(limiter.stats()).toMatchObject({ immediate: 2, refused: 1 });
  });

  it('an abort while waiting leaves the queue (TRANSLATION_ABORTED, never asked), and frees its place', async () => {
    const { limiter, inner, clock } = setup({ burst: 1, maxQueue: 1 });
    await limiter.translate({ ...request, text: 'first' });
    const controller = new AbortController();
    const waiting = limiter.translate({ ...request, text: 'aborted', signal: controller.signal });
    controller.abort();
    expect(await codeOf(waiting)).toBe('TRANSLATION_ABORTED');
    const next = limiter.translate({ ...request, text: 'next' });
    expect(limiter.stats()).toEqual({ immediate: 1, queued: 2, refused: 0, aborted: 1, waiting: 1 });
    await clock.advance(100);
    expect((await next).text).toBe('deepl: next');
    expect(inner.calls.map((c) => c.text)).toEqual(['first', 'next']);
  });

  it('spends no token on a refused pair or on text already in the target language', async () => {
    const { limiter, inner } = setup({ burst: 1, maxQueue: 0 });
    expect(await codeOf(limiter.translate({ ...request, targetLanguage: 'english' }))).toBe('TRANSLATION_UNSUPPORTED');
    expect((await limiter.translate({ ...request, sourceLanguage: 'en' })).text).toBe('Hallo.');
    expect((await limiter.translate(request)).text).toBe('deepl: Hallo.');
    expect(inner.calls).toHaveLength(1);
    expect(limiter.stats()).toMatchObject({ immediate: 1, refused: 0 });
  });

  it('refuses a rate that is not positive', () => {
    expect(() => new RateLimitTranslator(new FakeTranslator('x'), { requestsPerSecond: 0 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});
