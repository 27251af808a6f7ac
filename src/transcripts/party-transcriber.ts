import type { RecognitionResult, SpeechRecognizer } from '../asr/recognizer.js';
import { WhisperlineError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Utterance } from '../vad/utterance.js';
import type { PipelineEvent, SequenceCounter, TranscriptEvent } from './events.js';
import type { HallucinationFilter } from './filters.js';

export interface PartyTranscriberOptions {
  readonly callId: string;
  readonly party: string;
  /** 'auto' or an ISO 639-1 code. */
  readonly language: string;
  readonly partials: boolean;
  readonly partialIntervalMs: number;
  readonly recognizer: SpeechRecognizer;
  readonly filter: HallucinationFilter;
  readonly seq: SequenceCounter;
  readonly emit: (event: PipelineEvent) => void;
  /** The utterance growing right now (from the segmenter), for partials. */
  readonly openUtterance: () => { startMs: number; samples: Int16Array } | undefined;
  /**
   * Runs after each final is emitted and before the next one is (e.g. its translation), so what
   * it emits follows its final; `drain()` waits for it too. It must not reject.
   */
  readonly afterFinal?: (final: TranscriptEvent, utterance: Utterance) => Promise<void>;
  readonly logger: Logger;
}

export interface PartyTranscriberStats {
  finals: number;
  partials: number;
  /** Finals whose text the hallucination filter removed, by reason. */
  filtered: Record<string, number>;
  /** Finals the engine could not produce (logged at error). */
  failedFinals: number;
  /** Partials not sent (no spare capacity) or dropped by the engine's queue. */
  skippedPartials: number;
}

/** Partials of less audio than this carry too little to be worth a decode. */
const MIN_PARTIAL_MS = 500;
/** The previous final's tail given to Whisper as context for the next one. */
const PROMPT_CHARS = 200;

/**
 * Turns one party's utterances into transcript events: partials of the growing utterance while
 * the engine has spare capacity, and a final per utterance. Recognition of several finals may
 * overlap (a pool of servers); their events are emitted in utterance order.
 */
export class PartyTranscriber {
  readonly stats: PartyTranscriberStats = { finals: 0, partials: 0, filtered: {}, failedFinals: 0, skippedPartials: 0 };
  private emission: Promise<void> = Promise.resolve();
  private partialTimer: NodeJS.Timeout | undefined;
  private partialInFlight: AbortController | undefined;
  /** Counts utterances; a partial belongs to the one open when it was asked for. */
  private utteranceNo = 0;
  private lastText = '';
  private closed = false;
  private pending = 0;

  constructor(private readonly o: PartyTranscriberOptions) {}

  /** Finals asked for and not yet emitted (or failed): what a faster-than-real-time source waits on. */
  get pendingFinals(): number {
    return this.pending;
  }

  /** Speech began: partials of the growing utterance start being scheduled. */
  speechStarted(): void {
    if (!this.o.partials || this.closed || this.partialTimer) return;
    this.partialTimer = setInterval(() => this.maybePartial(), this.o.partialIntervalMs);
    this.partialTimer.unref();
  }

  /** An utterance ended: its final is requested now and emitted in order. */
  utterance(u: Utterance): void {
    this.stopPartials();
    this.utteranceNo++;
    if (this.closed) return;
    const final = this.o.recognizer.recognize({
      samples: u.samples,
      language: this.o.language,
      task: 'transcribe',
      priority: 'final',
      ...(this.lastText ? { prompt: this.lastText } : {}),
    });
    // Keep the promise from being reported unhandled while earlier finals are still emitting.
    final.catch(() => undefined);
    this.pending++;
    this.emission = this.emission.then(() => this.emitFinal(u, final)).finally(() => this.pending--);
  }

  /** Resolves when every final asked for so far has been emitted (or failed), `afterFinal` included. */
  drain(): Promise<void> {
    return this.emission;
  }

