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
  /**
   * Recordings (SIPREC): who the recording metadata names as this party's speaker at the time,
   * when it names them otherwise than the party (metadata that came after the call started, a
   * transfer). The party itself stays the same for the whole call.
   */
  readonly speaker?: string;
}

/** A final rendered in another language by a `Translator`; emitted right after its final. */
export interface TranslationEvent {
  readonly callId: string;
  readonly seq: number;
  readonly party: string;
  readonly kind: 'translation';
  /** `seq` of the final this translates. */
  readonly finalSeq: number;
  readonly text: string;
  /** The final's language (ISO 639-1). */
  readonly sourceLanguage: string;
  /** The language of `text` (ISO 639-1): the translation's target. */
  readonly language: string;
  /** The translator that produced it (e.g. `whisper`). */
  readonly provider: string;
  readonly startMs: number;
  readonly endMs: number;
  /**
   * Recordings (SIPREC): who the recording metadata names as the speaker of the final at the time,
   * when it names them otherwise than the party (metadata that came after the call started, a
   * transfer). The party itself stays the same for the whole call.
   */
  readonly speaker?: string;
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

// ---------------------------------------------------------------------------------------------
// Call events: the lifecycle of a call around its transcript

/** Why a call ended. */
export type CallEndReason =
  | 'bye-caller'
  | 'bye-callee'
  | 'cancel'
  | 'hangup'
  | 'shutdown'
  | 'failed'
  | 'rejected'
  | 'disconnect'
  /** The gateway stopped without ending it (killed, crashed, power lost): closed at its next start. */
  | 'lost'
  /** The source ended by itself (a file read to its end). */
  | 'completed';

export interface CallParty {
  /** `caller`, `callee`, or a SIPREC participant. */
  readonly name: string;
  readonly label?: string;
}

export interface CallStartedEvent {
  readonly kind: 'call.started';
  readonly callId: string;
  readonly seq: number;
  readonly rule: string;
  readonly labels: readonly string[];
  readonly parties: readonly CallParty[];
  /** Something about the call's set-up worth knowing (e.g. recording metadata unusable: parties named by position). */
  readonly warning?: string;
}

/** Media was renegotiated (re-INVITE): hold, resume, codec change. */
export interface CallUpdatedEvent {
  readonly kind: 'call.updated';
  readonly callId: string;
  readonly seq: number;
  /** Which side sent the re-INVITE. */
  readonly by: 'caller' | 'callee';
  /** True while that side holds the call (its offer was sendonly or inactive). */
  readonly hold: boolean;
  /** SIPREC: who sends each recorded party's stream now (updated recording metadata). */
  readonly participants?: readonly { readonly party: string; readonly name?: string; readonly aor?: string }[];
}

/**
 * One party's media counters over the call, as `call.ended` carries them (the RTP receiver's
 * statistics; the media layer's own type matches this shape).
 */
export interface PartyMediaStats {
  readonly packets: number;
  readonly bytes: number;
  /** Packets given up and concealed. */
  readonly lost: number;
  /** Packets that came after their place had been concealed. */
  readonly late: number;
  readonly duplicate: number;
  readonly malformed: number;
  readonly rtcp: number;
  /** Audio packets without payload (keepalives, padding only): they add nothing. Absent in calls stored before it was counted. */
  readonly empty?: number;
  /** Datagrams from an address other than rtpengine's, dropped. */
  readonly foreign?: number;
  /** Packets of a stray SSRC that never took the stream over. */
  readonly ssrcRejected?: number;
  readonly unknownPayloadType: number;
  readonly undecodable: number;
  readonly ssrcChanges: number;
  readonly dtmfEvents: number;
  /** RFC 3550 interarrival jitter, ms. */
  readonly jitterMs: number;
  /** The codec last seen. */
  readonly codec: string | undefined;
}

/** Why a call's set-up or media failed, as the typed error said it (its `code`, never matched on text). */
export interface CallFailure {
  readonly code: string;
  readonly message: string;
}

export interface CallEndedEvent {
  readonly kind: 'call.ended';
  readonly callId: string;
  readonly seq: number;
  readonly reason: CallEndReason;
  /** Time the call was up (answered); 0 for a call that ended during set-up. */
  readonly durationMs: number;
  /**
   * The SIP final status the caller got for a call that was never answered (486 relayed from a
   * busy callee, 503, 488, 487 for a CANCEL...); absent for answered and non-SIP calls.
   */
  readonly sipStatus?: number;
  /** What failed, for reason `failed` (and set-up endings caused by an error). */
  readonly error?: CallFailure;
  readonly parties: Readonly<Record<string, PartyMediaStats>>;
}

/** A key pressed by a party (RFC 4733 telephone-event, or a platform's DTMF message). */
export interface CallDtmfEvent {
  readonly kind: 'dtmf';
  readonly callId: string;
  readonly seq: number;
  readonly party: string;
  /** '0'-'9', '*', '#', 'A'-'D', or 'flash'. */
  readonly digit: string;
  readonly durationMs: number;
  /** True when the key's end packets never arrived and the event was closed by what followed. */
  readonly endLost: boolean;
}

// ---------------------------------------------------------------------------------------------
// Speech: what the gateway said into the call

/** Why the gateway spoke: a rule's prompt, or an interpretation of the other party's final. */
export type SpeechPurpose = 'prompt' | 'interpretation';

/** Synthesized speech began to play into a leg (its first audio reached the media server). */
export interface SpeechStartedEvent {
  readonly kind: 'speech.started';
  readonly callId: string;
  readonly seq: number;
  /** Names this speech's `speech.done` / `speech.failed`. */
  readonly speechId: string;
  /** The leg that hears it. */
  readonly leg: 'caller' | 'callee';
  readonly purpose: SpeechPurpose;
  readonly text: string;
  readonly language?: string;
  readonly voice?: string;
  /** The synthesizer that spoke (after any fallback). */
  readonly provider: string;
  /** From asking for the speech to its first audio being played (ms). */
  readonly ttfaMs: number;
  /** Interpretation: the `seq` of the translation spoken (and through it, its final). */
  readonly translationSeq?: number;
}

/** A speech ended: played to its end, or interrupted (barge-in, hang-up), or dropped before it played. */
export interface SpeechDoneEvent {
  readonly kind: 'speech.done';
  readonly callId: string;
  readonly seq: number;
  readonly speechId: string;
  readonly leg: 'caller' | 'callee';
  readonly status: 'played' | 'interrupted' | 'cleared';
  /** Audio that reached the leg (ms). */
  readonly playedMs: number;
  /** The whole speech's length (ms), when it was synthesized to its end. */
  readonly durationMs?: number;
}

/** Nothing could be spoken: every synthesizer failed (or timed out); the call goes on. */
export interface SpeechFailedEvent {
  readonly kind: 'speech.failed';
  readonly callId: string;
  readonly seq: number;
  readonly speechId: string;
  readonly leg: 'caller' | 'callee';
  readonly purpose: SpeechPurpose;
  readonly text: string;
  readonly error: CallFailure;
  readonly translationSeq?: number;
}

export type SpeechEvent = SpeechStartedEvent | SpeechDoneEvent | SpeechFailedEvent;

/**
 * What a voice application (a jambonz app on an `app` rule) did in the call: a verb run, a hook
 * and its latency, a gather's result, an error reported to the application.
 */
export interface AppEvent {
  readonly kind: 'app';
  readonly callId: string;
  readonly seq: number;
  readonly what: 'verb' | 'hook' | 'gather' | 'dial' | 'error';
  readonly verb?: string;
  /** verb: `done`, `failed`, `replaced` (a hook's or a redirect's new verbs took over). */
  readonly status?: string;
  readonly hook?: string;
  readonly latencyMs?: number;
  /** gather: speechDetected, dtmfDetected, timeout. */
  readonly reason?: string;
  readonly transcript?: string;
  readonly digits?: string;
  readonly message?: string;
  /** dial: the target dialed (or that answered), the party its speech is transcribed as, the SIP status. */
  readonly target?: string;
  readonly party?: string;
  readonly sipStatus?: number;
}

/** Everything a call publishes, in `seq` order: the feeds' single event path. */
export type CallEvent = CallStartedEvent | CallUpdatedEvent | CallEndedEvent | CallDtmfEvent | PipelineEvent | SpeechEvent | AppEvent;
