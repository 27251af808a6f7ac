/**
 * The gateway's voices offered to jambonz as a custom TTS vendor: `POST /v1/tts` with
 * `Authorization: Bearer <key>` and `{language, voice, type: "text"|"ssml", text}`, answered with
 * `audio/l16;rate=N` (16-bit little-endian PCM, which is what jambonz stores and plays for l16
 * replies), streamed as it is synthesized. Errors are JSON `{error}`: 400 for a bad request or a
 * language/voice the synthesizers lack, 401 for a missing or unknown key, 502 when every
 * synthesizer failed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Resampler } from '../audio/resampler.js';
import { WhisperlineError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Synthesizer } from '../tts/synthesizer.js';
import { equalSecret } from '../http/auth.js';
import { sendJson, type HttpRoute } from '../http/server.js';

/** A request body larger than this is refused before it is read on (JSON with the text). */
const MAX_BODY_BYTES = 64 * 1024;

export interface TtsServeOptions {
  readonly synthesizer: () => Synthesizer;
  readonly apiKeys: readonly string[];
  readonly sampleRate: 8000 | 16000 | 24000;
  readonly logger: Logger;
}

interface TtsRequestBody {
  readonly text: string;
  readonly language?: string;
  readonly voice?: string;
  readonly type?: 'text' | 'ssml';
}

export function ttsRoutes(options: TtsServeOptions): HttpRoute[] {
  if (options.apiKeys.length === 0) return [];
  return [{ method: 'POST', path: '/v1/tts', handle: (req, res) => serve(options, req, res) }];
}

async function serve(options: TtsServeOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const auth = req.headers.authorization ?? '';
  const key = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
  if (!options.apiKeys.some((k) => equalSecret(k, key))) {
    sendJson(res, 401, { error: 'missing or unknown API key' }, { 'www-authenticate': 'Bearer realm="whisperline"' });
    return;
  }
  let body: TtsRequestBody;
  try {
    body = parseBody(await readBody(req));
  } catch (err) {
    sendJson(res, (err as { status?: number }).status ?? 400, { error: (err as Error).message });
    return;
  }
  const abort = new AbortController();
  res.once('close', () => abort.abort());
  // jambonz sends tags (en-US): the synthesizers take ISO 639-1.
  const audio = options.synthesizer().synthesize({
    text: body.text,
    ...(body.language !== undefined ? { language: body.language.split(/[-_]/)[0]!.toLowerCase() } : {}),
    ...(body.voice !== undefined ? { voice: body.voice } : {}),
    ...(body.type === 'ssml' ? { ssml: true } : {}),
    signal: abort.signal,
  });
  const iterator = audio[Symbol.asyncIterator]();
  let first: IteratorResult<{ samples: Int16Array; sampleRate: number }>;
  try {
    first = await iterator.next();
  } catch (err) {
    const e = err instanceof WhisperlineError ? err : new WhisperlineError('TTS_FAILED', String(err));
    options.logger.info({ code: e.code, err: e.message }, 'jambonz TTS request failed');
    sendJson(res, e.code === 'TTS_INVALID' ? 400 : 502, { error: e.message });
    return;
  }
  const rate = options.sampleRate;
  res.writeHead(200, { 'content-type': `audio/l16;rate=${rate}`, 'cache-control': 'no-store' });
  if (first.done) {
    res.end();
    return;
  }
  const resampler = first.value.sampleRate === rate ? undefined : new Resampler(first.value.sampleRate, rate);
  const write = (samples: Int16Array): void => {
    const out = resampler ? resampler.process(samples) : samples;
    res.write(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  };
  try {
    write(first.value.samples);
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      write(next.value.samples);
    }
    res.end();
  } catch (err) {
    // The status line is out: all that can be said now is that the body is cut short.
    options.logger.warn({ err: (err as Error).message }, 'jambonz TTS reply cut short');
    res.destroy();
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) return reject(Object.assign(new Error(`request body over ${MAX_BODY_BYTES} bytes`), { status: 413 }));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(Object.assign(new Error(`request body over ${MAX_BODY_BYTES} bytes`), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(text: string): TtsRequestBody {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('the body is not JSON: expected {language, voice, type, text}');
  }
  if (typeof value !== 'object' || value === null) throw new Error('the body is not a JSON object: expected {language, voice, type, text}');
  const b = value as Record<string, unknown>;
  if (typeof b.text !== 'string' || b.text.trim() === '') throw new Error('text is missing or empty');
  for (const k of ['language', 'voice'] as const) {
    if (b[k] !== undefined && typeof b[k] !== 'string') throw new Error(`${k} must be a string`);
  }
  if (b.type !== undefined && b.type !== 'text' && b.type !== 'ssml') throw new Error('type must be "text" or "ssml"');
  return {
    text: b.text,
    ...(typeof b.language === 'string' && b.language !== '' ? { language: b.language } : {}),
    ...(typeof b.voice === 'string' && b.voice !== '' ? { voice: b.voice } : {}),
    ...(b.type === 'ssml' ? { type: 'ssml' as const } : {}),
  };
}
