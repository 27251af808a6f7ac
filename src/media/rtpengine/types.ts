/**
 * Typed requests and replies of rtpengine's ng control protocol, as rtpengine 10.5 speaks it.
 *
 * Keys keep their ng spelling (`call-id`, `from-tag`, `ICE`, `transport-protocol`…), so what is
 * written here reads like rtpengine's own documentation (docs/ng_control_protocol.md) and like
 * rtpengine's logs. Request types leave out `command`: the client adds it. Only the keys the
 * gateway uses, or that are needed to use a command sensibly, are typed; anything else goes
 * through `RtpengineClient.command()`.
 *
 * Reply types describe what rtpengine 10.5 was seen to send. The client checks the keys it
 * promises for each command (e.g. `sdp` of an offer); nested statistics are typed as sent but
 * not checked one by one.
 */
import type { BencodeInput, BencodeValue } from './bencode.js';

// ---------------------------------------------------------------------------------------------
// building blocks

/** ng `flags` entries. Spaces may also be written as hyphens. The listed ones are those the gateway uses. */
export type NgFlag =
  | 'allow transcoding'
  | 'all'
  | 'asymmetric'
  | 'fatal'
  | 'inactive'
  | 'original sendrecv'
  | 'port latching'
  | 'RTCP mirror'
  | 'SIP source address'
  | 'strict source'
  | 'symmetric'
  | 'trust address'
  | (string & {});

/** ng `replace` entries: which parts of the SDP rtpengine rewrites with its own address. */
export type NgReplaceFlag =
  | 'origin'
  | 'session-connection'
  | 'session connection'
  | 'SDP-version'
  | 'username'
  | 'session-name'
  | 'zero-address'
  | 'force-increment-sdp-ver'
  | (string & {});

export type NgIceMode = 'remove' | 'force' | 'default' | 'force-relay' | 'optional';
export type NgTransportProtocol = 'RTP/AVP' | 'RTP/AVPF' | 'RTP/SAVP' | 'RTP/SAVPF';

/**
 * ng `codec` dictionary. Each entry is a codec name, optionally with format parameters
 * (`opus/48000/2`). Names are case-sensitive (`PCMU`, `opus`, `telephone-event`).
 */
export interface NgCodecOptions {
  /** Codecs to add, engaging the transcoding engine when the offer lacked them (offer / subscribe request). */
  readonly transcode?: readonly string[];
  /** Removed from the outgoing SDP but still accepted from the offerer for transcoding. */
  readonly mask?: readonly string[];
  /** Removed as if never offered. `all` / `full` remove everything not re-added. */
  readonly strip?: readonly string[];
  /** Kept, in this order, first one preferred (like `except`, plus reordering). */
  readonly offer?: readonly string[];
  /** Still offered, but accepted towards the offerer even when the answerer rejects them. */
  readonly accept?: readonly string[];
  /** Like `mask`, and engages transcoding. */
  readonly consume?: readonly string[];
  /** Whitelist kept after `strip: ['all']` / `mask: ['all']`. */
  readonly except?: readonly string[];
  /** Codec options (e.g. bitrate) for implicitly accepted codecs: `opus/48000/1/16000`. */
  readonly set?: readonly string[];
}

/** Selects a call, and optionally one participant of it, by SIP identifiers. */
export interface NgCallRef {
  /** SIP Call-ID (rtpengine's call key). */
  readonly 'call-id': string;
  /** SIP From tag: the participant that the command acts on or on behalf of. */
  readonly 'from-tag'?: string;
  /** SIP To tag: the other participant (or a subscription's own tag). */
  readonly 'to-tag'?: string;
  /** SIP Via branch: refines matching of calls and branches. */
  readonly 'via-branch'?: string;
}

/** Keys shared by messages that carry an SDP to rewrite (`offer`, `answer`, `subscribe request` options). */
export interface NgSdpProcessing {
  readonly flags?: readonly NgFlag[];
  readonly replace?: readonly NgReplaceFlag[];
  readonly ICE?: NgIceMode;
  /** Rewrite the SDP's transport (`RTP/AVP` to talk plain RTP); `accept` only in `answer`. */
  readonly 'transport-protocol'?: NgTransportProtocol | 'accept';
  readonly codec?: NgCodecOptions;
  /** Address used instead of the SDP's (IPv4 dotted quad or RFC 5952 IPv6). */
  readonly 'media-address'?: string;
  /** Primary address family of the rewritten SDP. */
  readonly 'address family'?: 'IP4' | 'IP6';
  /** Two logical interface names configured with `--interface`: [from side, to side]. */
  readonly direction?: readonly [string, string];
  /** Source of the SIP message: [address family, address]. */
  readonly 'received-from'?: readonly ['IP4' | 'IP6', string];
  readonly 'rtcp-mux'?: readonly ('offer' | 'require' | 'demux' | 'accept' | 'reject')[];
  readonly DTLS?: 'off' | 'no' | 'disable' | 'passive' | 'active';
  readonly SDES?: readonly string[];
  /** Packetisation time (ms) towards the receiver of this message; engages repacketisation. */
  readonly ptime?: number;
  /** Free-form label for the participant, reported back in `query` and logs. */
  readonly label?: string;
  readonly 'record call'?: 'yes' | 'no' | 'on' | 'off';
  readonly 'audio player'?: 'default' | 'transcoding' | 'off' | 'always';
}

