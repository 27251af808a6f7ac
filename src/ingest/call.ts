import { PartyFeed } from '../audio/pcm.js';
import { callLogger, type Logger } from '../log.js';
import type { PartyInput } from '../pipeline/call-pipeline.js';
import type { CallTranscript } from '../pipeline/call-transcript.js';
import type { CallEndReason, TranscriptEvent } from '../transcripts/events.js';
import { ingestCallId, type AudioIngestDeps, type IngestPlatform } from './common.js';

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
 * One ingest connection as a call: its transcript (the same `CallTranscript` as a SIP call's, from
 * `call.started` to `call.ended`) and one feed (resampler + framer) per party.
 */
export class IngestCall {
  readonly callId: string;
  readonly log: Logger;
  private readonly transcript: CallTranscript;
  private readonly feeds = new Map<string, { feed: PartyFeed; input: PartyInput }>();
  private ending: Promise<void> | undefined;

  constructor(
    deps: AudioIngestDeps,
    private readonly options: IngestCallOptions,
  ) {
    this.callId = ingestCallId(options.platform, options.externalId);
    this.log = callLogger(deps.logger, this.callId);
    this.transcript = deps.speech.openCall({
      callId: this.callId,
      rule: `ingest:${options.platform}`,
      labels: deps.config.labels,
      overrides: {
        ...(options.language !== undefined ? { language: options.language } : {}),
        ...(options.partials !== undefined ? { partials: options.partials } : {}),
      },
      onEvent: (event) => {
        if (event.kind === 'final' || event.kind === 'partial') this.reply(event);
      },
      logger: this.log,
    });
    this.transcript.start(options.parties.map((p) => ({ name: p.name })));
    for (const spec of options.parties) {
      const input = this.transcript.addParty(spec.name);
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
    if (!entry) throw new RangeError(`no party ${party} in ingest call`);
    entry.feed.write(samples);
  }

  /** A key pressed by a party. */
  dtmf(party: string, digit: string, durationMs: number): void {
    if (this.ending) return;
    this.transcript.dtmf(party, { digit, durationMs, endLost: false });
  }

  /**
   * Ends the call: every party's last frame, the last finals, then `call.ended`. Idempotent (the
   * first reason wins); never rejects.
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
      await this.transcript.end({ reason });
      this.log.info({ reason }, 'ingest call ended');
    })());
  }

  private reply(event: TranscriptEvent): void {
    try {
      this.options.onTranscript?.(event);
    } catch (err) {
      this.log.error({ err, kind: event.kind }, 'ingest transcript reply failed');
    }
  }
}
