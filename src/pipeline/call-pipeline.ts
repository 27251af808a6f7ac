import type { SpeechRecognizer } from '../asr/recognizer.js';
import { FRAME_SAMPLES, type AudioFrame } from '../audio/frame.js';
import type { TranscriptsConfig, VadConfig } from '../config/schema.js';
import { WhisperlineError } from '../errors.js';
import type { Logger } from '../log.js';
import type { KeywordAlerts } from '../transcripts/alerts.js';
import type { PipelineEvent, SequenceCounter, TranscriptEvent, TranslationEvent } from '../transcripts/events.js';
import { HallucinationFilter } from '../transcripts/filters.js';
import { PartyTranscriber, type PartyTranscriberStats } from '../transcripts/party-transcriber.js';
import type { Translator } from '../translation/translator.js';
import { WhisperTranslator } from '../translation/whisper.js';
import type { BatchedVad, VadStream } from '../vad/batched-vad.js';
import type { Utterance } from '../vad/utterance.js';
import { SpeechSegmenter } from '../vad/segmenter.js';

export interface CallPipelineDeps {
  readonly callId: string;
  /** Shared by every call: one inference per tick covers all live parties. */
  readonly vad: BatchedVad;
  /** Shared by every call of the same model. */
  readonly recognizer: SpeechRecognizer;
  readonly vadConfig: VadConfig;
  readonly transcripts: TranscriptsConfig;
  readonly logger: Logger;
  /** The call's sequence numbers (its `CallTranscript`'s): every event takes the next one. */
  readonly seq: SequenceCounter;
  readonly emit: (event: PipelineEvent) => void;
  /** Keyword alert rules checked on every final; an `alert` follows the final it matched. */
  readonly alerts?: KeywordAlerts;
  /** Translates finals of parties that ask for it; default: whisper's translate task on `recognizer`. */
  readonly translator?: Translator;
}

/** Per-party overrides of the transcript settings (from a dialplan rule, an ingest request...). */
export interface PartyOptions {
  readonly language?: string;
  /** Translate this party's finals (into `translateTo`). */
  readonly translate?: boolean;
  /** The language translations are into (ISO 639-1); default English (what whisper's translate task gives). */
  readonly translateTo?: string;
  /** Sees each of this party's translations once it is published (interpretation speaks them). */
  readonly onTranslation?: (event: TranslationEvent) => void;
  /** Sees each of this party's partials and finals once published (a voice application's speech input). */
  readonly onTranscript?: (event: TranscriptEvent) => void;
  /** The VAD heard this party start speaking (barge-in). */
  readonly onSpeechStarted?: () => void;
  /** The party's utterance ended (the VAD's hang-over passed); its final, if any, follows. */
  readonly onSpeechEnded?: () => void;
  readonly partials?: boolean;
  /** The party's label (agent, customer...), which alert rules may select. */
  readonly label?: string;
}

export interface PartyStats extends PartyTranscriberStats {
  readonly translations: number;
  /** Translations that failed (logged). */
  readonly failedTranslations: number;
}

/** Where one party's audio goes in. */
export interface PartyInput {
  readonly party: string;
  /** One 20 ms frame; frames come in `startMs` order. */
  push(frame: AudioFrame): void;
  /**
   * The party's audio ended: the open utterance is cut, and this resolves once its final (and
   * every earlier one, with its translation) has been emitted. Idempotent.
   */
  end(): Promise<void>;
  /** A snapshot of the party's counters. */
  readonly stats: PartyStats;
  /** Finals requested and not yet emitted. */
  readonly pendingFinals: number;
}

/** Enough silence to complete the VAD's last 32 ms window when a stream ends. */
const TAIL_FRAMES = 2;
/** Earlier finals of a party handed to a translator that reads context. */
const CONTEXT_FINALS = 3;
/** What translations are into (whisper's translate task gives English). */
const TRANSLATION_TARGET = 'en';

/**
 * The speech path of one call: each party's frames → batched VAD → segmenter → recognizer →
 * transcript events, and each final's translation after it when the party asks for one. The
 * call's `CallTranscript` owns the sequence numbers and the call's own events around these.
 * `end()` flushes every party and emits `ended` only after the last final: no words are lost at
 * hang-up.
 */
export class CallPipeline {
  private readonly parties = new Map<string, PartyInput>();
  private readonly filter: HallucinationFilter;
  private readonly translator: Translator;
  private ending: Promise<void> | undefined;

