/**
 * A STAND-IN for a LibreTranslate server, not the real one: `GET /languages` lists
 * `{code, name, targets}`, `POST /translate {q, source, target, format, api_key}` answers
 * `{translatedText}` (with `detectedLanguage` for source `auto`), and errors come as LibreTranslate
 * writes them, `{error: "…"}`: 400 for a missing parameter or an unsupported language, 403 for a
 * wrong API key, 429 when the request limit is hit.
 */
import { startStandIn, type RecordedRequest, type StandIn, type StandInReply } from './stand-in.js';

export interface LibreTranslateStandInOptions {
  readonly languages?: ReadonlyArray<{ code: string; name: string; targets?: string[] }>;
  /** The server was started with API keys: this one is required. */
  readonly apiKey?: string;
}

export interface LibreTranslateStandIn extends StandIn {
  /** The server's request limit is exhausted: every /translate answers 429. */
  limited: boolean;
  /** The "model": the translation of `q` into `target`. Default `[target] q`. */
  answer: (q: string, source: string, target: string) => string;
}

export const STAND_IN_LANGUAGES = [
  { code: 'en', name: 'English', targets: ['de', 'es', 'fr', 'zh-Hans'] },
  { code: 'de', name: 'German', targets: ['en', 'fr'] },
  { code: 'es', name: 'Spanish', targets: ['en'] },
  { code: 'fr', name: 'French', targets: ['de', 'en'] },
  { code: 'zh-Hans', name: 'Chinese (Simplified)', targets: ['en'] },
];

export async function startLibreTranslateStandIn(options: LibreTranslateStandInOptions = {}): Promise<LibreTranslateStandIn> {
  const languages = options.languages ?? STAND_IN_LANGUAGES;
  const error = (status: number, message: string): StandInReply => ({ status, body: { error: message } });
  const handle = (req: RecordedRequest): StandInReply => {
    if (req.method === 'GET' && req.path === '/languages') return { status: 200, body: languages };
    if (req.method !== 'POST' || req.path !== '/translate') return error(404, 'Not Found');
    const body = (req.body ?? {}) as Record<string, unknown>;
    for (const field of ['q', 'source', 'target']) {
      if (typeof body[field] !== 'string' || body[field] === '') return error(400, `Invalid request: missing ${field} parameter`);
    }
    if (options.apiKey !== undefined && body.api_key !== options.apiKey) return error(403, 'Invalid API key');
    if (standIn.limited) return error(429, 'Too many request limits violations');
    const { q, source, target } = body as { q: string; source: string; target: string };
    if (body.format !== undefined && body.format !== 'text' && body.format !== 'html') return error(400, `${String(body.format)} format is not supported`);
    const from = source === 'auto' ? languages.find((l) => l.code !== target) : languages.find((l) => l.code === source);
    if (!from) return error(400, `${source} is not supported`);
    if (!languages.some((l) => l.code === target) || (from.targets && !from.targets.includes(target))) return error(400, `${target} is not supported`);
    const translatedText = standIn.answer(q, from.code, target);
    return { status: 200, body: source === 'auto' ? { detectedLanguage: { confidence: 90, language: from.code }, translatedText } : { translatedText } };
  };
  const base = await startStandIn((req) => handle(req));
  const standIn = Object.assign(base, {
    limited: false,
    answer: ((q: string, _source: string, target: string) => `[${target}] ${q}`) as LibreTranslateStandIn['answer'],
  });
  return standIn;
}
