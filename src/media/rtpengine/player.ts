/**
 * Audio played into one leg of a call by rtpengine `play media`.
 *
 * The call's playback owner drives it chunk by chunk: `play` starts one chunk (replacing whatever
 * plays now) and resolves once rtpengine has started it, with its length; the owner starts the
 * next chunk when that time has elapsed, and calls `stop` when its queue runs dry or playback is
 * interrupted.
 */
import type { Logger } from '../../log.js';
import { encodeWav } from '../../audio/wav.js';
import type { RtpengineClient } from './client.js';

/** A media server that plays audio chunks into one leg. */
export interface MediaPlayer {
  /** The rate the player wants its audio at; callers resample to it. */
  readonly sampleRate: number;
  /** The most samples (at `sampleRate`) one `play` may carry. */
  readonly maxChunkSamples: number;
  /** Starts playing `pcm` (at `sampleRate`) now, replacing what plays; resolves once started, with its length. */
  play(pcm: Int16Array): Promise<{ readonly durationMs: number }>;
  /**
   * Stops what plays (if anything) and gives the listener the call's own audio back. Resolves
   * with how far into the last chunk playback had got, when the media server says (rtpengine
   * 10.5 reports `last-frame-pos` for file playback, not for blobs: the caller then measures it
   * from when the chunk started).
   */
  stop(): Promise<{ readonly positionMs?: number }>;
}

/** The rtpengine commands the player uses. */
export type PlayerControl = Pick<RtpengineClient, 'playMedia' | 'stopMedia' | 'unsubscribe' | 'subscribeRequest'>;

export interface RtpenginePlayerOptions {
  readonly rtpengine: PlayerControl;
  /** rtpengine call-id (the SIP Call-ID). */
  readonly callId: string;
  /** Tag of the party who hears the audio (`play media`'s from-tag). */
  readonly listenerTag: string;
  /**
   * Tag of the party the listener otherwise hears (a bridge's other party): muted towards the
   * listener while audio plays, as a prompt replaces the far end on a PBX; otherwise rtpengine
   * sends the listener both streams interleaved (two SSRCs, which phones do not mix).
   *
   * Measured with rtpengine 10.5: `block media` and `silence media` act on everything the party
   * sends, its subscriptions included (with or without `to-tag`, `to-label` or `all: flows`), so
   * its transcription and audio-stream channel would go silent while audio plays. `unsubscribe`
   * with `from-tag` = this party and `to-tag` = the listener stops only that flow, the party's
   * forks go on; `subscribe request` with the same tags restores it (its SDP is not needed: the
   * listener's media address is unchanged, and a `subscribe answer` for it is refused).
   */
  readonly otherTag?: string;
  /** Leave the other party audible to the listener (both streams interleaved): `passed` interpretation. */
  readonly passOther?: boolean;
  /** Rate of the WAV blobs sent (default 8000: rtpengine resamples 16 kHz blobs for 8 kHz legs and loses each blob's last packet doing it). */
  readonly sampleRate?: number;
  readonly logger?: Logger;
}

/**
 * One `play media` blob's size limit. ng runs over UDP (64 KB datagrams, one per command);
 * 40 KB of WAV keeps the message well inside it: 2.5 s at 8 kHz, 1.25 s at 16 kHz.
 */
export const MAX_BLOB_BYTES = 40_000;
const WAV_HEADER_BYTES = 44;

/**
 * Plays audio into one party's leg with rtpengine `play media`, each chunk sent as a 16-bit PCM
 * WAV blob in the request (so rtpengine need not share a filesystem with the gateway), which
 * rtpengine decodes and encodes to the leg's codec.
 */
export class RtpenginePlayer implements MediaPlayer {
  readonly sampleRate: number;
  readonly maxChunkSamples: number;
  /** The other party's flow to the listener is stopped (see `otherTag`). */
  private muted = false;

  constructor(private readonly options: RtpenginePlayerOptions) {
    this.sampleRate = options.sampleRate ?? 8000;
    // Whole 20 ms packets, so a chunk's end falls on a packet boundary.
    const packet = this.sampleRate / 50;
    this.maxChunkSamples = Math.floor((MAX_BLOB_BYTES - WAV_HEADER_BYTES) / 2 / packet) * packet;
  }

  async play(pcm: Int16Array): Promise<{ durationMs: number }> {
    const { rtpengine, callId, listenerTag, otherTag } = this.options;
    if (pcm.length > this.maxChunkSamples) throw new RangeError(`play chunk of ${pcm.length} samples exceeds ${this.maxChunkSamples}`);
    if (otherTag && !this.options.passOther && !this.muted) {
      this.muted = true;
      try {
        await rtpengine.unsubscribe({ 'call-id': callId, 'from-tag': otherTag, 'to-tag': listenerTag });
      } catch (err) {
        // Playback still goes ahead; the listener hears both streams.
        this.muted = false;
        this.options.logger?.warn({ err }, 'could not mute the far end during playback');
      }
    }
    const reply = await rtpengine.playMedia({ 'call-id': callId, 'from-tag': listenerTag, blob: encodeWav(pcm, this.sampleRate) });
    return { durationMs: reply.duration ?? Math.round((pcm.length * 1000) / this.sampleRate) };
  }

  async stop(): Promise<{ positionMs?: number }> {
    const { rtpengine, callId, listenerTag, otherTag } = this.options;
    let failure: unknown;
    let positionMs: number | undefined;
    try {
      // rtpengine 10.5 answers ok when nothing plays.
      const reply = await rtpengine.stopMedia({ 'call-id': callId, 'from-tag': listenerTag });
      positionMs = reply['last-frame-pos'];
    } catch (err) {
      failure = err;
    }
    if (otherTag && this.muted) {
      this.muted = false;
      // The listener hears the other party again.
      await rtpengine.subscribeRequest({ 'call-id': callId, 'from-tag': otherTag, 'to-tag': listenerTag });
    }
    if (failure) throw failure;
    return positionMs === undefined ? {} : { positionMs };
  }
}