// ---------------------------------------------------------------------------------------------
// requests

/** `offer`: anchor a new (or re-offered) call leg. The SDP is the offerer's (From party). */
export interface NgOfferRequest extends NgSdpProcessing {
  readonly 'call-id': string;
  readonly 'from-tag': string;
  readonly sdp: string;
  readonly 'via-branch'?: string;
  /** Usually absent on an initial offer; present on re-offers within a dialog. */
  readonly 'to-tag'?: string;
}

/** `answer`: the answerer's SDP for the offer made by `from-tag`. */
export interface NgAnswerRequest extends NgSdpProcessing {
  readonly 'call-id': string;
  readonly 'from-tag': string;
  readonly 'to-tag': string;
  readonly sdp: string;
  readonly 'via-branch'?: string;
}

/**
 * `delete`: end a call (or, with tags / via-branch, one branch). Without `fatal` in `flags` an
 * unknown call-id is an `ok` reply with a `warning`, not an error.
 */
export interface NgDeleteRequest {
  readonly 'call-id': string;
  readonly 'from-tag'?: string;
  readonly 'to-tag'?: string;
  readonly 'via-branch'?: string;
  readonly flags?: readonly ('fatal' | (string & {}))[];
  /** Seconds before the call is freed; 0 = now (overrides `--delete-delay`). */
  readonly 'delete delay'?: number;
}

/** `query`: statistics and participants of one call. */
export interface NgQueryRequest {
  readonly 'call-id': string;
  readonly 'from-tag'?: string;
  readonly 'to-tag'?: string;
}

/** `list`: active call-ids, at most `limit` (rtpengine's default 32). */
export interface NgListRequest {
  readonly limit?: number;
}

/**
 * `subscribe request`: a sendonly offer SDP carrying a copy of one or more participants' media.
 * Select one participant with `from-tag`, several with `from-tags` (one `m=` section each, in
 * that order) or all offer/answer participants with `flags: ['all']`.
 */
export interface NgSubscribeRequestRequest extends Omit<NgSdpProcessing, 'transport-protocol'> {
  readonly 'call-id': string;
  readonly 'from-tag'?: string;
  readonly 'from-tags'?: readonly string[];
  /** The subscription's own tag (generated by rtpengine when absent). Reusing one replaces its subscriptions. */
  readonly 'to-tag'?: string;
  readonly 'transport-protocol'?: NgTransportProtocol;
  /** Label for the new subscription participant. */
  readonly 'set-label'?: string;
}

/**
 * `subscribe answer`: the subscriber's recvonly answer SDP (its own address/port). It must
 * accept every codec of the subscription offer (telephone-event included) unless `flags`
 * contains `allow transcoding`.
 */
export interface NgSubscribeAnswerRequest {
  readonly 'call-id': string;
  readonly 'to-tag': string;
  readonly sdp: string;
  readonly flags?: readonly NgFlag[];
}

/**
 * `unsubscribe`: stop the subscription identified by `to-tag`. With `from-tag` too, only the flow
 * from that participant to `to-tag` stops (an offer/answer party stops hearing the other; the
 * other's forks go on), and `subscribe request` with the same two tags restores it.
 */
export interface NgUnsubscribeRequest {
  readonly 'call-id': string;
  readonly 'to-tag': string;
  readonly 'from-tag'?: string;
}

/** How `play media` / `stop media` / `block media` pick the participant(s). */
export interface NgParticipantSelector {
  readonly 'call-id': string;
  /** The participant (for `play media`: the one who HEARS the media). */
  readonly 'from-tag'?: string;
  /** Select by the label given at offer/answer time instead of the tag. */
  readonly label?: string;
  /** Select by SDP media address. */
  readonly address?: string;
  /** `all` for every participant. */
  readonly flags?: readonly NgFlag[];
}

/** `play media`: rtpengine plays a file (on its own filesystem) or a blob into a participant's leg. */
export type NgPlayMediaRequest = NgParticipantSelector &
  (
    | { readonly file: string; readonly blob?: never; readonly 'db-id'?: never }
    | { readonly blob: Uint8Array; readonly file?: never; readonly 'db-id'?: never }
    | { readonly 'db-id': number; readonly file?: never; readonly blob?: never }
  ) & {
    /** Times to play the media; default 1. */
    readonly 'repeat-times'?: number;
    /** Frame position to start at. */
    readonly 'start-pos'?: number;
  };

/** `stop media`: stop what `play media` started for the same participant. */
export type NgStopMediaRequest = NgParticipantSelector;

/**
 * `block media` / `unblock media`: stop (resume) forwarding media sent BY the selected
 * participant. With `to-tag` only the flow towards that participant (e.g. one subscription).
 */
