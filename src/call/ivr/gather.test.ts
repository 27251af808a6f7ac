import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TranscriptEvent } from '../../transcripts/events.js';
import { Gather, type GatherSpec } from './gather.js';

const spec = (over: Partial<GatherSpec> = {}): GatherSpec => ({
  input: ['speech', 'digits'],
  timeoutMs: 15_000,
  bargein: true,
  dtmfBargein: true,
  minBargeinWordCount: 1,
  listenDuringPrompt: true,
  minDigits: 1,
  interDigitTimeoutMs: 5000,
  falseInterruptionMs: 2000,
  ...over,
});
const said = (text: string, kind: 'partial' | 'final' = 'final'): TranscriptEvent => ({ kind, callId: 'c', seq: 1, party: 'caller', text, startMs: 0, endMs: 1, language: 'en', confidence: 0.8 });

function prompt() {
  const calls: string[] = [];
  return {
    calls,
    control: {
      interrupt: async () => (calls.push('interrupt'), 1200),
      resume: (ms: number) => void calls.push(`resume:${ms}`),
    },
  };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('gather', () => {
  it('times out from the end of the prompt, not from its start', async () => {
    const p = prompt();
    const g = new Gather(spec({ timeoutMs: 3000 }), p.control);
    g.promptStarted('Please say your account number.');
    let result: unknown;
    void g.result.then((r) => (result = r));
    await vi.advanceTimersByTimeAsync(10_000); // the prompt plays for 10 s
    expect(result).toBeUndefined();
    g.promptEnded();
    await vi.advanceTimersByTimeAsync(2999);
    expect(result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toEqual({ reason: 'timeout' });
  });

  it('once speech is heard it waits for the final instead of timing out mid-sentence', async () => {
    const g = new Gather(spec({ timeoutMs: 1000 }), undefined);
    g.speechStarted();
    await vi.advanceTimersByTimeAsync(5000);
    g.transcript(said('I would like to', 'partial'));
    await vi.advanceTimersByTimeAsync(5000);
    g.transcript(said('I would like to pay my bill'));
    await expect(g.result).resolves.toEqual({ reason: 'speechDetected', transcript: 'I would like to pay my bill', confidence: 0.8, language: 'en' });
  });

  it('applies minBargeinWordCount only while the prompt plays: a one-word answer after it is taken', async () => {
    const p = prompt();
    const g = new Gather(spec({ minBargeinWordCount: 2 }), p.control);
    g.promptStarted('Do you want to continue?');
    g.transcript(said('uh', 'partial'));
    await vi.advanceTimersByTimeAsync(10);
    expect(p.calls).toEqual([]);
    g.promptEnded();
    g.transcript(said('yes'));
    await expect(g.result).resolves.toMatchObject({ reason: 'speechDetected', transcript: 'yes' });
  });

  it('barges in on speech at once, and resumes the prompt where it stopped when no words follow (a false interruption)', async () => {
    const p = prompt();
    const g = new Gather(spec(), p.control);
    g.promptStarted('Welcome to the bank. Say balance, payments or agent.');
    g.speechStarted();
    await vi.advanceTimersByTimeAsync(0);
    expect(p.calls).toEqual(['interrupt']);
    // While the caller is still speaking nothing is decided, however long it takes.
    await vi.advanceTimersByTimeAsync(5000);
    expect(p.calls).toEqual(['interrupt']);
    g.speechEnded();
    await vi.advanceTimersByTimeAsync(1999);
    expect(p.calls).toEqual(['interrupt']);
    await vi.advanceTimersByTimeAsync(1);
    expect(p.calls).toEqual(['interrupt', 'resume:1200']);
    // Words after the resumed prompt are an answer as usual.
    g.transcript(said('payments please'));
    await expect(g.result).resolves.toMatchObject({ reason: 'speechDetected', transcript: 'payments please' });
  });

  it('does not take the prompt\'s own echo (speakerphone) as an answer', async () => {
    const p = prompt();
    const g = new Gather(spec({ bargein: false }), p.control);
    g.promptStarted('Say balance, payments or agent.');
    g.transcript(said('say balance payments or agent'));
    g.promptEnded();
    g.transcript(said('agent'));
    await expect(g.result).resolves.toMatchObject({ transcript: 'agent' });
  });

  it('collects digits: finishOnKey ends it (the key not included), numDigits ends it, a digit barges in', async () => {
    const p = prompt();
    const a = new Gather(spec({ input: ['digits'], finishOnKey: '#' }), p.control);
    a.promptStarted('Enter your PIN followed by hash.');
    for (const d of ['1', '2', '3', '4', '#']) a.digit(d);
    await expect(a.result).resolves.toEqual({ reason: 'dtmfDetected', digits: '1234' });
    expect(p.calls[0]).toBe('interrupt');
    const b = new Gather(spec({ input: ['digits'], numDigits: 3 }), undefined);
    for (const d of ['9', '8', '7', '6']) b.digit(d);
    await expect(b.result).resolves.toEqual({ reason: 'dtmfDetected', digits: '987' });
  });

  it('ends digits after the inter-digit timeout, as a timeout when fewer than minDigits came', async () => {
    const a = new Gather(spec({ input: ['digits'], minDigits: 1, interDigitTimeoutMs: 3000 }), undefined);
    a.digit('5');
    await vi.advanceTimersByTimeAsync(3000);
    await expect(a.result).resolves.toEqual({ reason: 'dtmfDetected', digits: '5' });
    const b = new Gather(spec({ input: ['digits'], minDigits: 4, interDigitTimeoutMs: 3000 }), undefined);
    b.digit('5');
    await vi.advanceTimersByTimeAsync(3000);
    await expect(b.result).resolves.toEqual({ reason: 'timeout', digits: '5' });
  });

  it('ignores speech when it takes only digits, and digits when it takes only speech', async () => {
    const g = new Gather(spec({ input: ['digits'], timeoutMs: 1000 }), undefined);
    g.speechStarted();
    g.transcript(said('hello'));
    await vi.advanceTimersByTimeAsync(1000);
    await expect(g.result).resolves.toEqual({ reason: 'timeout' });
    const s = new Gather(spec({ input: ['speech'], timeoutMs: 1000 }), undefined);
    s.digit('1');
    await vi.advanceTimersByTimeAsync(1000);
    await expect(s.result).resolves.toEqual({ reason: 'timeout' });
  });
});
