/**
 * Speaking into a call: text → a synthesizer → the call's playback owner → one leg, reported as
 * `speech.started` (at first audio, with the provider that spoke and the time to first audio),
 * `speech.done` (played, interrupted or cleared, how much was heard) or `speech.failed` (nothing
 * could be synthesized: the call goes on).
 *
 * The synthesizer's first chunk is awaited before anything is queued, so a provider failure (or
 * a fallback's last one) is a `speech.failed` and never a silent gap in the leg's queue; after
 * that the audio streams into the playback queue as it is made.
 */
import { performance } from 'node:perf_hooks';
import { WhisperlineError } from '../errors.js';
import type { Logger } from '../log.js';
import type { SpeechEvent, SpeechPurpose } from '../transcripts/events.js';
import type { SynthesizedAudio, Synthesizer } from '../tts/synthesizer.js';
import type { CallPlayback, PlaybackTarget } from './playback.js';

export interface SpeakRequest {
  readonly text: string;
  readonly language?: string;
  readonly voice?: string;
  readonly ssml?: boolean;
  readonly purpose: SpeechPurpose;
  /** Interpretation: the translation event this speaks. */
  readonly translationSeq?: number;
  /** Start this far into the speech (ms): a prompt resumed after a false interruption. */
  readonly startAtMs?: number;
}

export interface SpeakOutcome {
  readonly speechId: string;
  readonly status: 'played' | 'interrupted' | 'cleared' | 'failed';
  readonly provider?: string;
  /** From the request to its first audio being played (ms). */
  readonly ttfaMs?: number;
  readonly playedMs: number;
  readonly durationMs?: number;
  readonly error?: WhisperlineError;
}

/** The events a speaker publishes, without the call's `callId` and `seq` (its transcript adds them). */
type WithoutCallFields<E> = E extends unknown ? Omit<E, 'callId' | 'seq'> : never;
export type SpeechEventBody = WithoutCallFields<SpeechEvent>;

export interface CallSpeakerDeps {
  readonly synthesizer: Synthesizer;
  readonly playback: CallPlayback;
  /** The call transcript's `speech()`: each event in the call's seq order. */
  readonly publish: (event: SpeechEventBody) => void;
  readonly logger: Logger;
}

/** The provider that produced a chunk, when a decorator (fallback) says which one it was. */
type ChunkWithProvider = SynthesizedAudio & { readonly provider?: string };

export class CallSpeaker {
  private count = 0;
  /** Syntheses waiting for their first audio, aborted by `close()` (queued ones end with the playback). */
  private readonly inFlight = new Set<AbortController>();
  private closed = false;

  constructor(private readonly deps: CallSpeakerDeps) {}

  /** Whether `leg` can hear anything (an answered call has no callee leg). */
  canSpeakTo(leg: PlaybackTarget): boolean {
    return this.deps.playback.to(leg) !== undefined;
  }

