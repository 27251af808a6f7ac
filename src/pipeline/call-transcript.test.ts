import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { CallEvent, PipelineEvent, SequenceCounter } from '../transcripts/events.js';
import type { CallPipeline } from './call-pipeline.js';
import { CallTranscript } from './call-transcript.js';

/** A pipeline stand-in: `end()` publishes one final (numbered from the transcript's counter) then `ended`. */
function transcript(publish: (e: CallEvent) => void = () => undefined): { t: CallTranscript; ends: string[] } {
  const ends: string[] = [];
  const t = new CallTranscript({
    callId: 'c1',
    rule: 'line',
    labels: ['queue-a'],
    publish,
    logger: pino({ level: 'silent' }),
    pipeline: (seq: SequenceCounter, emit: (e: PipelineEvent) => void) =>
      ({
        addParty: () => ({}),
        party: () => undefined,
        end: async (reason: string) => {
          ends.push(reason);
          await new Promise((r) => setTimeout(r, 5));
          emit({ kind: 'final', callId: 'c1', seq: seq.next(), party: 'caller', text: 'last words', startMs: 0, endMs: 900, language: 'en', confidence: 1 });
          emit({ kind: 'ended', callId: 'c1', seq: seq.next(), reason });
        },
      }) as unknown as CallPipeline,
  });
  return { t, ends };
}

describe('CallTranscript', () => {
  it('numbers every event of the call from one counter: call.started first, call.ended last', async () => {
    const events: CallEvent[] = [];
    const { t } = transcript((e) => events.push(e));
    t.start([{ name: 'caller', label: 'customer' }]);
    t.start([{ name: 'ignored' }]);
    t.dtmf('caller', { digit: '5', durationMs: 100, endLost: false });
    t.updated({ by: 'caller', hold: true });
    await t.end({ reason: 'bye-caller', parties: {} });
    expect(events.map((e) => [e.seq, e.kind])).toEqual([
      [1, 'call.started'],
      [2, 'dtmf'],
      [3, 'call.updated'],
      [4, 'final'],
      [5, 'ended'],
      [6, 'call.ended'],
    ]);
    expect(events[0]).toMatchObject({ rule: 'line', labels: ['queue-a'], parties: [{ name: 'caller', label: 'customer' }] });
    expect(events.at(-1)).toMatchObject({ reason: 'bye-caller' });
    expect(t.lastSeq).toBe(6);
  });

  it('a call that ended before it started is still announced, then ended with its status and error; end() is idempotent', async () => {
    const events: CallEvent[] = [];
    const { t, ends } = transcript((e) => events.push(e));
    const first = t.end({ reason: 'failed', sipStatus: 486, error: { code: 'CALLEE_REJECTED', message: 'the callee answered 486 Busy Here' } });
    const second = t.end({ reason: 'shutdown' });
    await Promise.all([first, second]);
    expect(ends).toEqual(['failed']);
    expect(events.map((e) => e.kind)).toEqual(['call.started', 'final', 'ended', 'call.ended']);
    expect(events[0]).toMatchObject({ parties: [] });
    expect(events.at(-1)).toEqual({ kind: 'call.ended', callId: 'c1', seq: 4, reason: 'failed', durationMs: 0, sipStatus: 486, error: { code: 'CALLEE_REJECTED', message: 'the callee answered 486 Busy Here' }, parties: {} });
    // Nothing is published after the end.
    t.start([{ name: 'late' }]);
    t.dtmf('caller', { digit: '1', durationMs: 80, endLost: false });
    expect(events).toHaveLength(4);
  });

  it('a listener that throws does not stop the call: every event still goes out', async () => {
    const kinds: string[] = [];
    const { t } = transcript((e) => {
      kinds.push(e.kind);
      if (e.kind === 'call.started' || e.kind === 'final') throw new Error('a broken listener');
    });
    t.start([{ name: 'caller' }]);
    await t.end({ reason: 'hangup' });
    expect(kinds).toEqual(['call.started', 'final', 'ended', 'call.ended']);
  });

  it("names the speaker of a party's speech after recording metadata named them otherwise, and stops when it names the party again", async () => {
    const events: CallEvent[] = [];
    let emit!: (e: PipelineEvent) => void;
    let seq!: SequenceCounter;
    const t = new CallTranscript({
      callId: 'c1',
      rule: 'recorder',
      labels: [],
      publish: (e) => events.push(e),
      logger: pino({ level: 'silent' }),
      pipeline: (s: SequenceCounter, e: (ev: PipelineEvent) => void) => {
        seq = s;
        emit = e;
        return { addParty: () => ({}), party: () => undefined, end: async () => undefined } as unknown as CallPipeline;
      },
    });
    const final = (party: string): void => emit({ kind: 'final', callId: 'c1', seq: seq.next(), party, text: 'x', startMs: 0, endMs: 1, language: 'en', confidence: 1 });
    t.start([{ name: 'caller' }, { name: 'callee' }]);
    final('caller');
    t.updated({ by: 'caller', hold: false, participants: [{ party: 'caller', name: 'Alice', aor: 'sip:alice@example.com' }, { party: 'callee' }] });
    final('caller');
    final('callee');
    emit({ kind: 'translation', callId: 'c1', seq: seq.next(), party: 'caller', finalSeq: 4, text: 'y', sourceLanguage: 'de', language: 'en', provider: 'whisper', startMs: 0, endMs: 1 });
    t.updated({ by: 'caller', hold: false, participants: [{ party: 'caller', name: 'caller' }] });
    final('caller');
    const speech = events.filter((e) => e.kind === 'final' || e.kind === 'translation').map((e) => [e.kind, 'party' in e ? e.party : '', 'speaker' in e ? e.speaker : undefined]);
    expect(speech).toEqual([
      ['final', 'caller', undefined],
      ['final', 'caller', 'Alice'],
      ['final', 'callee', undefined],
      ['translation', 'caller', 'Alice'],
      ['final', 'caller', undefined],
    ]);
  });
});
