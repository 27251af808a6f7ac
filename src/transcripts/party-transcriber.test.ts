import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeRecognizer, recognition } from '../../test/support/fake-recognizer.js';
import { WhisperlineError } from '../errors.js';
import type { Utterance } from '../vad/utterance.js';
import { SequenceCounter, type PipelineEvent, type TranscriptEvent } from './events.js';
import { HallucinationFilter } from './filters.js';
import { PartyTranscriber } from './party-transcriber.js';

const result = recognition;

const loud = (ms: number): Int16Array => Int16Array.from({ length: ms * 16 }, (_, i) => Math.round(8000 * Math.sin(i / 3)));
const utterance = (startMs: number, ms = 1000): Utterance => ({ party: 'caller', startMs, endMs: startMs + ms, samples: loud(ms), reason: 'silence' });
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(opts: { afterFinal?: (final: TranscriptEvent) => Promise<void>; partials?: boolean; open?: () => { startMs: number; samples: Int16Array } | undefined } = {}) {
  const recognizer = new FakeRecognizer();
  const events: PipelineEvent[] = [];
  const t = new PartyTranscriber({
    callId: 'call-1',
    party: 'caller',
    language: 'auto',
    partials: opts.partials ?? false,
    partialIntervalMs: 1000,
    ...(opts.afterFinal ? { afterFinal: opts.afterFinal } : {}),
    recognizer,
    filter: new HallucinationFilter({ noSpeechThreshold: 0.6, silencePhrases: ['thank you'], lowEnergyDbfs: -45, maxRepeats: 3 }),
    seq: new SequenceCounter(),
    emit: (e) => events.push(e),
    openUtterance: opts.open ?? (() => undefined),
    logger: pino({ level: 'silent' }),
  });
  return { recognizer, events, t };
}

afterEach(() => vi.useRealTimers());

describe('PartyTranscriber', () => {
  it('emits one final per utterance on the call clock, words moved onto it', async () => {
    const { recognizer, events, t } = setup();
    t.utterance(utterance(5000));
    expect(recognizer.requests[0]!.req).toMatchObject({ priority: 'final', task: 'transcribe', language: 'auto' });
    recognizer.requests[0]!.resolve(result(' Hello there.'));
    await t.drain();
    expect(events).toEqual([
      expect.objectContaining({ callId: 'call-1', seq: 1, party: 'caller', kind: 'final', text: 'Hello there.', startMs: 5000, endMs: 6000, language: 'en', confidence: 0.8 }),
    ]);
    expect((events[0] as TranscriptEvent).words).toEqual([{ text: 'Hello there.', startMs: 5100, endMs: 5700, confidence: 0.8 }]);
  });

  it('emits finals in utterance order even when recognition finishes out of order', async () => {
    const { recognizer, events, t } = setup();
    t.utterance(utterance(0));
    t.utterance(utterance(2000));
    recognizer.requests[1]!.resolve(result(' second'));
    await flush();
    expect(events).toEqual([]);
    recognizer.requests[0]!.resolve(result(' first'));
    await t.drain();
    expect(events.map((e) => [e.seq, 'text' in e ? e.text : ''])).toEqual([
      [1, 'first'],
      [2, 'second'],
    ]);
  });

  it('passes the previous final as context to the next one', async () => {
    const { recognizer, t } = setup();
    t.utterance(utterance(0));
    recognizer.requests[0]!.resolve(result(' my account number'));
    await t.drain();
    t.utterance(utterance(2000));
    expect(recognizer.requests[1]!.req.prompt).toBe('my account number');
  });

  it('counts a failed final, emits nothing for it, and carries on', async () => {
    const { recognizer, events, t } = setup();
    t.utterance(utterance(0));
    t.utterance(utterance(2000));
    recognizer.requests[0]!.reject(new WhisperlineError('ASR_FAILED', 'server died twice'));
    recognizer.requests[1]!.resolve(result(' still here'));
    await t.drain();
    expect(events.map((e) => 'text' in e && e.text)).toEqual(['still here']);
    expect(t.stats.failedFinals).toBe(1);
  });

  it('drops filtered finals and counts why', async () => {
    const { recognizer, events, t } = setup();
    t.utterance(utterance(0));
    recognizer.requests[0]!.resolve({ ...result(' x'), segments: [{ text: ' x', startMs: 0, endMs: 500, noSpeechProb: 0.9, confidence: 0.2 }] });
    await t.drain();
    expect(events).toEqual([]);
    expect(t.stats.filtered).toEqual({ 'no-speech': 1 });
  });

  it('runs afterFinal after each final and before the next one, and drain() waits for it', async () => {
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const { recognizer, events, t } = setup({
      afterFinal: async (final) => {
        order.push(`after ${final.text}`);
        if (final.text === 'one') await held;
      },
    });
    t.utterance(utterance(0));
    t.utterance(utterance(2000));
    recognizer.requests[1]!.resolve(result(' two'));
    recognizer.requests[0]!.resolve(result(' one'));
    await flush();
    // The second final is recognised but waits for the first one's afterFinal.
    expect(events.map((e) => ('text' in e ? e.text : ''))).toEqual(['one']);
    let drained = false;
    void t.drain().then(() => (drained = true));
    await flush();
    expect(drained).toBe(false);
    release();
    await t.drain();
    expect(events.map((e) => ('text' in e ? e.text : ''))).toEqual(['one', 'two']);
    expect(order).toEqual(['after one', 'after two']);
  });

  it('sends partials only while the engine has spare capacity, and never after the utterance ended', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let open: { startMs: number; samples: Int16Array } | undefined = { startMs: 1000, samples: loud(1200) };
    const { recognizer, events, t } = setup({ partials: true, open: () => open });
    t.speechStarted();
    recognizer.spare = false;
    vi.advanceTimersByTime(1000);
    expect(recognizer.requests).toHaveLength(0);
    expect(t.stats.skippedPartials).toBe(1);
    recognizer.spare = true;
    vi.advanceTimersByTime(1000);
    expect(recognizer.requests.map((r) => r.req.priority)).toEqual(['partial']);
    recognizer.requests[0]!.resolve(result(' I would'));
    await flush();
    expect(events).toEqual([expect.objectContaining({ kind: 'partial', text: 'I would', startMs: 1000, endMs: 2200, seq: 1 })]);

    // A partial still in flight when the utterance ends is abandoned.
    vi.advanceTimersByTime(1000);
    expect(recognizer.requests).toHaveLength(2);
    open = undefined;
    t.utterance(utterance(1000, 2000));
    recognizer.requests[1]!.resolve(result(' I would like'));
    recognizer.requests[2]!.resolve(result(' I would like to pay.'));
    await t.drain();
    await flush();
    expect(events.map((e) => [e.kind, 'text' in e ? e.text : ''])).toEqual([
      ['partial', 'I would'],
      ['final', 'I would like to pay.'],
    ]);
    // No partial timer is left running after the utterance.
    vi.advanceTimersByTime(5000);
    expect(recognizer.requests).toHaveLength(3);
    t.close();
  });
});
