import type { SpeechRecognizer } from '../asr/recognizer.js';
import { FRAME_SAMPLES, type AudioFrame } from '../audio/frame.js';
import type { TranscriptsConfig, VadConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { KeywordAlerts } from '../transcripts/alerts.js';
import { SequenceCounter, type PipelineEvent } from '../transcripts/events.js';
import { HallucinationFilter } from '../transcripts/filters.js';
import { PartyTranscriber, type PartyTranscriberStats } from '../transcripts/party-transcriber.js';
import type { BatchedVad, VadStream } from '../vad/batched-vad.js';
import { SpeechSegmenter } from '../vad/segmenter.js';

export interface CallPipelineDeps {
  readonly callId: string;
  /** Shared by every call: one inference per tick covers all live parties. */
  readonly vad: BatchedVad;
  /** Shared by every call. */
  readonly recognizer: SpeechRecognizer;
  readonly vadConfig: VadConfig;
  readonly transcripts: TranscriptsConfig;
  readonly logger: Logger;
  readonly onEvent: (event: PipelineEvent) => void;
  /** Keyword alert rules checked on every final; an `alert` follows the final it matched. */
  readonly alerts?: KeywordAlerts;
}

/** Per-party overrides of the transcript settings (from a dialplan rule, an ingest request...). */
export interface PartyOptions {
  readonly language?: string;
  readonly translate?: boolean;
  readonly partials?: boolean;
  /** The party's label (agent, customer...), which alert rules may select. */
  readonly label?: string;
}

/** Where one party's audio goes in. */
export interface PartyInput {
  readonly party: string;
  /** One 20 ms frame; frames come in `startMs` order. */
  push(frame: AudioFrame): void;
  /**
   * The party's audio ended: the open utterance is cut, and this resolves once its final (and
   * every earlier one) has been emitted. Idempotent.
   */
  end(): Promise<void>;
  readonly stats: PartyTranscriberStats;
  /** Finals requested and not yet emitted. */
  readonly pendingFinals: number;
}

/** Enough silence to complete the VAD's last 32 ms window when a stream ends. */
const TAIL_FRAMES = 2;

/**
 * The speech path of one call: each party's frames → batched VAD → segmenter → Whisper →
 * transcript events with one `seq` counter for the call. The SIP side, WebSocket ingest and the
 * file transcriber all feed it the same way. `end()` flushes every party and emits `ended` only
 * after the last final: no words are lost at hang-up.
 */
export class CallPipeline {
  readonly seq = new SequenceCounter();
  private readonly parties = new Map<string, PartyInput>();
  private readonly filter: HallucinationFilter;
  private ending: Promise<void> | undefined;

  constructor(private readonly deps: CallPipelineDeps) {
    this.filter = new HallucinationFilter(deps.transcripts);
  }

  addParty(party: string, options: PartyOptions = {}): PartyInput {
    if (this.ending) throw new Error(`call ${this.deps.callId} has ended`);
    if (this.parties.has(party)) throw new Error(`party ${party} already exists in call ${this.deps.callId}`);
    const { deps } = this;
    const t = deps.transcripts;
    // Holder for the segmenter: the transcriber asks it for the open utterance.
    const ref: { segmenter?: SpeechSegmenter } = {};
    const transcriber = new PartyTranscriber({
      callId: deps.callId,
      party,
      language: options.language ?? t.language,
      partials: options.partials ?? t.partials,
      partialIntervalMs: t.partialIntervalMs,
      translate: options.translate ?? t.translate,
      recognizer: deps.recognizer,
      filter: this.filter,
      seq: this.seq,
      emit: (event) => this.emit(event, options.label),
      openUtterance: () => ref.segmenter?.openUtterance(),
      logger: deps.logger,
    });
    const segmenter = new SpeechSegmenter(
      party,
      deps.vadConfig,
      (u) => transcriber.utterance(u),
      () => transcriber.speechStarted(),
    );
    ref.segmenter = segmenter;
    const stream: VadStream = deps.vad.open(party, (w) => segmenter.push(w));
    let lastStartMs: number | undefined;
    let ended: Promise<void> | undefined;
    const input: PartyInput = {
      party,
      stats: transcriber.stats,
      get pendingFinals() {
        return transcriber.pendingFinals;
      },
      push: (frame) => {
        if (ended) return;
        lastStartMs = frame.startMs;
        stream.push(frame);
      },
      end: () =>
        (ended ??= (async () => {
          if (lastStartMs !== undefined) {
            for (let i = 1; i <= TAIL_FRAMES; i++) {
              stream.push({ party, startMs: lastStartMs + 20 * i, samples: new Int16Array(FRAME_SAMPLES) });
            }
          }
          // Score what is buffered now rather than at the next tick, then cut the open utterance.
          await deps.vad.drain();
          stream.close();
          segmenter.flush();
          transcriber.close();
          await transcriber.drain();
        })()),
    };
    this.parties.set(party, input);
    return input;
  }

  private emit(event: PipelineEvent, label: string | undefined): void {
    this.deps.onEvent(event);
    if (event.kind !== 'final' || !this.deps.alerts) return;
    for (const m of this.deps.alerts.match(event.text, event.party, label)) {
      this.deps.onEvent({
        kind: 'alert',
        callId: event.callId,
        seq: this.seq.next(),
        party: event.party,
        rule: m.rule,
        severity: m.severity,
        finalSeq: event.seq,
        text: m.text,
        startMs: event.startMs,
        endMs: event.endMs,
      });
    }
  }

  party(name: string): PartyInput | undefined {
    return this.parties.get(name);
  }

  /** Ends every party, waits for their last finals, then emits `ended`. Idempotent. */
  end(reason: string): Promise<void> {
    return (this.ending ??= (async () => {
      await Promise.all([...this.parties.values()].map((p) => p.end()));
      this.deps.onEvent({ callId: this.deps.callId, seq: this.seq.next(), kind: 'ended', reason });
    })());
  }
}
