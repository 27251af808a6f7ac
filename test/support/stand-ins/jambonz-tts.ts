/**
 * A STAND-IN for a jambonz custom TTS server, for tests: it answers `POST` with JSON
 * `{language, voice, type: "text"|"ssml", text}` and `Authorization: Bearer <key>` as jambonz's
 * API documents, with real espeak-ng speech in the format its `Content-Type` names:
 * `audio/l16;rate=N` (raw s16, little-endian as jambonz plays it, or big-endian on request),
 * `audio/wav`, `audio/mpeg` (encoded by lame or ffmpeg, where one is installed). Errors are plain
 * HTTP statuses with a text body: jambonz's API defines no error format.
 */
import type { ServerResponse } from 'node:http';
import { espeakWav, mp3Of, speakPcm, wavFile } from './speech-audio.js';
import { deliver, startStandIn, type Delivery, type RecordedRequest, type StandInServer } from './stream.js';

/** The stand-in's voices → espeak-ng voices. */
export const JAMBONZ_STAND_IN_VOICES: Readonly<Record<string, string>> = { 'en-US-Standard-A': 'en-us', 'en-GB-Standard-B': 'en-gb', 'de-DE-Standard-A': 'de' };

export interface JambonzStandInBehaviour extends Delivery {
  /** The reply format (default l16 at 16 kHz). */
  readonly format?: 'l16' | 'wav' | 'mp3';
  readonly rate?: number;
  /** Send L16 big-endian (RFC 3551) instead of little-endian. */
  readonly bigEndian?: boolean;
  /** Override the Content-Type header (spelling variants, an unsupported type). */
  readonly contentType?: string;
  /** Answer every request with this status and text. */
  readonly fail?: { readonly status: number; readonly text: string };
}

export interface JambonzStandIn extends StandInServer {
  behaviour: JambonzStandInBehaviour;
}

export async function startJambonzStandIn(options: { apiKey: string }): Promise<JambonzStandIn> {
  const state: { behaviour: JambonzStandInBehaviour } = { behaviour: {} };
  const text = (res: ServerResponse, status: number, body: string): void => {
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(body);
  };
  const handle = async (record: RecordedRequest, res: ServerResponse): Promise<void> => {
    const b = state.behaviour;
    if (record.headers.authorization !== `Bearer ${options.apiKey}`) return text(res, 401, 'unauthorized');
    if (b.fail) return text(res, b.fail.status, b.fail.text);
    const body = (record.body ?? {}) as Record<string, unknown>;
    const { language, voice, type, text: input } = body;
    if (typeof language !== 'string' || typeof voice !== 'string' || (type !== 'text' && type !== 'ssml') || typeof input !== 'string' || input.trim() === '') {
      return text(res, 400, 'expected {language, voice, type: "text"|"ssml", text}');
    }
    const espeakVoice = voice === '' ? 'en' : JAMBONZ_STAND_IN_VOICES[voice];
    if (espeakVoice === undefined) return text(res, 400, `unknown voice ${voice}`);
    const speak = { voice: espeakVoice, ssml: type === 'ssml' };
    const format = b.format ?? 'l16';
    if (format === 'l16') {
      const rate = b.rate ?? 16_000;
      const pcm = await speakPcm(input, rate, { ...speak, big: b.bigEndian ?? false });
      return deliver(record, res, b.contentType ?? `audio/l16;rate=${rate}`, pcm, b);
    }
    if (format === 'wav') {
      const rate = b.rate ?? 16_000;
      return deliver(record, res, b.contentType ?? 'audio/wav', wavFile(await speakPcm(input, rate, speak), rate), b);
    }
    return deliver(record, res, b.contentType ?? 'audio/mpeg', await mp3Of(await espeakWav(input, speak)), { pieceBytes: 1500, ...b });
  };
  const standIn: JambonzStandIn = Object.assign(state, await startStandIn(handle));
  return standIn;
}
