/**
 * What a call needs from the edges above it, as ports the composition root (`main.ts`) fills:
 * the call level defines them, the feeds implement them, so the call never imports a feed.
 */
import type { AudioFrame } from '../audio/frame.js';
import type { Logger } from '../log.js';
import type { LegPlayback } from './playback.js';
import type { AudioForkPlan } from './rule.js';

/** An audio fork out of one call: its audio streamed over a WebSocket (jambonz `listen` / mod_audio_fork format). */
export interface AudioForkSpec {
  readonly plan: AudioForkPlan;
  /** Party names of the left (caller) and right (callee) channels; undefined: that channel is silence. */
  readonly channels: readonly [string | undefined, string | undefined];
  /** Call metadata for the stream's first message. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

export interface AudioForkStats {
  /** 20 ms frames of audio handed to the socket. */
  readonly framesSent: number;
  /** 20 ms frames dropped from a full buffer. */
  readonly framesDropped: number;
  /** Overrun episodes (a run of drops until the consumer is writable again). */
  readonly overruns: number;
  /** Connection attempts after a lost or failed one. */
  readonly reconnects: number;
  /** Connections opened. */
  readonly connects: number;
  readonly messagesIn: number;
  readonly badMessages: number;
  /** Frames arriving after their slot had been sent (with silence in their place). */
  readonly lateFrames: number;
  /** Audio items handed to the call's playback. */
  readonly playsQueued: number;
  /** Of those, the ones that played (to their end, or until interrupted or cleared). */
  readonly playsDone: number;
  /** Play requests refused: nothing to play into, the playback queue full, or the media server failed. */
  readonly playsRefused: number;
  /** 20 ms frames waiting for the socket now. */
  readonly bufferedFrames: number;
  readonly connected: boolean;
}

export interface AudioFork {
  /** One 20 ms frame of a party (frames of parties on no channel are ignored). */
  push(frame: AudioFrame): void;
  stats(): AudioForkStats;
  /** Last audio out, this stream's playback stopped, the connection closed. Idempotent; never rejects. */
  close(): Promise<void>;
}

/**
 * Opens a call's audio fork; `playback` is the leg that audio from the consumer plays into
 * (the caller's), absent when the call has none (a recording). Never waits for the consumer.
 */
export type AudioForkOpener = (spec: AudioForkSpec, playback: LegPlayback | undefined, logger: Logger) => AudioFork;
