/**
 * A recording offer as the call level sees it: the streams a recording client (a SIPREC SRC, or
 * any source that sends one stream per party) offers, and which party each stream carries. The
 * SIP edge parses the protocol's body (RFC 7866 multipart, RFC 7865 metadata) into this; the call
 * level records it without knowing where it came from.
 */

/** Who sends a stream right now, as far as the offer says. */
export interface RecordedParticipant {
  readonly name?: string;
  /** Address of record (a SIP or tel URI). */
  readonly aor?: string;
}

/** One audio `m=` line of the offer. */
export interface RecordedStream {
  /** Index of the m= line among all m= lines of the SDP. */
  readonly mediaIndex: number;
  /** The party this stream carries; stable for the whole call (re-offers keep it). */
  readonly party: string;
  readonly participant?: RecordedParticipant;
}

export interface RecordingOffer {
  /** The SDP of the offer (the body's SDP part). */
  readonly sdp: string;
  /** Audio streams in m= line order. */
  readonly streams: readonly RecordedStream[];
  /**
   * Why the offer's party names are only positional (metadata missing, unusable or not
   * well-formed): the call goes on with `caller`/`callee`/`partyN`, and this is reported.
   */
  readonly metadataWarning?: string;
}
