import type { DtmfEvent } from '../media/rtp/dtmf.js';
import type { PartyRtpStats } from '../media/rtp/party-stream.js';
import type { PipelineEvent } from '../transcripts/events.js';

/** Why a call ended. */
export type CallEndReason =
  | 'bye-caller'
  | 'bye-callee'
  | 'cancel'
  | 'hangup'
  | 'shutdown'
  | 'failed'
  | 'rejected'
  | 'disconnect';

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

export interface CallEndedEvent {
  readonly kind: 'call.ended';
  readonly callId: string;
  readonly seq: number;
  readonly reason: CallEndReason;
  readonly durationMs: number;
  readonly parties: Readonly<Record<string, PartyRtpStats>>;
}

export interface CallDtmfEvent extends Omit<DtmfEvent, 'timestamp'> {
  readonly kind: 'dtmf';
  readonly callId: string;
  readonly seq: number;
  readonly party: string;
}

/** Everything a call publishes, in `seq` order: the feeds' single event path. */
export type CallEvent = CallStartedEvent | CallUpdatedEvent | CallEndedEvent | CallDtmfEvent | PipelineEvent;
