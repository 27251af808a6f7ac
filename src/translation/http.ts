/**
 * What the HTTP translation providers (chat completions, LibreTranslate, DeepL) share: one JSON
 * request with the caller's abort signal, the failures mapped to the translation error codes, and
 * the checks every provider runs before it asks its server. Plain `fetch`: each provider is one
 * POST, so no client library is worth its weight.
 */
import { describeError, trimBase, WhisperlineError } from '../errors.js';

export { describeError, trimBase };
import type { TranslationRequest, TranslationResult } from './translator.js';

/** How much of a server's error text goes into an error message (a proxy's HTML page is long). */
const MAX_SERVER_MESSAGE = 300;

export interface JsonReply {
  readonly status: number;
  /** The parsed body, or undefined when it was empty or not JSON. */
  readonly body: unknown;
  /** The raw body, for error messages when it is not JSON. */
  readonly text: string;
}

export interface JsonRequest {
  readonly method?: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  readonly signal?: AbortSignal | undefined;
}

/** `provider` labels the messages (e.g. `deepl translation failed: …`). */
export async function requestJson(provider: string, url: string, request: JsonRequest = {}): Promise<JsonReply> {
  const { signal } = request;
  if (signal?.aborted) throw aborted(signal);
  try {
    const response = await fetch(url, {
      method: request.method ?? 'POST',
      headers: { accept: 'application/json', ...(request.body === undefined ? {} : { 'content-type': 'application/json' }), ...request.headers },
      ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
      ...(signal ? { signal } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: parseJson(text), text };
  } catch (err) {
    // fetch rejects with the signal's reason (whatever the aborter passed), so the signal, not the
    // error's type, says whether this was an abort.
    if (signal?.aborted) throw aborted(signal, err);
    throw new WhisperlineError('TRANSLATION_FAILED', `${provider} translation failed: ${url} unreachable: ${describeError(err)}`, { retryable: true, cause: err });
  }
}

/** TRANSLATION_FAILED for a reply with an error status, carrying the status and the server's message. */
export function httpFailure(provider: string, reply: JsonReply, message = serverMessage(reply)): WhisperlineError {
  return new WhisperlineError('TRANSLATION_FAILED', `${provider} translation failed: HTTP ${reply.status}${message ? `: ${message}` : ''}`, {
    // Too many requests and server-side trouble pass; a bad key or a refused request does not.
    retryable: reply.status === 429 || reply.status >= 500,
  });
}

/**
 * The server's own words from an error body, in the shapes these servers use: OpenAI and Ollama
 * `{error: {message}}`, LibreTranslate `{error: "…"}`, DeepL and vLLM `{message}`, FastAPI
 * `{detail}`; otherwise the start of the raw body.
 */
export function serverMessage(reply: JsonReply): string {
  const body = reply.body;
  if (isRecord(body)) {
    const error = body.error;
    if (typeof error === 'string') return clip(error);
    if (isRecord(error) && typeof error.message === 'string') return clip(error.message);
    if (typeof body.message === 'string') return clip(body.message);
    if (typeof body.detail === 'string') return clip(body.detail);
  }
  return clip(reply.text.trim());
}

export function aborted(signal?: AbortSignal, cause?: unknown): WhisperlineError {
  return new WhisperlineError('TRANSLATION_ABORTED', 'translation aborted', { cause: cause ?? signal?.reason });
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An ISO 639-1 code, as the requests carry them. */
export function isIsoLanguage(code: string): boolean {
  return /^[a-z]{2}$/.test(code);
}

/**
 * The checks before a provider asks its server, in the contract's order: an unsupported pair is
 * refused, an aborted request stops, and text already in the target language (or no text at all)
 * comes back as it is. Returns the result to give back, or undefined when the server must be asked.
 */
export function precheck(
  provider: string,
  request: TranslationRequest,
  supports: (source: string, target: string) => boolean,
): TranslationResult | undefined {
  const { sourceLanguage, targetLanguage } = request;
  if (!supports(sourceLanguage, targetLanguage)) {
    throw new WhisperlineError('TRANSLATION_UNSUPPORTED', `${provider} does not translate ${sourceLanguage} → ${targetLanguage}`);
  }
  if (request.signal?.aborted) throw aborted(request.signal);
  if (sourceLanguage === targetLanguage) return { text: request.text, sourceLanguage, targetLanguage, provider };
  if (request.text.trim() === '') return { text: '', sourceLanguage, targetLanguage, provider };
  return undefined;
}



function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function clip(text: string): string {
  return text.length > MAX_SERVER_MESSAGE ? `${text.slice(0, MAX_SERVER_MESSAGE)}…` : text;
}