  constructor(private readonly deps: CallPipelineDeps) {
    this.filter = new HallucinationFilter(deps.transcripts);
    this.translator =
      deps.translator ??
      new WhisperTranslator(deps.recognizer, {
        accept: (result, samples) => {
          const verdict = this.filter.apply(result, samples);
          return verdict.keep ? verdict.text : undefined;
        },
      });
  }

  addParty(party: string, options: PartyOptions = {}): PartyInput {
    if (this.ending) throw new WhisperlineError('CALL_ENDED', `call ${this.deps.callId} has ended: no party can be added`);
    if (this.parties.has(party)) throw new WhisperlineError('CALL_STATE', `party ${party} already exists in call ${this.deps.callId}`);
    const { deps } = this;
    const t = deps.transcripts;
    const translate = options.translate ?? t.translate;
    const counts = { translations: 0, failedTranslations: 0 };
    const recent: string[] = [];
    // Holder for the segmenter: the transcriber asks it for the open utterance.
    const ref: { segmenter?: SpeechSegmenter } = {};
    const transcriber = new PartyTranscriber({
      callId: deps.callId,
      party,
      language: options.language ?? t.language,
      partials: options.partials ?? t.partials,
      partialIntervalMs: t.partialIntervalMs,
      recognizer: deps.recognizer,
      filter: this.filter,
      seq: deps.seq,
      emit: (event) => {
        this.emit(event, options.label);
        if (event.kind === 'partial' || event.kind === 'final') options.onTranscript?.(event);
      },
      openUtterance: () => ref.segmenter?.openUtterance(),
      ...(translate ? { afterFinal: (final: TranscriptEvent, u: Utterance) => this.translate(final, u, recent, counts, options) } : {}),
      logger: deps.logger,
    });
    const segmenter = new SpeechSegmenter(
      party,
      deps.vadConfig,
      (u) => {
        transcriber.utterance(u);
        options.onSpeechEnded?.();
      },
      () => {
        transcriber.speechStarted();
        options.onSpeechStarted?.();
      },
    );
    ref.segmenter = segmenter;
    const stream: VadStream = deps.vad.open(party, (w) => segmenter.push(w));
    let lastStartMs: number | undefined;
    let ended: Promise<void> | undefined;
    const input: PartyInput = {
      party,
      get stats(): PartyStats {
        return { ...transcriber.stats, ...counts };
      },
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

  party(name: string): PartyInput | undefined {
    return this.parties.get(name);
  }

  /** Ends every party, waits for their last finals, then emits `ended`. Idempotent. */
  end(reason: string): Promise<void> {
    return (this.ending ??= (async () => {
      await Promise.all([...this.parties.values()].map((p) => p.end()));
      this.deps.emit({ callId: this.deps.callId, seq: this.deps.seq.next(), kind: 'ended', reason });
    })());
  }

  private emit(event: PipelineEvent, label: string | undefined): void {
    this.deps.emit(event);
    if (event.kind !== 'final' || !this.deps.alerts) return;
    for (const m of this.deps.alerts.match(event.text, event.party, label)) {
      this.deps.emit({
        kind: 'alert',
        callId: event.callId,
        seq: this.deps.seq.next(),
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

  /** A final's translation, emitted right after it (the transcriber waits for this). Never rejects. */
  private async translate(final: TranscriptEvent, u: Utterance, recent: string[], counts: { translations: number; failedTranslations: number }, options: PartyOptions): Promise<void> {
    const context = recent.slice();
    recent.push(final.text);
    if (recent.length > CONTEXT_FINALS) recent.shift();
    try {
      const result = await this.translator.translate({
        text: final.text,
        sourceLanguage: final.language,
        targetLanguage: options.translateTo ?? TRANSLATION_TARGET,
        ...(this.translator.capabilities.needsAudio ? { samples: u.samples } : {}),
        ...(this.translator.capabilities.usesContext ? { context } : {}),
      });
      if (result.text === '') return;
      counts.translations++;
      const event: TranslationEvent = {
        callId: final.callId,
        seq: this.deps.seq.next(),
        party: final.party,
        kind: 'translation',
        finalSeq: final.seq,
        text: result.text,
        sourceLanguage: result.sourceLanguage,
        language: result.targetLanguage,
        provider: result.provider,
        startMs: final.startMs,
        endMs: final.endMs,
      };
      this.deps.emit(event);
      options.onTranslation?.(event);
    } catch (err) {
      counts.failedTranslations++;
      const code = err instanceof WhisperlineError ? err.code : undefined;
      this.deps.logger.error({ party: final.party, finalSeq: final.seq, code, err }, 'translation failed');
    }
  }
}
