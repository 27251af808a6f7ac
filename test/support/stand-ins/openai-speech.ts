/**
 * A STAND-IN for an OpenAI-compatible speech server (OpenAI, Kokoro-FastAPI, speaches), for tests:
 * `POST /v1/audio/speech` with JSON `{model, input, voice, response_format, speed}`, answered as
 * OpenAI documents it: `pcm` is raw s16le mono at 24 kHz, `wav` a WAV stream whose sizes are
 * 0xFFFFFFFF (it is written before the length is known), both sent chunked in several pieces;
 * errors are `{error: {message, type, param, code}}` with 400 (a bad voice or input), 404 (an
 * unknown model), 401 (a wrong key). The speech is real: espeak-ng speaks `input`.
 */
import type { ServerResponse } from 'node:http';
import { speakPcm, wavFile, type WavDataSize } from './speech-audio.js';
import { deliver, replyJson, startStandIn, type Delivery, type RecordedRequest, type StandInServer } from './stream.js';

export const OPENAI_STAND_IN_VOICES: Readonly<Record<string, string>> = { alloy: 'en-us', nova: 'en-gb' };
export const OPENAI_STAND_IN_MODELS = ['tts-1', 'kokoro'];

export interface OpenAiStandInBehaviour extends Delivery {
  /** Answer every request with this status and body instead of speech. */
  readonly fail?: { readonly status: number; readonly body: unknown };
  /** The WAV data size the `wav` replies carry (default `streamed`). */
  readonly wavSize?: WavDataSize;
  readonly wavTrailer?: boolean;
}

export interface OpenAiStandIn extends StandInServer {
  /** Changed by tests between requests. */
  behaviour: OpenAiStandInBehaviour;
}

export async function startOpenAiStandIn(options: { apiKey?: string } = {}): Promise<OpenAiStandIn> {
  const state: { behaviour: OpenAiStandInBehaviour } = { behaviour: {} };
  const handle = async (record: RecordedRequest, res: ServerResponse): Promise<void> => {
    const b = state.behaviour;
    const error = (status: number, message: string, param: string | null, code: string | null = null): void =>
      replyJson(res, status, { error: { message, type: 'invalid_request_error', param, code } });
    if (record.url !== '/v1/audio/speech') return error(404, `Invalid URL (POST ${record.url})`, null);
    if (options.apiKey !== undefined && record.headers.authorization !== `Bearer ${options.apiKey}`) {
      return error(401, 'Incorrect API key provided.', null, 'invalid_api_key');
    }
    if (b.fail) return replyJson(res, b.fail.status, b.fail.body);
    const body = (record.body ?? {}) as Record<string, unknown>;
    const { model, input, voice, response_format: format = 'mp3', speed = 1 } = body;
    if (typeof model !== 'string' || !OPENAI_STAND_IN_MODELS.includes(model)) return error(404, `The model '${String(model)}' does not exist or you do not have access to it.`, 'model', 'model_not_found');
    if (typeof input !== 'string' || input.trim() === '') return error(400, "[{'type': 'string_too_short', 'loc': ('body', 'input')}]", 'input');
    if (typeof voice !== 'string' || !(voice in OPENAI_STAND_IN_VOICES)) return error(400, `Invalid value for 'voice': '${String(voice)}'.`, 'voice');
    if (format !== 'pcm' && format !== 'wav') return error(400, `response_format ${String(format)} is not served by this stand-in`, 'response_format');
    if (typeof speed !== 'number' || speed < 0.25 || speed > 4) return error(400, 'speed must be between 0.25 and 4.0', 'speed');
    const pcm = await speakPcm(input, 24_000, { voice: OPENAI_STAND_IN_VOICES[voice]!, wordsPerMinute: 175 * speed });
    if (format === 'pcm') return deliver(record, res, 'audio/pcm', pcm, b);
    return deliver(record, res, 'audio/wav', wavFile(pcm, 24_000, b.wavSize ?? 'streamed', b.wavTrailer), b);
  };
  // The handler reads the behaviour from this object, so a test's assignment takes effect.
  const standIn: OpenAiStandIn = Object.assign(state, await startStandIn(handle));
  return standIn;
}
