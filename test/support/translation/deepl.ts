/**
 * A STAND-IN for DeepL's API v2, not DeepL: `POST /v2/translate` with
 * `Authorization: DeepL-Auth-Key <key>` and a JSON body `{text: [...], source_lang?, target_lang,
 * context?}`, answered `{translations: [{detected_source_language, text}]}` (one per text), and
 * the statuses DeepL documents: 400 for a bad parameter, 403 for a wrong key, 429 too many
 * requests, 456 quota exceeded; its error bodies are `{message: "…"}`.
 */
import { startStandIn, type RecordedRequest, type StandIn, type StandInReply } from './stand-in.js';

const SOURCES = ['AR', 'BG', 'CS', 'DA', 'DE', 'EL', 'EN', 'ES', 'ET', 'FI', 'FR', 'HU', 'ID', 'IT', 'JA', 'KO', 'LT', 'LV', 'NB', 'NL', 'PL', 'PT', 'RO', 'RU', 'SK', 'SL', 'SV', 'TR', 'UK', 'ZH'];
const TARGETS = [...SOURCES.filter((c) => c !== 'EN' && c !== 'PT' && c !== 'ZH'), 'EN', 'EN-GB', 'EN-US', 'PT', 'PT-BR', 'PT-PT', 'ZH', 'ZH-HANS', 'ZH-HANT'];

export interface DeepLStandIn extends StandIn {
  /** The account's state: `quota` answers 456, `busy` answers 429. */
  account: 'ok' | 'quota' | 'busy';
}

export async function startDeepLStandIn(authKey: string): Promise<DeepLStandIn> {
  const error = (status: number, message: string): StandInReply => ({ status, body: { message } });
  const handle = (req: RecordedRequest): StandInReply => {
    if (req.method !== 'POST' || req.path !== '/v2/translate') return error(404, 'Not found');
    if (req.headers.authorization !== `DeepL-Auth-Key ${authKey}`) return error(403, 'Forbidden');
    if (standIn.account === 'quota') return error(456, 'Quota Exceeded');
    if (standIn.account === 'busy') return error(429, 'Too many requests');
    const body = (req.body ?? {}) as { text?: unknown; source_lang?: unknown; target_lang?: unknown };
    if (!Array.isArray(body.text) || body.text.length === 0 || !body.text.every((t) => typeof t === 'string')) return error(400, "Parameter 'text' not specified.");
    const target = typeof body.target_lang === 'string' ? body.target_lang.toUpperCase() : undefined;
    if (!target || !TARGETS.includes(target)) return error(400, "Value for 'target_lang' not supported.");
    const source = typeof body.source_lang === 'string' ? body.source_lang.toUpperCase() : undefined;
    if (source !== undefined && !SOURCES.includes(source)) return error(400, "Value for 'source_lang' not supported.");
    return {
      status: 200,
      body: { translations: (body.text as string[]).map((t) => ({ detected_source_language: source ?? 'DE', text: `[${target}] ${t}` })) },
    };
  };
  const base = await startStandIn((req) => handle(req));
  const standIn = Object.assign(base, { account: 'ok' as DeepLStandIn['account'] });
  return standIn;
}
