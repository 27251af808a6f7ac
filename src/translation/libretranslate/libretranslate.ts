/**
 * LibreTranslate (self-hosted Argos Translate models) as a translation provider:
 * `POST /translate {q, source, target, format: 'text', api_key?}` → `{translatedText}`.
 *
 * Which pairs it translates depends on the models the server has installed, and `supports` must
 * answer synchronously, so the languages are learnt once, when the provider is created:
 * `LibreTranslateTranslator.create()` reads `GET /languages` and builds the provider from it (or
 * the constructor takes a language table the caller already has). A lazy load with an optimistic
 * `supports` until it arrives was the other choice; it was not taken because a wrong "yes" sends
 * pairs the server refuses (a failed round trip on every final, and a fallback that never gets to
 * try the next provider first), and a server that is down at start is better said at start, where
 * the wiring can leave this provider out or retry.
 */
import { WhisperlineError } from '../../errors.js';
import { httpFailure, isRecord, precheck, requestJson, trimBase } from '../http.js';
import type { TranslationRequest, TranslationResult, Translator, TranslatorCapabilities } from '../translator.js';

/** One entry of `GET /languages`. Servers before 1.3 have no `targets`: every language to every other. */
export interface LibreTranslateLanguage {
  readonly code: string;
  readonly name?: string;
  readonly targets?: readonly string[];
}

export interface LibreTranslateOptions {
  /** The server's address, e.g. `http://127.0.0.1:5000`. */
  readonly baseUrl: string;
  /** Sent as `api_key` in the body, for servers started with `--api-keys`. */
  readonly apiKey?: string;
  /** The name on results and events. Default `libretranslate`. */
  readonly name?: string;
}

export interface LibreTranslateTranslatorOptions extends LibreTranslateOptions {
  /** The server's languages, as `GET /languages` lists them (`create()` reads them). */
  readonly languages: readonly LibreTranslateLanguage[];
}

export class LibreTranslateTranslator implements Translator {
  readonly name: string;
  readonly capabilities: TranslatorCapabilities = { needsAudio: false, usesContext: false };
  private readonly base: string;
  /** ISO 639-1 code → the server's code (`zh` → `zh-Hans` on servers that split Chinese). */
  private readonly codes = new Map<string, string>();
  /** The server's code → the server codes it translates into (undefined: every other language). */
  private readonly targets = new Map<string, ReadonlySet<string> | undefined>();

  /** Reads the server's languages (`GET /languages`) and builds the provider; TRANSLATION_FAILED when they cannot be read. */
  static async create(options: LibreTranslateOptions & { readonly signal?: AbortSignal }): Promise<LibreTranslateTranslator> {
    const name = options.name ?? 'libretranslate';
    const url = `${trimBase(options.baseUrl)}/languages`;
    const reply = await requestJson(name, url, { method: 'GET', signal: options.signal });
    if (reply.status >= 400) throw httpFailure(name, reply);
    const languages = parseLanguages(reply.body);
    if (!languages) {
      throw new WhisperlineError('TRANSLATION_FAILED', `${name}: ${url} did not answer with a language list: ${JSON.stringify(reply.text.slice(0, 100))}`);
    }
    return new LibreTranslateTranslator({ ...options, languages });
  }

  constructor(private readonly options: LibreTranslateTranslatorOptions) {
    this.name = options.name ?? 'libretranslate';
    this.base = trimBase(options.baseUrl);
    for (const language of options.languages) {
      const iso = language.code.toLowerCase().split('-')[0] ?? language.code;
      // The exact code wins over a variant (`pt` over `pt-BR`); otherwise the first variant listed.
      if (!this.codes.has(iso) || language.code.toLowerCase() === iso) this.codes.set(iso, language.code);
      this.targets.set(language.code, language.targets ? new Set(language.targets) : undefined);
    }
  }

  supports(source: string, target: string): boolean {
    const to = this.codes.get(target);
    if (to === undefined) return false;
    if (source === 'auto') return [...this.targets.entries()].some(([code, targets]) => code !== to && (!targets || targets.has(to)));
    const from = this.codes.get(source);
    if (from === undefined) return false;
    if (from === to) return true;
    const targets = this.targets.get(from);
    return !targets || targets.has(to);
  }

  async translate(request: TranslationRequest): Promise<TranslationResult> {
    const early = precheck(this.name, request, (s, t) => this.supports(s, t));
    if (early) return early;
    const { sourceLanguage, targetLanguage } = request;
    const reply = await requestJson(this.name, `${this.base}/translate`, {
      body: {
        q: request.text,
        source: sourceLanguage === 'auto' ? 'auto' : this.codes.get(sourceLanguage),
        target: this.codes.get(targetLanguage),
        format: 'text',
        ...(this.options.apiKey ? { api_key: this.options.apiKey } : {}),
      },
      signal: request.signal,
    });
    if (reply.status >= 400) throw httpFailure(this.name, reply);
    const text = isRecord(reply.body) ? reply.body.translatedText : undefined;
    if (typeof text !== 'string') {
      throw new WhisperlineError('TRANSLATION_FAILED', `${this.name} translation failed: the reply carries no translatedText`, { retryable: true });
    }
    return { text: text.trim(), sourceLanguage, targetLanguage, provider: this.name };
  }
}

function parseLanguages(body: unknown): LibreTranslateLanguage[] | undefined {
  if (!Array.isArray(body)) return undefined;
  const languages: LibreTranslateLanguage[] = [];
  for (const entry of body) {
    if (!isRecord(entry) || typeof entry.code !== 'string') return undefined;
    const targets = Array.isArray(entry.targets) ? entry.targets.filter((t): t is string => typeof t === 'string') : undefined;
    languages.push({ code: entry.code, ...(typeof entry.name === 'string' ? { name: entry.name } : {}), ...(targets ? { targets } : {}) });
  }
  return languages;
}
