import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import {
  SequenceCounter,
  type CallEndReason,
  type CallEvent,
  type CallFailure,
  type CallParty,
  type CallUpdatedEvent,
  type PartyMediaStats,
  type PipelineEvent,
  type SpeechEvent,
  type AppEvent,
} from '../transcripts/events.js';

/** `Omit` over each member of a union (the plain one would merge them). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
import type { CallPipeline, PartyInput, PartyOptions } from './call-pipeline.js';

/** How a call ended, for its `call.ended`. */
export interface TranscriptEnding {
  readonly reason: CallEndReason;
  /** The SIP final status an unanswered call got (see `CallEndedEvent.sipStatus`). */
  readonly sipStatus?: number;
  readonly error?: CallFailure;
  /** Per-party media counters. */
  readonly parties?: Readonly<Record<string, PartyMediaStats>>;
  /** Time the call was up; default: since `start()` (0 when it never started). */
  readonly durationMs?: number;
}

export interface CallTranscriptDeps {
  readonly callId: string;
  /** The dialplan rule (or `ingest:<platform>`, `file`) the call's `call.started` names. */
  readonly rule: string;
  readonly labels: readonly string[];
  /** Builds the call's speech pipeline, numbering its events from the transcript's counter. */
  readonly pipeline: (seq: SequenceCounter, emit: (event: PipelineEvent) => void) => CallPipeline;
  /** Every event of the call, in `seq` order: the store, then the feeds. */
  readonly publish: (event: CallEvent) => void;
  readonly logger: Logger;
}

/**
 * The one owner of a call's transcript, whatever the call is (a SIP call, an ingest connection, a
 * file): its sequence numbers, its speech pipeline, and the call events around the pipeline's,
 * from `call.started` to `call.ended`.
 *
 * Contract:
 * - every event gets the next `seq` of the call and is published in that order;
 * - `call.started` comes first, once: at `start()`, or, for a call that ended before it started
 *   (a SIP call whose set-up failed or was cancelled), from `end()` just before `call.ended`, so
 *   that every call is stored, listed and shown, failed ones included;
 * - `end()` cuts the open utterances and publishes their finals, then `ended`, then `call.ended`
 *   last. It is idempotent (the first ending wins) and never rejects;
 * - a publisher that throws (a failing listener) is logged; the call's events go on.
 */
export class CallTranscript {
  readonly callId: string;
  private readonly seq = new SequenceCounter();
  private readonly pipeline: CallPipeline;
  private startedAtPerf: number | undefined;
  private parties: readonly CallParty[] = [];
  /** party → the participant the recording metadata names now, where it is not the party's own name. */
  private readonly speakers = new Map<string, string>();
  private ending: Promise<void> | undefined;

  constructor(private readonly deps: CallTranscriptDeps) {
    this.callId = deps.callId;
    this.pipeline = deps.pipeline(this.seq, (event) => this.publish(event));
  }

  get started(): boolean {
    return this.startedAtPerf !== undefined;
  }

  get ended(): boolean {
    return this.ending !== undefined;
  }

  /** The last sequence number handed out. */
  get lastSeq(): number {
    return this.seq.current;
  }

  /**
   * The call is up: its clock starts and `call.started` is published with its parties. Idempotent;
   * ignored once the call is ending.
   */
  start(parties: readonly CallParty[], extra: { readonly warning?: string } = {}): void {
    if (this.startedAtPerf !== undefined || this.ending) return;
    this.startedAtPerf = performance.now();
    this.parties = parties;
    this.publishStarted(extra.warning);
  }

  /** A party's speech input (its frames on the call clock). */
  addParty(name: string, options: PartyOptions = {}): PartyInput {
    return this.pipeline.addParty(name, options);
  }

  party(name: string): PartyInput | undefined {
    return this.pipeline.party(name);
  }

  /** A key a party pressed. */
  dtmf(party: string, key: { readonly digit: string; readonly durationMs: number; readonly endLost: boolean }): void {
    if (this.ending) return;
    this.publish({ kind: 'dtmf', callId: this.callId, seq: this.seq.next(), party, digit: key.digit, durationMs: key.durationMs, endLost: key.endLost });
  }

  /** The call's media was renegotiated (hold, resume, new recording metadata). */
  updated(update: Omit<CallUpdatedEvent, 'kind' | 'callId' | 'seq'>): void {
    if (this.ending) return;
    for (const p of update.participants ?? []) {
      if (p.name === undefined || p.name === p.party) this.speakers.delete(p.party);
      else this.speakers.set(p.party, p.name);
    }
    this.publish({ kind: 'call.updated', callId: this.callId, seq: this.seq.next(), ...update });
  }

  /** Ends the call's transcript (see the contract). Idempotent; never rejects. */
  /** What the call's voice application did (verbs, hooks, gathers, errors), in the call's `seq` order. */
  app(event: Omit<AppEvent, 'kind' | 'callId' | 'seq'>): void {
    if (!this.started || this.ended) return;
    this.publish({ ...event, kind: 'app', callId: this.callId, seq: this.seq.next() });
  }

  /** What the gateway said into the call (prompts, interpretation), in the call's `seq` order. */
  speech(event: DistributiveOmit<SpeechEvent, 'callId' | 'seq'>): void {
    if (!this.started || this.ended) return;
    this.publish({ ...event, callId: this.callId, seq: this.seq.next() } as SpeechEvent);
  }

  end(ending: TranscriptEnding): Promise<void> {
    return (this.ending ??= (async () => {
      if (this.startedAtPerf === undefined) this.publishStarted(undefined);
      try {
        await this.pipeline.end(ending.reason);
      } catch (err) {
        this.deps.logger.error({ err }, 'speech pipeline end failed');
      }
      const durationMs = ending.durationMs ?? (this.startedAtPerf === undefined ? 0 : Math.round(performance.now() - this.startedAtPerf));
      this.publish({
        kind: 'call.ended',
        callId: this.callId,
        seq: this.seq.next(),
        reason: ending.reason,
        durationMs,
        ...(ending.sipStatus !== undefined ? { sipStatus: ending.sipStatus } : {}),
        ...(ending.error ? { error: ending.error } : {}),
        parties: ending.parties ?? {},
      });
    })());
  }

  private publishStarted(warning: string | undefined): void {
    this.publish({
      kind: 'call.started',
      callId: this.callId,
      seq: this.seq.next(),
      rule: this.deps.rule,
      labels: this.deps.labels,
      parties: this.parties,
      ...(warning !== undefined ? { warning } : {}),
    });
  }

  /** Speech of a party whose recording metadata names another speaker carries that name. */
  private withSpeaker(event: CallEvent): CallEvent {
    if (event.kind !== 'partial' && event.kind !== 'final' && event.kind !== 'translation') return event;
    const speaker = this.speakers.get(event.party);
    return speaker === undefined ? event : { ...event, speaker };
  }

  private publish(event: CallEvent): void {
    try {
      this.deps.publish(this.withSpeaker(event));
    } catch (err) {
      this.deps.logger.error({ err, kind: event.kind, seq: event.seq }, 'call event listener failed');
    }
  }
}
