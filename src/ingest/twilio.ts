/**
 * `/v1/twilio`: Twilio Media Streams. Text JSON messages only: `connected`, `start` (tracks,
 * mediaFormat audio/x-mulaw 8000 Hz mono, customParameters), `media` (base64 µ-law per track),
 * `dtmf`, `mark`, `stop`. The inbound track is the party `caller`, the outbound one `callee`;
 * `stop` (or the socket closing) ends the call. `customParameters.language` (optional) sets the
 * Whisper language. Twilio takes no transcription replies: the server only sends error messages.
 */
import type { WebSocket } from 'ws';
import { decodeUlaw } from '../audio/g711.js';
import type { IngestCall } from './call.js';
import {
  CloseCode,
  DTMF_DIGIT,
  optionalNumber,
  optionalObject,
  optionalString,
  parseJsonObject,
  ProtocolError,
  whisperLanguage,
} from './common.js';
import { IngestConnection, type ConnectionHost } from './connection.js';

/** Twilio's track names (`inbound` in start and media, `inbound_track` in dtmf) → party. */
const TRACK_PARTY: Readonly<Record<string, string>> = {
  inbound: 'caller',
  inbound_track: 'caller',
  outbound: 'callee',
  outbound_track: 'callee',
};

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface TwilioStart {
  readonly streamSid?: string;
  readonly callSid?: string;
  /** Parties in track order: `caller` (inbound) and/or `callee` (outbound). */
  readonly parties: readonly string[];
  readonly language?: string;
}

export type TwilioMessage =
  | { readonly event: 'connected' | 'mark' }
  | { readonly event: 'start'; readonly start: TwilioStart }
  | { readonly event: 'media'; readonly party: string; readonly payload: Uint8Array }
  | { readonly event: 'dtmf'; readonly party: string; readonly digit: string }
  | { readonly event: 'stop' };

function partyOf(track: string | undefined, where: string): string {
  const party = TRACK_PARTY[track ?? 'inbound'];
  if (party === undefined) throw new ProtocolError(CloseCode.invalidPayload, `${where}.track must be inbound or outbound`);
  return party;
}

/** Strict base64 (Node's decoder skips what it does not know, which would hide corrupt payloads). */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !BASE64.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

function parseStart(msg: Record<string, unknown>): TwilioStart {
  const start = optionalObject(msg, 'start', 'message');
  if (!start) throw new ProtocolError(CloseCode.invalidPayload, 'start message without a start object');
  const where = 'start';
  const streamSid = optionalString(start, 'streamSid', where) ?? optionalString(msg, 'streamSid', 'message');
  const callSid = optionalString(start, 'callSid', where);
  optionalString(start, 'accountSid', where);
  const tracks = start.tracks ?? ['inbound'];
  if (!Array.isArray(tracks) || tracks.length === 0 || tracks.length > 2 || !tracks.every((t) => typeof t === 'string')) {
    throw new ProtocolError(CloseCode.invalidPayload, 'start.tracks must be a list of inbound and/or outbound');
  }
  const parties = [...new Set((tracks as string[]).map((t) => partyOf(t, 'start.tracks[]')))];
  const format = optionalObject(start, 'mediaFormat', where);
  if (format) {
    const encoding = optionalString(format, 'encoding', 'start.mediaFormat');
    const sampleRate = optionalNumber(format, 'sampleRate', 'start.mediaFormat');
    const channels = optionalNumber(format, 'channels', 'start.mediaFormat');
    if (encoding !== undefined && encoding.toLowerCase() !== 'audio/x-mulaw') {
      throw new ProtocolError(CloseCode.unsupported, 'start.mediaFormat.encoding must be audio/x-mulaw');
    }
    if (sampleRate !== undefined && sampleRate !== 8000) throw new ProtocolError(CloseCode.unsupported, 'start.mediaFormat.sampleRate must be 8000');
    if (channels !== undefined && channels !== 1) throw new ProtocolError(CloseCode.unsupported, 'start.mediaFormat.channels must be 1');
  }
  const custom = optionalObject(start, 'customParameters', where);
  const tag = custom && typeof custom.language === 'string' ? custom.language : undefined;
  const language = tag !== undefined ? whisperLanguage(tag) : undefined;
  return {
    ...(streamSid !== undefined ? { streamSid } : {}),
    ...(callSid !== undefined ? { callSid } : {}),
    parties,
    ...(language !== undefined ? { language } : {}),
  };
}