export interface NgBlockMediaRequest extends NgParticipantSelector {
  readonly 'to-tag'?: string;
  readonly 'to-label'?: string;
  readonly all?: 'all' | 'offer-answer' | 'except-offer-answer' | 'flows';
}
export type NgUnblockMediaRequest = NgBlockMediaRequest;

// ---------------------------------------------------------------------------------------------
// replies

/** A successful reply. `warning` reports a non-fatal problem (e.g. deleting an unknown call). */
export interface NgOkReply {
  readonly result: 'ok';
  readonly warning?: string;
}

/** rtpengine refused the command; `error-reason` is its human-readable text. */
export interface NgErrorReply {
  readonly result: 'error';
  readonly 'error-reason': string;
}

/** The reply to `ping`. */
export interface NgPongReply {
  readonly result: 'pong';
}

/** Sent instead of an error when the request announced `supports: ['load limit']`. */
export interface NgLoadLimitReply {
  readonly result: 'load limit';
  readonly message?: string;
}

/** Any reply, discriminated by `result`. */
export type NgReply = NgOkReply | NgErrorReply | NgPongReply | NgLoadLimitReply;

/** `offer` / `answer`: the rewritten SDP to forward to the other party. */
export interface NgOfferReply extends NgOkReply {
  readonly sdp: string;
}
export type NgAnswerReply = NgOfferReply;

/** `subscribe request`: the sendonly offer SDP and the tags of the subscription. */
export interface NgSubscribeRequestReply extends NgOkReply {
  readonly sdp: string;
  /** The subscription's tag: generated by rtpengine unless the request gave one. */
  readonly 'to-tag': string;
  /** Participants subscribed to, in the order of the SDP's `m=` sections. */
  readonly 'from-tags': readonly string[];
  /** Present when exactly one participant was subscribed to. */
  readonly 'from-tag'?: string;
}

export interface NgPacketStats {
  readonly packets: number;
  readonly bytes: number;
  readonly errors: number;
}

export interface NgEndpoint {
  readonly family?: 'IPv4' | 'IPv6';
  readonly address?: string;
  readonly port?: number;
}

/** One packet stream (RTP or RTCP) of a media section. */
export interface NgStreamInfo {
  readonly 'local port'?: number;
  readonly 'local address'?: string;
  readonly family?: string;
  readonly endpoint?: NgEndpoint;
  readonly 'advertised endpoint'?: NgEndpoint;
  readonly 'crypto suite'?: string;
  readonly 'last packet'?: number;
  /** `RTP`, `RTCP`, `filled`, `confirmed`, … */
  readonly flags?: readonly string[];
  readonly stats?: NgPacketStats;
}

export interface NgMediaInfo {
  readonly index: number;
  readonly type: string;
  readonly protocol?: string;
  readonly streams?: readonly NgStreamInfo[];
  /** `initialized`, `send`, `recv`, `rtcp-mux`, `ICE`, … */
  readonly flags?: readonly string[];
}

/** A participant of a call (a SIP tag, or a subscription's tag). */
export interface NgTagInfo {
  readonly tag: string;
  readonly created?: number;
  readonly label?: string;
  readonly 'in dialogue with'?: string;
  /** Whose media this participant receives; `type` is `offer/answer` or `pub/sub`. */
  readonly subscriptions?: readonly { readonly tag: string; readonly type: string }[];
  /** Who receives this participant's media. */
  readonly subscribers?: readonly { readonly tag: string; readonly type: string }[];
  readonly medias?: readonly NgMediaInfo[];
}

/** Call statistics as `query` returns them (and `delete`, sometimes: see NgDeleteReply). */
export interface NgCallStats {
  /** UNIX seconds. */
  readonly created: number;
  readonly created_us?: number;
  readonly 'last signal'?: number;
  /** Participants by tag. */
  readonly tags: { readonly [tag: string]: NgTagInfo };
  readonly totals?: { readonly RTP: NgPacketStats; readonly RTCP: NgPacketStats };
  readonly SSRC?: { readonly [ssrc: string]: BencodeValue };
}

export interface NgQueryReply extends NgOkReply, NgCallStats {}

/**
 * `delete`: rtpengine 10.5 adds the call's statistics when the request named a `from-tag`
 * and sends a bare `ok` otherwise; an unknown call is `ok` with a `warning`.
 */
export interface NgDeleteReply extends NgOkReply, Partial<NgCallStats> {}

export interface NgListReply extends NgOkReply {
  readonly calls: readonly string[];
}

export interface NgPlayMediaReply extends NgOkReply {
  /** Length of the media in ms, when rtpengine could determine it. */
  readonly duration?: number;
}

export interface NgStopMediaReply extends NgOkReply {
  readonly 'last-frame-pos'?: number;
}

/** `statistics`: the same content as `rtpengine-ctl list jsonstats`, left loosely typed. */
export interface NgStatisticsReply extends NgOkReply {
  readonly statistics: { readonly [section: string]: BencodeValue };
}

/** Untyped parameters for `RtpengineClient.command()`. */
export type NgParams = { readonly [key: string]: BencodeInput | undefined };

/** An untyped successful reply. */
export type NgDictReply = NgOkReply & { readonly [key: string]: BencodeValue | undefined };