  /**
   * Speaks `request` into `leg`; resolves when it has played, was interrupted or dropped, or
   * failed. Never rejects: every ending is an outcome and an event.
   */
  async say(leg: PlaybackTarget, request: SpeakRequest): Promise<SpeakOutcome> {
    const speechId = `${request.purpose}-${++this.count}`;
    const askedAt = performance.now();
    const playback = this.deps.playback.to(leg);
    const failed = (error: WhisperlineError): SpeakOutcome => {
      this.deps.publish({
        kind: 'speech.failed',
        speechId,
        leg,
        purpose: request.purpose,
        text: request.text,
        error: { code: error.code, message: error.message },
        ...(request.translationSeq !== undefined ? { translationSeq: request.translationSeq } : {}),
      });
      this.deps.logger.warn({ speechId, leg, code: error.code, err: error.message }, 'speech failed');
      return { speechId, status: 'failed', playedMs: 0, error };
    };
    if (this.closed) return { speechId, status: 'cleared', playedMs: 0 };
    if (!playback) return failed(new WhisperlineError('PLAYBACK_CLOSED', `the call has no ${leg} leg to speak to`));
    const abort = new AbortController();
    this.inFlight.add(abort);
    try {
      const audio = this.deps.synthesizer.synthesize({
        text: request.text,
        ...(request.language !== undefined ? { language: request.language } : {}),
        ...(request.voice !== undefined ? { voice: request.voice } : {}),
        ...(request.ssml ? { ssml: true } : {}),
        signal: abort.signal,
      });
      const iterator = audio[Symbol.asyncIterator]();
      let first: IteratorResult<ChunkWithProvider>;
      try {
        first = (await iterator.next()) as IteratorResult<ChunkWithProvider>;
      } catch (err) {
        if (this.closed) return { speechId, status: 'cleared', playedMs: 0 };
        return failed(err instanceof WhisperlineError ? err : new WhisperlineError('TTS_FAILED', `speech synthesis failed: ${(err as Error).message}`, { cause: err }));
      }
      if (first.done) return failed(new WhisperlineError('TTS_FAILED', `the synthesizer gave no audio for "${request.text.slice(0, 40)}"`));
      if (this.closed) {
        void iterator.return?.();
        return { speechId, status: 'cleared', playedMs: 0 };
      }
      // From here the playback owns the speech: closing the call interrupts it there.
      this.inFlight.delete(abort);
      const provider = first.value.provider ?? this.deps.synthesizer.name;
      const sampleRate = first.value.sampleRate;
      const firstSamples = first.value.samples;
      let started = false;
      let ttfaMs: number | undefined;
      // A resumed prompt skips what was already heard.
      let skip = Math.round(((request.startAtMs ?? 0) * sampleRate) / 1000);
      const trimmed = (samples: Int16Array): Int16Array | undefined => {
        if (skip <= 0) return samples;
        const n = Math.min(skip, samples.length);
        skip -= n;
        return n === samples.length ? undefined : samples.subarray(n);
      };
      const stream = (async function* (): AsyncGenerator<Int16Array> {
        const head = trimmed(firstSamples);
        if (head) yield head;
        for (;;) {
          const next = await iterator.next();
          if (next.done) return;
          const part = trimmed(next.value.samples);
          if (part) yield part;
        }
      })();
      const outcome = await playback.play(
        { stream, sampleRate },
        {
          id: speechId,
          owner: request.purpose,
          onStart: () => {
            started = true;
            ttfaMs = Math.round(performance.now() - askedAt);
            this.deps.publish({
              kind: 'speech.started',
              speechId,
              leg,
              purpose: request.purpose,
              text: request.text,
              ...(request.language !== undefined ? { language: request.language } : {}),
              ...(request.voice !== undefined ? { voice: request.voice } : {}),
              provider,
              ttfaMs,
              ...(request.translationSeq !== undefined ? { translationSeq: request.translationSeq } : {}),
            });
          },
        },
      );
      // The synthesis stops with the playback (interrupted, cleared, hung up).
      abort.abort();
      void iterator.return?.();
      if (outcome.status === 'failed') return failed(new WhisperlineError('TTS_FAILED', 'the synthesized audio could not be played'));
      const status = outcome.status;
      // Cleared before it started: it was dropped from the queue (a barge-in, the call ending).
      this.deps.publish({
        kind: 'speech.done',
        speechId,
        leg,
        status,
        playedMs: started ? outcome.playedMs : 0,
        ...(outcome.durationMs !== undefined ? { durationMs: outcome.durationMs } : {}),
      });
      return {
        speechId,
        status,
        provider,
        ...(ttfaMs !== undefined ? { ttfaMs } : {}),
        playedMs: outcome.playedMs,
        ...(outcome.durationMs !== undefined ? { durationMs: outcome.durationMs } : {}),
      };
    } catch (err) {
      // playback.play rejects when the queue is full or playback closed.
      if (this.closed) return { speechId, status: 'cleared', playedMs: 0 };
      return failed(err instanceof WhisperlineError ? err : new WhisperlineError('TTS_FAILED', String(err), { cause: err }));
    } finally {
      this.inFlight.delete(abort);
    }
  }

  /**
   * The call is ending: syntheses still waiting for their first audio are aborted, later `say`s do
   * nothing; what is already queued or playing is stopped by the playback's close (and reported
   * `speech.done` interrupted or cleared). Idempotent.
   */
  close(): void {
    this.closed = true;
    for (const abort of this.inFlight) abort.abort();
    this.inFlight.clear();
  }
}