/** One Twilio message; throws `ProtocolError` for anything malformed or unknown. */
export function parseTwilioMessage(text: string): TwilioMessage {
  const msg = parseJsonObject(text, 'message');
  const event = msg.event;
  if (typeof event !== 'string') throw new ProtocolError(CloseCode.invalidPayload, 'message.event must be a string');
  switch (event) {
    case 'connected':
    case 'mark':
      return { event };
    case 'start':
      return { event, start: parseStart(msg) };
    case 'media': {
      const media = optionalObject(msg, 'media', 'message');
      if (!media) throw new ProtocolError(CloseCode.invalidPayload, 'media message without a media object');
      const party = partyOf(optionalString(media, 'track', 'media'), 'media');
      const payload = optionalString(media, 'payload', 'media');
      if (payload === undefined) throw new ProtocolError(CloseCode.invalidPayload, 'media.payload is missing');
      const bytes = decodeBase64(payload);
      if (!bytes) throw new ProtocolError(CloseCode.invalidPayload, 'media.payload is not valid base64');
      return { event, party, payload: bytes };
    }
    case 'dtmf': {
      const dtmf = optionalObject(msg, 'dtmf', 'message');
      if (!dtmf) throw new ProtocolError(CloseCode.invalidPayload, 'dtmf message without a dtmf object');
      const party = partyOf(optionalString(dtmf, 'track', 'dtmf'), 'dtmf');
      const digit = optionalString(dtmf, 'digit', 'dtmf');
      if (digit === undefined || !DTMF_DIGIT.test(digit)) throw new ProtocolError(CloseCode.invalidPayload, 'dtmf.digit must be one of 0-9, *, #, A-D');
      return { event, party, digit };
    }
    case 'stop':
      return { event };
    default:
      throw new ProtocolError(CloseCode.unsupported, `unknown event ${JSON.stringify(event.slice(0, 32))}`);
  }
}

export class TwilioConnection extends IngestConnection {
  constructor(ws: WebSocket, host: ConnectionHost) {
    super(ws, host, 'twilio');
  }

  protected handle(data: Buffer, isBinary: boolean): void {
    if (isBinary) throw new ProtocolError(CloseCode.unsupported, 'Media Streams messages are JSON text; binary frames are not accepted');
    const msg = parseTwilioMessage(data.toString('utf8'));
    if (msg.event === 'connected' || msg.event === 'mark') return;
    if (msg.event === 'start') {
      this.begin(msg.start);
      return;
    }
    const call = this.call;
    if (!call) throw new ProtocolError(CloseCode.policy, `${msg.event} before the start message`);
    switch (msg.event) {
      case 'media':
        this.media(call, msg.party, msg.payload);
        return;
      case 'dtmf':
        call.dtmf(msg.party, msg.digit, 0);
        return;
      case 'stop':
        void this.stop();
        return;
    }
  }

  private begin(start: TwilioStart): void {
    const externalId = start.callSid ?? start.streamSid;
    const call = this.startCall({
      platform: 'twilio',
      ...(externalId !== undefined ? { externalId } : {}),
      parties: start.parties.map((name) => ({ name, sampleRate: 8000 })),
      ...(start.language !== undefined ? { language: start.language } : {}),
    });
    call.log.info({ callSid: start.callSid, streamSid: start.streamSid, parties: start.parties }, 'ingest twilio started');
  }

  private media(call: IngestCall, party: string, payload: Uint8Array): void {
    if (!call.hasParty(party)) throw new ProtocolError(CloseCode.invalidPayload, `media for the ${party === 'caller' ? 'inbound' : 'outbound'} track, which start did not announce`);
    call.write(party, decodeUlaw(payload));
  }
}
