import type { CallEndReason, CallEvent } from '../transcripts/events.js';
import { callLogger, type Logger } from '../log.js';
import { CallPipeline, type PartyInput } from '../pipeline/call-pipeline.js';
import type { TranscriptEvent } from '../transcripts/events.js';
import { ingestCallId, type AudioIngestDeps, type IngestPlatform } from './common.js';
import { PartyFeed } from '../audio/pcm.js';

export interface IngestPartySpec {
  /** `caller`, `callee`. */
  readonly name: string;
  /** The rate the platform sends this party's samples at. */
  readonly sampleRate: number;
}

export interface IngestCallOptions {
  readonly platform: IngestPlatform;
  /** The platform's id of the call or stream (callSid, streamSid), part of the call id. */
  readonly externalId?: string;
  readonly parties: readonly IngestPartySpec[];
  /** Whisper language for this call (else the configured one). */
  readonly language?: string;
  /** Partials for this call (else the configured setting). */
  readonly partials?: boolean;
  /** Every partial and final, after the hub has it: the platform's own reply goes out here. */
  readonly onTranscript?: (event: TranscriptEvent) => void;
}

/**
 * One ingest connection as a call: its pipeline, one feed (resampler + framer) per party, and the
 * call's events on the hub, from `call.started` to `call.ended`, like a SIP call's.
 */
export class IngestCall {
  readonly callId: string;
  readonly log: Logger;
  private readonly pipeline: CallPipeline;
  private readonly feeds = new Map<string, { feed: PartyFeed; input: PartyInput }>();
  private readonly startedAt = performance.now();
  private ending: Promise<void> | undefined;

  constructor(
    private readonly deps: AudioIngestDeps,
    private readonly options: IngestCallOptions,
  ) {
    this.callId = ingestCallId(options.platform, options.externalId);
    this.log = callLogger(deps.logger, this.callId);
    this.pipeline = new CallPipeline({
      callId: this.callId,
      vad: deps.vad,
      recognizer: deps.recognizer,
      vadConfig: deps.vadConfig,
      transcripts: {
        ...deps.transcripts,
        ...(options.language !== undefined ? { language: options.language } : {}),
        ...(options.partials !== undefined ? { partials: options.partials } : {}),
      },
      logger: this.log,
      ...(deps.alerts ? { alerts: deps.alerts } : {}),
      onEvent: (event) => {
        this.publish(event);
        if (event.kind === 'final' || event.kind === 'partial') this.reply(event);
      },
    });
    this.publish({
      kind: 'call.started',
      callId: this.callId,
      seq: this.pipeline.seq.next(),
      rule: `ingest:${options.platform}`,
      labels: deps.config.labels,
      parties: options.parties.map((p) => ({ name: p.name })),
    });
    for (const spec of options.parties) {
      const input = this.pipeline.addParty(spec.name);
      this.feeds.set(spec.name, { feed: new PartyFeed(spec.name, spec.sampleRate, (frame) => input.push(frame)), input });
    }
  }

  get ended(): boolean {
    return this.ending !== undefined;
  }

  hasParty(party: string): boolean {
    return this.feeds.has(party);
  }

  /** Samples of one party at its rate; ignored once the call is ending. */
  write(party: string, samples: Int16Array): void {
    if (this.ending) return;
    const entry = this.feeds.get(party);
    if (!entry) throw new Error(`no party ${party} in ingest call`);
    entry.feed.write(samples);
  }

  /** A key pressed by a party. */
  dtmf(party: string, digit: string, durationMs: number): void {
    if (this.ending) return;
    this.publish({ kind: 'dtmf', callId: this.callId, seq: this.pipeline.seq.next(), party, digit, durationMs, endLost: false });
  }

  /**
   * Ends the call: every party's last frame, the pipeline's last finals, then `call.ended`.
   * Idempotent (the first reason wins); never rejects.
   */
  end(reason: CallEndReason): Promise<void> {
    return (this.ending ??= (async () => {
      for (const { feed } of this.feeds.values()) {
        try {
          feed.end();
        } catch (err) {
          this.log.warn({ err, party: feed.party }, 'ingest party flush failed');
        }
      }
      try {
        await this.pipeline.end(reason);
      } catch (err) {
        this.log.error({ err }, 'ingest pipeline end failed');
      }
      const durationMs = Math.round(performance.now() - this.startedAt);
      this.publish({ kind: 'call.ended', callId: this.callId, seq: this.pipeline.seq.next(), reason, durationMs, parties: {} });
      this.log.info({ reason, durationMs }, 'ingest call ended');
    })());
  }

  private publish(event: CallEvent): void {
    try {
      this.deps.hub.publish(event);
    } catch (err) {
      // A listener threw: the pipeline must go on for the others.
      this.log.error({ err, kind: event.kind, seq: event.seq }, 'ingest event listener failed');
    }
  }

  private reply(event: TranscriptEvent): void {
    try {
      this.options.onTranscript?.(event);
    } catch (err) {
      this.log.error({ err, kind: event.kind }, 'ingest transcript reply failed');
    }
  }
}
