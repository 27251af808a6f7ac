/**
 * `/v1/listen`: jambonz `listen` and FreeSWITCH mod_audio_fork. The client sends one text frame of
 * JSON metadata (call attributes, `sampleRate`, `mixType`, the application's own metadata), then
 * binary frames of raw s16le PCM: mono/mixed = one party (`caller`), stereo = interleaved caller
 * (left) and callee (right). Text frames after the metadata must be JSON objects: jambonz sends
 * `{event:"dtmf", dtmf, duration}` with `passDtmf` (→ a `dtmf` event, duration in 8 kHz samples)
 * and mod_audio_fork `send_text` / stop metadata, which are accepted and ignored.
 *
 * The server sends `{type:"transcription", data:{...}}` for each final.
 */
import type { WebSocket } from 'ws';
import type { TranscriptEvent } from '../transcripts/events.js';
import type { IngestCall } from './call.js';
import {
  CloseCode,
  DTMF_DIGIT,
  optionalString,
  parseJsonObject,
  pcmRate,
  ProtocolError,
  whisperLanguage,
} from './common.js';
import { IngestConnection, type ConnectionHost } from './connection.js';
import { PcmReader } from '../audio/pcm.js';

/** Subprotocols of jambonz and mod_audio_fork. */
export const LISTEN_SUBPROTOCOLS: readonly string[] = ['audio.jambonz.org', 'audio.drachtio.org'];

export type MixType = 'mono' | 'mixed' | 'stereo';
const MIX_TYPES: readonly MixType[] = ['mono', 'mixed', 'stereo'];

export interface ListenMetadata {
  readonly callSid?: string;
  readonly direction?: string;
  readonly sampleRate: number;
  readonly mixType: MixType;
  /** Whisper language, when the metadata names one Whisper knows (`language: "de-DE"`). */
  readonly language?: string;
}

/**
 * The metadata frame. `sampleRate` and `mixType` default to the URL's query parameters (for
 * mod_audio_fork, whose metadata is only what the application passes), then to 8000 and mono.
 */
export function parseListenMetadata(text: string, query: URLSearchParams): ListenMetadata {
  const meta = parseJsonObject(text, 'metadata');
  const where = 'metadata';
  const callSid = optionalString(meta, 'callSid', where);
  const direction = optionalString(meta, 'direction', where);
  optionalString(meta, 'from', where);
  optionalString(meta, 'to', where);
  const languageTag = optionalString(meta, 'language', where);

  let rateValue: unknown = meta.sampleRate;
  if (rateValue === undefined || rateValue === null) {
    const q = query.get('sampleRate');
    if (q !== null) {
      if (!/^\d{1,9}$/.test(q)) throw new ProtocolError(CloseCode.invalidPayload, 'the sampleRate query parameter must be a number');
      rateValue = Number(q);
    }
  }
  if (rateValue !== undefined && rateValue !== null && (typeof rateValue !== 'number' || !Number.isFinite(rateValue))) {
    throw new ProtocolError(CloseCode.invalidPayload, 'metadata.sampleRate must be a number');
  }
  const sampleRate = pcmRate(rateValue as number | undefined, 8000, 'sampleRate');

  let mix: unknown = meta.mixType ?? query.get('mixType') ?? 'mono';
  if (typeof mix !== 'string') throw new ProtocolError(CloseCode.invalidPayload, 'metadata.mixType must be a string');
  mix = mix.toLowerCase();
  if (!MIX_TYPES.includes(mix as MixType)) {
    throw new ProtocolError(CloseCode.unsupported, `mixType ${JSON.stringify(String(mix).slice(0, 24))} is not supported (mono, mixed or stereo)`);
  }
  const language = languageTag !== undefined ? whisperLanguage(languageTag) : undefined;
  return {
    ...(callSid !== undefined ? { callSid } : {}),
    ...(direction !== undefined ? { direction } : {}),
    sampleRate,
    mixType: mix as MixType,
    ...(language !== undefined ? { language } : {}),
  };
}

/** The reply jambonz takes for a final (one per final, text in `data.transcript`). */
export function listenTranscription(event: TranscriptEvent, callSid: string | undefined): unknown {
  return {
    type: 'transcription',
    data: {
      callId: event.callId,
      ...(callSid !== undefined ? { callSid } : {}),
      seq: event.seq,
      party: event.party,
      channel: event.party === 'callee' ? 2 : 1,
      is_final: event.kind === 'final',
      transcript: event.text,
      confidence: event.confidence,
      language: event.language,
      startMs: event.startMs,
      endMs: event.endMs,
    },
  };
}

export class ListenConnection extends IngestConnection {
  private reader: PcmReader | undefined;
  private parties: readonly string[] = [];

  constructor(
    ws: WebSocket,
    host: ConnectionHost,
    private readonly url: URL,
  ) {
    super(ws, host, 'listen');
  }

  protected handle(data: Buffer, isBinary: boolean): void {
    const call = this.call;
    if (!call) {
      if (isBinary) throw new ProtocolError(CloseCode.policy, 'the first message must be the JSON metadata text frame, not audio');
      this.begin(parseListenMetadata(data.toString('utf8'), this.url.searchParams));
      return;
    }
    if (isBinary) {
      this.audio(call, data);
      return;
    }
    this.control(call, parseJsonObject(data.toString('utf8'), 'text message'));
  }

  private begin(meta: ListenMetadata): void {
    const stereo = meta.mixType === 'stereo';
    this.parties = stereo ? ['caller', 'callee'] : ['caller'];
    this.reader = new PcmReader(this.parties.length);
    const callSid = meta.callSid;
    const call = this.startCall({
      platform: 'listen',
      ...(callSid !== undefined ? { externalId: callSid } : {}),
      parties: this.parties.map((name) => ({ name, sampleRate: meta.sampleRate })),
      ...(meta.language !== undefined ? { language: meta.language } : {}),
      onTranscript: (event) => {
        if (event.kind === 'final') this.send(listenTranscription(event, callSid));
      },
    });
    call.log.info({ callSid, direction: meta.direction, sampleRate: meta.sampleRate, mixType: meta.mixType }, 'ingest listen started');
  }

  private audio(call: IngestCall, data: Buffer): void {
    const channels = this.reader!.read(data);
    for (let c = 0; c < channels.length; c++) call.write(this.parties[c]!, channels[c]!);
  }

  private control(call: IngestCall, message: Record<string, unknown>): void {
    if (message.event !== 'dtmf') {
      this.log.debug({ event: typeof message.event === 'string' ? message.event.slice(0, 32) : undefined }, 'ingest listen text message ignored');
      return;
    }
    const digit = message.dtmf;
    if (typeof digit !== 'string' || !DTMF_DIGIT.test(digit)) throw new ProtocolError(CloseCode.invalidPayload, 'dtmf must be one of 0-9, *, #, A-D');
    // jambonz passes FreeSWITCH's duration: 8 kHz samples, as a number or a numeric string.
    const samples = typeof message.duration === 'number' || typeof message.duration === 'string' ? Number(message.duration) : Number.NaN;
    const durationMs = Number.isFinite(samples) && samples >= 0 ? Math.min(Math.round(samples / 8), 3_600_000) : 0;
    call.dtmf('caller', digit, durationMs);
  }
}
