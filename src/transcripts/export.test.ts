import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallEvent } from './events.js';
import { WhisperlineError } from '../errors.js';
import { exportCall } from './export.js';
import { TranscriptStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'wl-export-'));
let store: TranscriptStore;
const T0 = Date.UTC(2026, 0, 15, 9, 0, 0);

const callId = 'call-x';
const final = (seq: number, party: string, text: string, startMs: number, endMs: number): CallEvent => ({
  kind: 'final', callId, seq, party, text, startMs, endMs, language: 'en', confidence: 0.9,
});
// Recorded out of start order on purpose: the caller's long utterance ends after the agent's reply began.
const events: CallEvent[] = [
  { kind: 'call.started', callId, seq: 1, rule: 'support', labels: ['support'], parties: [{ name: 'caller', label: 'Customer' }, { name: 'callee' }] },
  final(2, 'callee', ' Thanks for calling.', 500, 2_250),
  { kind: 'partial', callId, seq: 3, party: 'caller', text: 'Ich', startMs: 3_000, endMs: 3_500, language: 'de', confidence: 0.4 },
  final(5, 'callee', 'Sure <one> & two.', 4_000, 5_000),
  final(4, 'caller', 'Ich habe eine\nFrage.', 3_000, 3_661_001),
  { kind: 'translation', callId, seq: 6, party: 'caller', finalSeq: 4, text: 'I have a question.', sourceLanguage: 'de', language: 'en', provider: 'whisper', startMs: 3_000, endMs: 3_661_001 },
  { kind: 'dtmf', callId, seq: 7, party: 'caller', digit: '1', durationMs: 100, endLost: false },
  { kind: 'call.ended', callId, seq: 8, reason: 'bye-callee', durationMs: 3_700_000, parties: {} },
];

beforeAll(() => {
  store = TranscriptStore.open(join(dir, 't.db'), { now: () => T0 });
  for (const e of events) store.record(e);
});
afterAll(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('exportCall', () => {
  it('writes plain text: [mm:ss] Label: text, translations marked [en]', () => {
    expect(exportCall(store, callId, 'txt')).toBe(
      [
        '[00:00] callee: Thanks for calling.',
        '[00:03] Customer: Ich habe eine Frage.',
        '[00:03] Customer: [en] I have a question.',
        '[00:04] callee: Sure <one> & two.',
        '',
      ].join('\n'),
    );
  });

  it('writes WebVTT with voice spans and escaped text', () => {
    expect(exportCall(store, callId, 'vtt')).toBe(
      [
        'WEBVTT',
        '',
        '00:00:00.500 --> 00:00:02.250',
        '<v callee>Thanks for calling.',
        '',
        '00:00:03.000 --> 01:01:01.001',
        '<v Customer>Ich habe eine Frage.',
        '',
        '00:00:03.000 --> 01:01:01.001',
        '<v Customer>[en] I have a question.',
        '',
        '00:00:04.000 --> 00:00:05.000',
        '<v callee>Sure &lt;one&gt; &amp; two.',
        '',
      ].join('\n'),
    );
  });

  it('writes SRT with numbered cues and comma milliseconds', () => {
    expect(exportCall(store, callId, 'srt')).toBe(
      [
        '1',
        '00:00:00,500 --> 00:00:02,250',
        'callee: Thanks for calling.',
        '',
        '2',
        '00:00:03,000 --> 01:01:01,001',
        'Customer: Ich habe eine Frage.',
        '',
        '3',
        '00:00:03,000 --> 01:01:01,001',
        'Customer: [en] I have a question.',
        '',
        '4',
        '00:00:04,000 --> 00:00:05,000',
        'callee: Sure <one> & two.',
        '',
      ].join('\n'),
    );
  });

  it('writes JSON: the call and every stored event in seq order', () => {
    const doc = JSON.parse(exportCall(store, callId, 'json')) as { call: Record<string, unknown>; events: CallEvent[] };
    expect(doc.call).toMatchObject({ id: callId, rule: 'support', startedAt: T0, endReason: 'bye-callee', durationMs: 3_700_000 });
    expect(doc.events).toEqual([...events].filter((e) => e.kind !== 'partial').sort((a, b) => a.seq - b.seq));
  });

  it('throws NOT_FOUND for a call the store does not hold', () => {
    let caught: unknown;
    try {
      exportCall(store, 'missing', 'txt');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(WhisperlineError);
    expect((caught as WhisperlineError).code).toBe('NOT_FOUND');
  });

  it('writes an empty document for a call without finals', () => {
    store.record({ kind: 'call.started', callId: 'quiet', seq: 1, rule: 'r', labels: [], parties: [] });
    expect(exportCall(store, 'quiet', 'vtt')).toBe('WEBVTT\n');
    expect(exportCall(store, 'quiet', 'srt')).toBe('');
    expect(exportCall(store, 'quiet', 'txt')).toBe('');
  });
});
