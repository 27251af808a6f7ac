/**
 * The speech path end to end with real components: espeak-ng speech → Silero VAD (batched) →
 * segmenter → whisper-server (real whisper.cpp on the generated tiny random-weight model) →
 * transcript events. The tiny model's words are nonsense: these tests assert shape, parties,
 * times and order, never words.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WhisperEngine } from '../../src/asr/whisper/engine.js';
import type { Config } from '../../src/config/schema.js';
import { CallPipeline } from '../../src/pipeline/call-pipeline.js';
import { KeywordAlerts } from '../../src/transcripts/alerts.js';
import { SequenceCounter, type PipelineEvent, type TranscriptEvent } from '../../src/transcripts/events.js';
import { BatchedVad } from '../../src/vad/batched-vad.js';
import { speechFixture, type SpeechFixture } from '../support/speech.js';
import { feedRealtime, toFrames } from '../support/realtime.js';
import { randomModelConfig, startTinyEngine } from '../support/whisper.js';

const log = pino({ level: 'silent' });
let config: Config;
let vad: BatchedVad;
let engine: WhisperEngine;
let speech: SpeechFixture;

beforeAll(async () => {
  config = randomModelConfig();
  config.transcripts.partialIntervalMs = 400;
  vad = await BatchedVad.create(config.vad);
  engine = await startTinyEngine(config, log);
  speech = await speechFixture({
    sentences: ['Hello, I would like to check my account balance please.', 'My card number ends in four two seven.', 'Thank you, that is all for today.'],
    gapsMs: [1200, 1200],
    sampleRate: 8000,
    leadMs: 500,
    tailMs: 1200,
  });
}, 300_000);

afterAll(async () => {
  await engine?.close();
  await vad?.close();
});



const transcripts = (events: PipelineEvent[]): TranscriptEvent[] => events.filter((e): e is TranscriptEvent => e.kind === 'partial' || e.kind === 'final');

describe('speech pipeline with real VAD and whisper.cpp', () => {
  it('turns each sentence of a party into one final with its times, partials first, nothing for a silent party', async () => {
    const events: PipelineEvent[] = [];
    // A pattern that matches every text (the tiny model's words are random): one alert per final.
    const alerts = new KeywordAlerts([{ name: 'every-final', pattern: '^', party: 'customer', severity: 'info' }]);
    const pipeline = new CallPipeline({ callId: 'call-rt', vad, recognizer: engine, vadConfig: config.vad, transcripts: config.transcripts, logger: log, alerts, seq: new SequenceCounter(), emit: (e) => events.push(e) });
    const caller = pipeline.addParty('caller', { label: 'customer' });
    const callee = pipeline.addParty('callee');
    vad.start();
    try {
      await feedRealtime([
        [caller, toFrames('caller', speech.samples16k)],
        [callee, toFrames('callee', new Int16Array(speech.samples16k.length))],
      ]);
      await pipeline.end('hangup');
    } finally {
      vad.stop();
    }
    const finals = transcripts(events).filter((e) => e.kind === 'final');
    expect(finals.map((f) => f.party)).toEqual(['caller', 'caller', 'caller']);
    finals.forEach((f, i) => {
      const truth = speech.sentences[i]!;
      // The utterance covers the sentence (pre-roll before, a short tail after), within 400 ms.
      expect(f.startMs).toBeLessThanOrEqual(truth.startMs);
      expect(truth.startMs - f.startMs).toBeLessThan(config.vad.preRollMs + 400);
      expect(Math.abs(f.endMs - truth.endMs)).toBeLessThan(400);
      expect(f).toMatchObject({ callId: 'call-rt', language: expect.any(String) });
      expect(f.confidence).toBeGreaterThanOrEqual(0);
    });
    // Each final is followed at once by its alert (the rule selects the caller by its label).
    const alertEvents = events.filter((e) => e.kind === 'alert');
    expect(alertEvents).toHaveLength(finals.length);
    for (const f of finals) {
      expect(events.find((e) => e.seq === f.seq + 1)).toMatchObject({ kind: 'alert', rule: 'every-final', severity: 'info', party: 'caller', finalSeq: f.seq, startMs: f.startMs, endMs: f.endMs });
    }
    // One counter for the call: strictly increasing, no gaps, `ended` last.
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events[events.length - 1]).toMatchObject({ kind: 'ended', reason: 'hangup' });
    // Partials of an utterance come before its final and lie within it.
    const partials = transcripts(events).filter((e) => e.kind === 'partial');
    expect(partials.length).toBeGreaterThan(0);
    for (const p of partials) {
      const final = finals.find((f) => f.startMs === p.startMs)!;
      expect(final).toBeDefined();
      expect(p.seq).toBeLessThan(final.seq);
      // A partial covers the audio so far, which may run into the hang-over after the last word.
      expect(p.endMs).toBeLessThanOrEqual(final.endMs + config.vad.hangoverMs);
    }
  }, 60_000);

  it("follows each final of a party that asks for it with its translation (whisper's translate task), before the next final", async () => {
    const events: PipelineEvent[] = [];
    const pipeline = new CallPipeline({
      callId: 'call-translate',
      vad,
      recognizer: engine,
      vadConfig: config.vad,
      // A language other than English, so that the translate task runs.
      transcripts: { ...config.transcripts, partials: false, language: 'de' },
      logger: log,
      seq: new SequenceCounter(),
      emit: (e) => events.push(e),
    });
    const caller = pipeline.addParty('caller', { translate: true });
    const callee = pipeline.addParty('callee');
    for (const [i, f] of toFrames('caller', speech.samples16k).entries()) {
      caller.push(f);
      callee.push({ ...f, party: 'callee' });
      if (i % 25 === 24) await vad.drain();
    }
    await pipeline.end('bye');
    const finals = transcripts(events).filter((e) => e.kind === 'final');
    const translations = events.filter((e) => e.kind === 'translation');
    // Only the caller asked; each of its finals is followed at once by its translation.
    expect(finals.filter((f) => f.party === 'caller').length).toBeGreaterThan(0);
    for (const f of finals.filter((x) => x.party === 'caller')) {
      const t = translations.find((x) => x.finalSeq === f.seq);
      if (!t) continue; // the tiny model's decode may be empty: no translation event then
      expect(t).toMatchObject({ party: 'caller', sourceLanguage: 'de', language: 'en', provider: 'whisper', startMs: f.startMs, endMs: f.endMs });
      const next = finals.find((x) => x.party === 'caller' && x.seq > f.seq);
      if (next) expect(t.seq).toBeLessThan(next.seq);
    }
    expect(translations.length).toBeGreaterThan(0);
    expect(translations.every((t) => t.party === 'caller')).toBe(true);
    expect(pipeline.party('caller')!.stats).toMatchObject({ translations: translations.length, failedTranslations: 0 });
    expect(events.at(-1)).toMatchObject({ kind: 'ended' });
  }, 60_000);

  it('flushes the open utterance at hang-up: its final comes before `ended`', async () => {
    const events: PipelineEvent[] = [];
    const pipeline = new CallPipeline({
      callId: 'call-hangup',
      vad,
      recognizer: engine,
      vadConfig: config.vad,
      transcripts: { ...config.transcripts, partials: false },
      logger: log,
      seq: new SequenceCounter(),
      emit: (e) => events.push(e),
    });
    const caller = pipeline.addParty('caller');
    // Hang up in the middle of the second sentence.
    const cut = (speech.sentences[1]!.startMs + speech.sentences[1]!.endMs) / 2;
    for (const [i, f] of toFrames('caller', speech.samples16k, cut).entries()) {
      caller.push(f);
      if (i % 25 === 24) await vad.drain();
    }
    await pipeline.end('bye');
    expect(events.map((e) => e.kind)).toEqual(['final', 'final', 'ended']);
    const last = events[1] as TranscriptEvent;
    expect(last.startMs).toBeLessThan(speech.sentences[1]!.startMs);
    expect(last.endMs).toBeGreaterThan(cut - 100);
    expect(last.endMs).toBeLessThanOrEqual(cut + 100);
  }, 60_000);
});
