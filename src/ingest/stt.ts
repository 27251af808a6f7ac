/**
 * `/v1/stt`: the jambonz custom speech-to-text vendor API. The client (jambonz) sends
 * `{type:"start", language, format:"raw", encoding:"LINEAR16", sampleRateHz, interimResults}`, then
 * binary LINEAR16 (s16le mono) frames, then `{type:"stop"}`. The server answers
 * `{type:"transcription", is_final, alternatives:[{transcript, confidence}], channel:1, language}`
 * for each final (and each partial when `interimResults` is true), or `{type:"error", error}`, and
 * closes the socket (1000) after `stop` once the last final is sent.
 */
import type { WebSocket } from 'ws';
import type { TranscriptEvent } from '../transcripts/events.js';
import type { IngestCall } from './call.js';
import {
  CloseCode,
  optionalBoolean,
  optionalNumber,
  optionalString,
  parseJsonObject,
  pcmRate,
  ProtocolError,
  whisperLanguage,
} from './common.js';
import { IngestConnection, type ConnectionHost } from './connection.js';
import { PcmReader } from '../audio/pcm.js';

export interface SttStart {
  /** As the client asked (`en-US`), echoed in every transcription. */
  readonly language?: string;
  /** Whisper's code for it; `auto` when Whisper does not know the tag. */
  readonly whisperLanguage?: string;
  readonly sampleRate: number;
  readonly interimResults: boolean;
}

export type SttMessage = { readonly type: 'start'; readonly start: SttStart } | { readonly type: 'stop' };

/** A text message of the client; throws `ProtocolError` for anything else. */
export function parseSttMessage(text: string): SttMessage {
  const msg = parseJsonObject(text, 'message');
  const type = msg.type;
  if (typeof type !== 'string') throw new ProtocolError(CloseCode.invalidPayload, 'message.type must be a string');
  if (type === 'stop') return { type: 'stop' };
  if (type !== 'start') throw new ProtocolError(CloseCode.unsupported, `unknown message type ${JSON.stringify(type.slice(0, 32))}`);
  const where = 'start';
  const language = optionalString(msg, 'language', where);
  const format = optionalString(msg, 'format', where);
  if (format !== undefined && format.toLowerCase() !== 'raw') throw new ProtocolError(CloseCode.unsupported, 'start.format must be "raw"');
  const encoding = optionalString(msg, 'encoding', where);
  if (encoding !== undefined && encoding.toUpperCase() !== 'LINEAR16') {
    throw new ProtocolError(CloseCode.unsupported, 'start.encoding must be "LINEAR16"');
  }
  const sampleRate = pcmRate(optionalNumber(msg, 'sampleRateHz', where), 8000, 'sampleRateHz');
  const interimResults = optionalBoolean(msg, 'interimResults', where) ?? false;
  const whisper = language !== undefined ? (whisperLanguage(language) ?? 'auto') : undefined;
  return {
    type: 'start',
    start: {
      ...(language !== undefined ? { language } : {}),
      ...(whisper !== undefined ? { whisperLanguage: whisper } : {}),
      sampleRate,
      interimResults,
    },
  };
}

/** The jambonz transcription message for a final or partial. */
export function sttTranscription(event: TranscriptEvent, language: string | undefined): unknown {
  return {
    type: 'transcription',
    is_final: event.kind === 'final',
    alternatives: [{ transcript: event.text, confidence: event.confidence }],
    channel: 1,
    language: language ?? event.language,
  };
}

export class SttConnection extends IngestConnection {
  private readonly reader = new PcmReader(1);
  private stopped = false;

  constructor(ws: WebSocket, host: ConnectionHost) {
    super(ws, host, 'stt');
  }

  protected handle(data: Buffer, isBinary: boolean): void {
    const call = this.call;
    if (isBinary) {
      if (!call) throw new ProtocolError(CloseCode.policy, 'audio before the start message');
      if (!this.stopped) call.write('caller', this.reader.read(data)[0]!);
      return;
    }
    const msg = parseSttMessage(data.toString('utf8'));
    if (msg.type === 'start') {
      this.begin(msg.start);
      return;
    }
    if (!call) throw new ProtocolError(CloseCode.policy, 'stop before the start message');
    this.stopped = true;
    void this.stop();
  }

  private begin(start: SttStart): void {
    const call: IngestCall = this.startCall({
      platform: 'stt',
      parties: [{ name: 'caller', sampleRate: start.sampleRate }],
      ...(start.whisperLanguage !== undefined ? { language: start.whisperLanguage } : {}),
      partials: start.interimResults,
      onTranscript: (event) => {
        if (event.kind === 'final' || start.interimResults) this.send(sttTranscription(event, start.language));
      },
    });
    call.log.info({ language: start.language, sampleRate: start.sampleRate, interimResults: start.interimResults }, 'ingest stt started');
  }
}
