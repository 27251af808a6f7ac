/**
 * What the speech pipeline publishes, per call. `seq` grows by one per event of a call and is
 * what replay and resume are keyed on, so every event kind takes a number from the same counter.
 */
export interface TranscriptWord {
  readonly text: string;
  /** On the call clock (ms). */
  readonly startMs: number;
  readonly endMs: number;
  readonly confidence: number;
}

export interface TranscriptEvent {
  readonly callId: string;
  readonly seq: number;
  readonly party: string;
  readonly kind: 'partial' | 'final';
  readonly text: string;
  /** On the call clock (ms). */
  readonly startMs: number;
  readonly endMs: number;
  readonly language: string;
  /** 0-1. */
  readonly confidence: number;
  readonly words?: readonly TranscriptWord[];
  /** Segment boundaries within the utterance, on the call clock. */
  readonly segments?: readonly { readonly text: string; readonly startMs: number; readonly endMs: number }[];
}

/** An English rendering of a final, from whisper's translate task; emitted right after it. */
export interface TranslationEvent {
  readonly callId: string;
  readonly seq: number;
  readonly party: string;
  readonly kind: 'translation';
  /** `seq` of the final this translates. */
  readonly finalSeq: number;
  readonly text: string;
  readonly sourceLanguage: string;
  readonly language: 'en';
  readonly startMs: number;
  readonly endMs: number;
}

/** A keyword alert rule matched a final; emitted right after that final. */
export interface AlertEvent {
  readonly callId: string;
  readonly seq: number;
  readonly kind: 'alert';
  readonly party: string;
  /** The alert rule's name. */
  readonly rule: string;
  readonly severity: 'info' | 'warning' | 'critical';
  /** `seq` of the final that matched. */
  readonly finalSeq: number;
  /** The matched words, as spoken in the final. */
  readonly text: string;
  readonly startMs: number;
  readonly endMs: number;
}

/** The party or call's audio ended and every final of it has been emitted. */
export interface EndedEvent {
  readonly callId: string;
  readonly seq: number;
  readonly kind: 'ended';
  readonly reason: string;
}

export type PipelineEvent = TranscriptEvent | TranslationEvent | AlertEvent | EndedEvent;

/** Hands out a call's sequence numbers: 1, 2, 3, ... */
export class SequenceCounter {
  private last = 0;

  next(): number {
    return ++this.last;
  }

  get current(): number {
    return this.last;
  }
}
