import type { SpeechRecognizer } from '../asr/recognizer.js';
import type { TranscriptsConfig, VadConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { KeywordAlerts } from '../transcripts/alerts.js';
import type { CallEvent } from '../transcripts/events.js';
import type { Translator } from '../translation/translator.js';
import type { BatchedVad } from '../vad/batched-vad.js';
import { CallPipeline } from './call-pipeline.js';
import { CallTranscript } from './call-transcript.js';

/** A call's transcript settings over the configuration's (from its dialplan rule, an ingest request, a CLI flag). */
export interface TranscriptOverrides {
  readonly language?: string;
  readonly partials?: boolean;
  readonly translate?: boolean;
  /** Whisper model (catalogue name or path) for this call; default: the configured one. */
  readonly model?: string;
  /** Translation provider (a `translation.providers` name) for this call; default: the configured chain. */
  readonly translator?: string;
}

export interface OpenCallSpec {
  readonly callId: string;
  /** The rule the call was handled by (`ingest:<platform>`, `file` for the others). */
  readonly rule: string;
  readonly labels: readonly string[];
  readonly overrides?: TranscriptOverrides;
  /** Sees each event of this call after it was published (an ingest platform's own replies). */
  readonly onEvent?: (event: CallEvent) => void;
  /** The call's logger (with its callId). */
  readonly logger: Logger;
}

/** What a call asks of the speech side: a transcript of its own. */
export interface TranscriptOpener {
  openCall(spec: OpenCallSpec): CallTranscript;
}

export interface SpeechRuntimeDeps {
  /** Shared by every call: one inference per tick covers all live parties. */
  readonly vad: BatchedVad;
  /** The recognizer for a model (the configured one when undefined); engines are shared. */
  readonly recognizerFor: (model?: string) => SpeechRecognizer;
  readonly vadConfig: VadConfig;
  readonly transcripts: TranscriptsConfig;
  readonly alerts?: KeywordAlerts;
  /** Translations of finals; default: whisper's translate task on the call's recognizer. */
  readonly translator?: Translator;
  /**
   * The translator for a call's `translator` override, or the default one (undefined: whisper's
   * translate task on the call's recognizer). Takes precedence over `translator`.
   */
  readonly translatorFor?: (name?: string) => Translator | undefined;
  /** Where every call's events go, in each call's `seq` order (the event hub: store, then feeds). */
  readonly publish: (event: CallEvent) => void;
}

/**
 * The speech side of every call: the shared VAD and recognizers, the transcript and alert
 * settings, and where events go. A call asks for its transcript with `openCall` and carries
 * nothing of this itself.
 */
export class SpeechRuntime implements TranscriptOpener {
  constructor(private readonly deps: SpeechRuntimeDeps) {}

  get vad(): BatchedVad {
    return this.deps.vad;
  }

  openCall(spec: OpenCallSpec): CallTranscript {
    const { deps } = this;
    const o = spec.overrides ?? {};
    const publish = (event: CallEvent): void => {
      deps.publish(event);
      spec.onEvent?.(event);
    };
    const transcript = new CallTranscript({
      callId: spec.callId,
      rule: spec.rule,
      labels: spec.labels,
      publish,
      logger: spec.logger,
      pipeline: (seq, emit) =>
        new CallPipeline({
          callId: spec.callId,
          vad: deps.vad,
          recognizer: deps.recognizerFor(o.model),
          vadConfig: deps.vadConfig,
          transcripts: {
            ...deps.transcripts,
            ...(o.language !== undefined ? { language: o.language } : {}),
            ...(o.partials !== undefined ? { partials: o.partials } : {}),
            ...(o.translate !== undefined ? { translate: o.translate } : {}),
          },
          logger: spec.logger,
          seq,
          emit,
          ...(deps.alerts ? { alerts: deps.alerts } : {}),
          ...translatorOf(deps, o.translator),
        }),
    });
    return transcript;
  }
}

function translatorOf(deps: SpeechRuntimeDeps, name: string | undefined): { translator?: Translator } {
  const translator = deps.translatorFor ? deps.translatorFor(name) : deps.translator;
  return translator ? { translator } : {};
}