  /** No more utterances will come; pending finals still complete (see drain). */
  close(): void {
    this.closed = true;
    this.stopPartials();
  }

  private stopPartials(): void {
    if (this.partialTimer) clearInterval(this.partialTimer);
    this.partialTimer = undefined;
    this.partialInFlight?.abort();
    this.partialInFlight = undefined;
  }

  private maybePartial(): void {
    if (this.partialInFlight) return;
    const open = this.o.openUtterance();
    if (!open || open.samples.length < MIN_PARTIAL_MS * 16) return;
    if (!this.o.recognizer.hasSpareCapacity()) {
      this.stats.skippedPartials++;
      return;
    }
    const abort = new AbortController();
    this.partialInFlight = abort;
    const utteranceNo = this.utteranceNo;
    this.o.recognizer
      .recognize({ samples: open.samples, language: this.o.language, task: 'transcribe', priority: 'partial', signal: abort.signal })
      .then(
        (result) => {
          // A final for this utterance is on its way: a late partial would go backwards.
          if (abort.signal.aborted || utteranceNo !== this.utteranceNo || this.closed) return;
          const verdict = this.o.filter.apply(result, open.samples);
          if (!verdict.keep) return;
          this.stats.partials++;
          this.o.emit(this.transcriptEvent('partial', verdict.text, open.startMs, open.startMs + open.samples.length / 16, result, verdict.segments));
        },
        () => {
          this.stats.skippedPartials++;
        },
      )
      .finally(() => {
        if (this.partialInFlight === abort) this.partialInFlight = undefined;
      });
  }

  private async emitFinal(u: Utterance, pending: Promise<RecognitionResult>): Promise<void> {
    let result: RecognitionResult;
    try {
      result = await pending;
    } catch (err) {
      this.stats.failedFinals++;
      const code = err instanceof WhisperlineError ? err.code : undefined;
      this.o.logger.error({ party: this.o.party, startMs: u.startMs, endMs: u.endMs, code, err }, 'final transcript failed');
      return;
    }
    const verdict = this.o.filter.apply(result, u.samples);
    if (!verdict.keep) {
      this.stats.filtered[verdict.reason] = (this.stats.filtered[verdict.reason] ?? 0) + 1;
      this.o.logger.debug({ party: this.o.party, reason: verdict.reason, text: result.text }, 'final transcript filtered');
      return;
    }
    const final = this.transcriptEvent('final', verdict.text, u.startMs, u.endMs, result, verdict.segments);
    this.stats.finals++;
    this.lastText = verdict.text.slice(-PROMPT_CHARS);
    this.o.emit(final);
    await this.o.afterFinal?.(final, u);
  }

  private transcriptEvent(
    kind: 'partial' | 'final',
    text: string,
    startMs: number,
    endMs: number,
    result: RecognitionResult,
    segments: RecognitionResult['segments'],
  ): TranscriptEvent {
    const words = segments.flatMap((s) => s.words ?? []).map((w) => ({ ...w, startMs: startMs + w.startMs, endMs: startMs + w.endMs }));
    const span = segments.reduce((sum, s) => sum + Math.max(1, s.endMs - s.startMs), 0);
    const confidence = span > 0 ? segments.reduce((sum, s) => sum + s.confidence * Math.max(1, s.endMs - s.startMs), 0) / span : 0;
    return {
      callId: this.o.callId,
      seq: this.o.seq.next(),
      party: this.o.party,
      kind,
      text,
      startMs: Math.round(startMs),
      endMs: Math.round(endMs),
      language: result.language,
      confidence: Number(confidence.toFixed(3)),
      ...(words.length > 0 ? { words } : {}),
      ...(segments.length > 0
        ? { segments: segments.map((s) => ({ text: s.text, startMs: Math.round(startMs + s.startMs), endMs: Math.round(startMs + s.endMs) })) }
        : {}),
    };
  }
}
