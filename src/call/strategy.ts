/**
 * One strategy per call action (answer, bridge, recording), behind one small interface: the
 * session orders the lifecycle (acquire, run, close), the strategy knows how its action reaches
 * the other side and what the connected call holds.
 */
import type { Logger } from '../log.js';
import type { CallAnchor } from '../media/anchor.js';
import type { RtpReceiver } from '../media/rtp/receiver.js';
import type { CallEndReason, CallUpdatedEvent } from '../transcripts/events.js';
import type { CallMedia } from './call-media.js';
import type { PlaybackTarget } from './playback.js';
import type { RecordingOffer } from './recording.js';
import type { CallRule } from './rule.js';
import type { DialOptions, InboundLeg, OutboundDialer, OutboundLeg } from './signalling.js';

export type Side = 'caller' | 'callee';

/** What a strategy gets from its session: the call's identity, its resources and its owner's hooks. */
export interface CallContext {
  readonly callId: string;
  readonly rule: CallRule;
  readonly inbound: InboundLeg;
  readonly anchor: CallAnchor;
  readonly media: CallMedia;
  readonly receiver: RtpReceiver;
  readonly log: Logger;
  /** Aborted when the call starts closing: set-up work in progress (an outbound INVITE) is cancelled. */
  readonly signal: AbortSignal;
  /** Registers a release step, run by `close()` in reverse order of registration. */
  defer(what: string, run: () => unknown): void;
  /** Throws CALL_ENDED when the call has started closing while `what` was under way. */
  checkOpen(what: string): void;
  /** Whether the rule transcribes this party (its media is tapped). */
  transcribes(party: string): boolean;
}

/** A renegotiation's result: the SDP answer for the side that sent the offer, and what changed. */
export interface Renegotiation {
  readonly answer: string;
  readonly hold: boolean;
  readonly participants?: CallUpdatedEvent['participants'];
}

/** A call that is up: what it holds, and what it can do until it ends. */
export interface ConnectedCall {
  /** The parties whose media can be tapped, in channel order (caller first). */
  readonly parties: readonly string[];
  /** The rtpengine tag of each leg that can hear playback (none for a recording). */
  readonly playbackTags: Readonly<Partial<Record<PlaybackTarget, string>>>;
  /** Left and right channels of an audio fork out. */
  readonly channels: readonly [string | undefined, string | undefined];
  /** Something about the set-up worth reporting with `call.started`. */
  readonly warning?: string;
  /** A re-INVITE from one side (hold, resume, codec change, new recording metadata). */
  reinvite(from: Side, offer: string, update?: RecordingOffer): Promise<Renegotiation>;
  /**
   * The SDP last sent to `side`: the gateway's offer when that side sends a re-INVITE without
   * SDP (a session refresh, RFC 3261 §14.2): the same description, its version unchanged, as
   * RFC 6337 §5.3 recommends when nothing is to change.
   */
  sdpTowards(side: Side): string;
  /**
   * `side`'s answer (from an ACK) to an offer of `sdpTowards(side)`: applied in rtpengine when it
   * changed the session (a new address or codec), without any offer to the other side. Resolves
   * with what changed, or undefined when it is the same version of the session as before.
   */
  adopt(side: Side, answer: string): Promise<{ readonly hold: boolean } | undefined>;
  /** The far side's part of the ending (BYE to a bridge's callee unless it sent one). */
  hangUp(reason: CallEndReason): Promise<void>;
  /**
   * An answered call only (a voice application's `dial`): dials every target at once and bridges
   * the caller to the first that answers, until `unbridge`. Rejects as the dialer does; the
   * caller stays on the gateway's leg then.
   */
  bridgeTo?(targets: readonly string[], dialer: OutboundDialer, signal: AbortSignal, options?: DialOptions): Promise<{ readonly leg: OutboundLeg; readonly target: string }>;
  /** Ends `bridgeTo`'s bridge (a BYE to the dialed leg unless it hung up); the caller is the gateway's again. */
  unbridge?(options: { readonly calleeHungUp: boolean }): Promise<void>;
}

export interface CallStrategy {
  /**
   * Anchors the call, reaches the other side, taps the media of the parties the rule transcribes
   * and only then answers the caller: a call the gateway cannot transcribe (RTP ports exhausted,
   * a subscription rtpengine refuses) is refused, not answered silent. Rejects with a
   * WhisperlineError: CALL_ENDED when the call closed meanwhile, else what failed. Releases what
   * it acquired on failure itself, or registers it with `ctx.defer`.
   */
  connect(ctx: CallContext): Promise<ConnectedCall>;
}
