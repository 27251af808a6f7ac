import { performance } from 'node:perf_hooks';
import type { AudioFrame } from '../audio/frame.js';
import { PartyAudio } from '../audio/party-audio.js';
import type { Logger } from '../log.js';
import type { RecorderLeg } from '../media/local-legs.js';
import type { DtmfEvent } from '../media/rtp/dtmf.js';
import { mergePartyStats, type MediaSink, type PartyRtpStats } from '../media/rtp/party-stream.js';
import type { MediaSubscriber, MediaSubscription } from '../media/subscription.js';

export interface CallMediaDeps {
  readonly callId: string;
  readonly subscriber: MediaSubscriber;
  readonly logger: Logger;
  /** Each party's 16 kHz frames on the call clock (to its transcript, the audio fork out). */
  readonly onFrame: (party: string, frame: AudioFrame) => void;
  readonly onDtmf: (party: string, event: DtmfEvent) => void;
}

/**
 * The one owner of a call's media taps: each party's subscription (or the recorder's socket),
 * and the audio stage that turns its RTP into frames on the call clock. `close()` releases every
 * tap and returns each party's RTP statistics.
 */
export class CallMedia {
  private readonly audio = new Map<string, PartyAudio>();
  /** Party → rtpengine tag it is subscribed to, the subscription, and the totals of the ones it replaced. */
  private readonly subscriptions = new Map<string, { readonly tag: string; subscription: MediaSubscription | undefined; earlier: PartyRtpStats | undefined }>();
  /** The statistics of parties whose taps ended before the call (a dialed leg that hung up). */
  private readonly finished = new Map<string, PartyRtpStats>();
  private recorder: RecorderLeg | undefined;
  private clockZero: number | undefined;
  private closed: Promise<Record<string, PartyRtpStats>> | undefined;

  constructor(private readonly deps: CallMediaDeps) {}

  /** The call clock starts (the call was answered): frames' `startMs` count from here. */
  startClock(): void {
    this.clockZero ??= performance.now();
  }

  /**
   * Where a party's RTP goes: its audio stage (made on first use) and its DTMF. Media that comes
   * before the call clock starts (taps are set up before the caller's 200 OK; a callee may send
   * at once) is not the call's audio yet and is dropped.
   */
  sinkFor(party: string): MediaSink {
    let audio = this.audio.get(party);
    if (!audio) {
      audio = new PartyAudio(party, (frame) => this.deps.onFrame(party, frame), { callClock: (arrivalMs) => arrivalMs - (this.clockZero ?? arrivalMs) });
      this.audio.set(party, audio);
    }
    const sink = audio;
    return {
      audio: (format, ts, payload, lost, arrival) => (this.clockZero !== undefined ? sink.audio(format, ts, payload, lost, arrival) : undefined),
      advance: (due) => sink.advance(due),
      comfortNoise: (level) => sink.comfortNoise(level),
      streamChange: (ssrc, arrival) => sink.streamChange(ssrc, arrival),
      dtmf: (e) => {
        if (this.clockZero !== undefined) this.deps.onDtmf(party, e);
      },
      end: () => sink.end(),
    };
  }

  /** Subscribes to the media of the party whose rtpengine tag is `tag`. */
  async subscribe(party: string, tag: string): Promise<void> {
    if (this.closed) return;
    const entry = { tag, subscription: undefined as MediaSubscription | undefined, earlier: undefined as PartyRtpStats | undefined };
    this.subscriptions.set(party, entry);
    entry.subscription = await this.deps.subscriber.subscribe({ callId: this.deps.callId, fromTag: tag, label: party }, this.sinkFor(party));
    // Closed while subscribing: the new subscription goes with the rest.
    if (this.closed) await entry.subscription.close();
  }

  /**
   * Replaces every subscription with a fresh one (after a renegotiation, so transcription follows
   * the new media); a party whose subscription fails stays silent, the call goes on.
   */
  async resubscribe(): Promise<void> {
    for (const [party, entry] of this.subscriptions) {
      if (this.closed) return;
      const old = entry.subscription;
      entry.subscription = undefined;
      // The party's statistics span the call: the replaced subscription's counters carry over.
      if (old) entry.earlier = mergePartyStats(entry.earlier, old.stats());
      await old?.close();
      try {
        entry.subscription = await this.deps.subscriber.subscribe({ callId: this.deps.callId, fromTag: entry.tag, label: party }, this.sinkFor(party));
      } catch (err) {
        this.deps.logger.warn({ err, party }, 're-subscription failed: party not transcribed until the next renegotiation');
      }
    }
  }

  /** Ends a party's subscription (a dialed leg that is gone); its statistics stay for `close()`. */
  async unsubscribe(party: string): Promise<void> {
    const entry = this.subscriptions.get(party);
    if (!entry) return;
    this.subscriptions.delete(party);
    const stats = entry.subscription ? mergePartyStats(entry.earlier, entry.subscription.stats()) : entry.earlier;
    if (stats) this.finished.set(party, stats);
    await entry.subscription?.close();
  }

  /** The recorder's sockets are the taps of a recording (their statistics are the parties'). */
  adoptRecorder(recorder: RecorderLeg): void {
    this.recorder = recorder;
  }

  /** Ends every tap (the parties' last frames go out) and returns each party's RTP statistics. Idempotent. */
  close(): Promise<Record<string, PartyRtpStats>> {
    return (this.closed ??= (async () => {
      const stats: Record<string, PartyRtpStats> = Object.fromEntries(this.finished);
      for (const [party, entry] of this.subscriptions) {
        if (entry.subscription) {
          stats[party] = mergePartyStats(entry.earlier, entry.subscription.stats());
          await entry.subscription.close();
        } else if (entry.earlier) {
          stats[party] = entry.earlier;
        }
      }
      if (this.recorder) Object.assign(stats, this.recorder.close());
      return stats;
    })());
  }
}
