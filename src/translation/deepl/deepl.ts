/**
 * DeepL's API v2 as a translation provider: `POST /v2/translate` with
 * `Authorization: DeepL-Auth-Key <key>` and a JSON body `{text: [...], source_lang, target_lang}`,
 * answered `{translations: [{detected_source_language, text}]}`.
 *
 * DeepL writes languages upper-case and wants a variant for some targets (English as EN-US or
 * EN-GB, Portuguese as PT-PT or PT-BR); the requests carry ISO 639-1 codes, so this maps them, with
 * the variants configurable. The party's earlier finals go in DeepL's `context` field, which
 * influences the translation without being translated (or billed).
 */
import { WhisperlineError } from '../../errors.js';
import { httpFailure, isRecord, precheck, requestJson, serverMessage, trimBase, type JsonReply } from '../http.js';
import type { TranslationRequest, TranslationResult, Translator, TranslatorCapabilities } from '../translator.js';

/** DeepL's source languages (ISO 639-1; `nb` is Norwegian Bokmål). */
export const DEEPL_LANGUAGES: readonly string[] = [
  'ar', 'bg', 'cs', 'da', 'de', 'el', 'en', 'es', 'et', 'fi', 'fr', 'hu', 'id', 'it', 'ja', 'ko',
  'lt', 'lv', 'nb', 'nl', 'pl', 'pt', 'ro', 'ru', 'sk', 'sl', 'sv', 'tr', 'uk', 'zh',
];

/** The variant DeepL is sent for a target that needs one (plain EN, PT and ZH are deprecated targets). */
export const DEFAULT_DEEPL_TARGET_VARIANTS: Readonly<Record<string, string>> = { en: 'EN-US', pt: 'PT-BR', zh: 'ZH-HANS' };

/** ISO 639-1 codes DeepL knows under another code. */
const ALIASES: Readonly<Record<string, string>> = { no: 'nb' };

export const DEFAULT_DEEPL_CONTEXT_TURNS = 3;

export interface DeepLTranslatorOptions {
  readonly authKey: string;
  /**
   * The API's address. Default: DeepL's free endpoint for a key ending in `:fx` (DeepL's mark of
   * a Free API key), its Pro endpoint otherwise (`deeplBaseUrl`).
   */
  readonly baseUrl?: string;
  /** Target variants by ISO code, over the defaults (`{en: 'EN-GB'}` for British English). */
  readonly targetVariants?: Readonly<Record<string, string>>;
  /** ISO 639-1 codes to translate between. Default `DEEPL_LANGUAGES`. */
  readonly languages?: readonly string[];
  /** Send the party's earlier finals as DeepL `context`. Default true. */
  readonly useContext?: boolean;
  /** How many earlier finals (the newest) go as context. Default 3. */
  readonly contextTurns?: number;
  /** DeepL's `formality` (`prefer_more`, `prefer_less`…; the `prefer_` forms never fail a pair). */
  readonly formality?: 'default' | 'more' | 'less' | 'prefer_more' | 'prefer_less';
  /** The name on results and events. Default `deepl`. */
  readonly name?: string;
}

/** The endpoint a key belongs to: Free API keys end in `:fx`. */
export function deeplBaseUrl(authKey: string): string {
  return authKey.endsWith(':fx') ? 'https://api-free.deepl.com' : 'https://api.deepl.com';
}

export class DeepLTranslator implements Translator {
  readonly name: string;
  readonly capabilities: TranslatorCapabilities;
  private readonly url: string;
  private readonly languages: ReadonlySet<string>;
  private readonly variants: Readonly<Record<string, string>>;
  private readonly contextTurns: number;

  constructor(private readonly options: DeepLTranslatorOptions) {
    this.name = options.name ?? 'deepl';
    this.url = `${trimBase(options.baseUrl ?? deeplBaseUrl(options.authKey))}/v2/translate`;
    this.languages = new Set((options.languages ?? DEEPL_LANGUAGES).map((l) => l.toLowerCase()));
    this.variants = { ...DEFAULT_DEEPL_TARGET_VARIANTS, ...lowerKeys(options.targetVariants ?? {}) };
    const useContext = options.useContext ?? true;
    this.contextTurns = useContext ? Math.max(0, options.contextTurns ?? DEFAULT_DEEPL_CONTEXT_TURNS) : 0;
    this.capabilities = { needsAudio: false, usesContext: this.contextTurns > 0 };
  }

  supports(source: string, target: string): boolean {
    return (source === 'auto' || this.languages.has(canonical(source))) && this.languages.has(canonical(target));
  }

  /** DeepL's `target_lang` for an ISO code (`en` → `EN-US` by default, `de` → `DE`). */
  targetCode(iso: string): string {
    const code = canonical(iso);
    return this.variants[code] ?? code.toUpperCase();
  }

  async translate(request: TranslationRequest): Promise<TranslationResult> {
    const early = precheck(this.name, request, (s, t) => this.supports(s, t));
    if (early) return early;
    const { sourceLanguage, targetLanguage } = request;
    const context = this.contextTurns > 0 ? (request.context ?? []).slice(-this.contextTurns) : [];
    const reply = await requestJson(this.name, this.url, {
      headers: { authorization: `DeepL-Auth-Key ${this.options.authKey}` },
      body: {
        text: [request.text],
        // Without source_lang DeepL detects the language itself.
        ...(sourceLanguage === 'auto' ? {} : { source_lang: canonical(sourceLanguage).toUpperCase() }),
        target_lang: this.targetCode(targetLanguage),
        ...(context.length > 0 ? { context: context.join('\n') } : {}),
        ...(this.options.formality ? { formality: this.options.formality } : {}),
      },
      signal: request.signal,
    });
    if (reply.status >= 400) throw this.failure(reply);
    const first: unknown = isRecord(reply.body) && Array.isArray(reply.body.translations) ? reply.body.translations[0] : undefined;
    if (!isRecord(first) || typeof first.text !== 'string') {
      throw new WhisperlineError('TRANSLATION_FAILED', `${this.name} translation failed: the reply carries no translations`, { retryable: true });
    }
    return { text: first.text.trim(), sourceLanguage, targetLanguage, provider: this.name };
  }

  /** DeepL's own statuses said plainly (its bodies are terse: `{message: "Quota Exceeded"}`). */
  private failure(reply: JsonReply): WhisperlineError {
    const server = serverMessage(reply);
    const withServer = (plain: string): string => (server && server.toLowerCase() !== plain.toLowerCase() ? `${plain} (${server})` : plain);
    switch (reply.status) {
      case 403:
        return httpFailure(this.name, reply, withServer('authorization failed: the DeepL auth key is wrong or belongs to the other endpoint (Free keys end in :fx)'));
      case 456:
        return httpFailure(this.name, reply, withServer("quota exceeded: the DeepL plan's character limit is reached"));
      case 429:
        return httpFailure(this.name, reply, withServer('too many requests: DeepL is rate limiting, retry later'));
      case 413:
        return httpFailure(this.name, reply, withServer('request too large'));
      default:
        return httpFailure(this.name, reply);
    }
  }
}

function canonical(iso: string): string {
  const code = iso.toLowerCase();
  return ALIASES[code] ?? code;
}

function lowerKeys(record: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k.toLowerCase(), v.toUpperCase()]));
}
