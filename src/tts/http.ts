/**
 * What the HTTP speech providers (OpenAI-compatible, jambonz custom TTS) share: one POST whose
 * reply body is read as it streams, the caller's abort signal carried into fetch, and failures
 * mapped to the synthesis error codes. Plain `fetch` (undici): each request is one POST with a
 * streamed body, so no client library is worth its weight.
 */
import { describeError, trimBase, WhisperlineError } from '../errors.js';

export { describeError, trimBase };

/** How much of a server's error text goes into an error message (a proxy's HTML page is long). */
const MAX_SERVER_MESSAGE = 300;

export interface AudioPost {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
  /** The request's own controller's signal (linked to the caller's), so ending early tears the connection down. */
  readonly signal: AbortSignal;
}

/** An aborted request, as the contract wants it. */
export function aborted(cause?: unknown): WhisperlineError {
  return new WhisperlineError('TTS_ABORTED', 'synthesis aborted', cause === undefined ? {} : { cause });
}

/**
 * POSTs `body` as JSON and returns the reply once its headers are in; an error status is turned
 * into its typed error here (with the server's own message), so a returned reply carries audio.
 */
export async function postForAudio(provider: string, url: string, post: AudioPost): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...post.headers },
      body: JSON.stringify(post.body),
      signal: post.signal,
    });
  } catch (err) {
    // fetch rejects with the signal's reason (whatever the aborter passed), so the signal, not the
    // error's type, says whether this was an abort.
    if (post.signal.aborted) throw aborted(err);
    throw new WhisperlineError('TTS_FAILED', `${provider} synthesis failed: ${url} unreachable: ${describeError(err)}`, { retryable: true, cause: err });
  }
  if (response.ok) return response;
  let text = '';
  try {
    text = await response.text();
  } catch (err) {
    if (post.signal.aborted) throw aborted(err);
  }
  const message = serverMessage(text);
  const what = `${provider} synthesis failed: HTTP ${response.status}${message ? `: ${message}` : ''}`;
  // A bad voice, model or input: asking again (or elsewhere with the same request) will not help,
  // and the contract calls what a provider cannot do TTS_INVALID.
  if (response.status === 400 || response.status === 404 || response.status === 422) {
    throw new WhisperlineError('TTS_INVALID', what);
  }
  throw new WhisperlineError('TTS_FAILED', what, { retryable: response.status === 408 || response.status === 429 || response.status >= 500 });
}

/**
 * The reply body piece by piece as it arrives. A connection that drops mid-body is TTS_FAILED
 * (the audio so far has been handed out; the caller decides what a cut prompt means), an abort
 * TTS_ABORTED. Ending the iteration early cancels the body, so the connection is not read on.
 */
export async function* bodyPieces(provider: string, response: Response, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  if (!response.body) throw new WhisperlineError('TTS_FAILED', `${provider} synthesis failed: the reply has no body`);
  const reader = response.body.getReader();
  let done = false;
  try {
    for (;;) {
      let piece: Awaited<ReturnType<typeof reader.read>>;
      try {
        piece = await reader.read();
      } catch (err) {
        done = true;
        if (signal.aborted) throw aborted(err);
        throw new WhisperlineError('TTS_FAILED', `${provider} synthesis failed: the connection dropped mid-reply: ${describeError(err)}`, { retryable: true, cause: err });
      }
      if (piece.done) {
        done = true;
        return;
      }
      if (piece.value.length > 0) yield piece.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
  }
}

/** An AbortController that follows `signal` (until `release`), so a request can also be ended from inside. */
export function linkedController(signal: AbortSignal | undefined): { controller: AbortController; release: () => void } {
  const controller = new AbortController();
  if (!signal) return { controller, release: () => undefined };
  if (signal.aborted) {
    controller.abort(signal.reason);
    return { controller, release: () => undefined };
  }
  const onAbort = (): void => controller.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  return { controller, release: () => signal.removeEventListener('abort', onAbort) };
}

/**
 * The server's own words from an error body, in the shapes these servers use: OpenAI
 * `{error: {message}}`, `{error: "…"}`, FastAPI (Kokoro-FastAPI, speaches) `{detail}` as a string,
 * an object with a message or a validation list, `{message}`; otherwise the start of the raw body.
 */
export function serverMessage(text: string): string {
  let body: unknown;
  try {
    body = text.trim() === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (isRecord(body)) {
    const { error, detail, message } = body;
    if (typeof error === 'string') return clip(error);
    if (isRecord(error) && typeof error.message === 'string') return clip(error.message);
    if (typeof detail === 'string') return clip(detail);
    if (isRecord(detail) && typeof detail.message === 'string') return clip(detail.message);
    if (Array.isArray(detail) && isRecord(detail[0]) && typeof detail[0].msg === 'string') return clip(detail[0].msg);
    if (typeof message === 'string') return clip(message);
  }
  return clip(text.trim());
}



/** Whether `language` is in `list`: exactly, or by its base language (`en-US` is spoken where `en` is). */
export function languageListed(list: readonly string[], language: string): boolean {
  const lower = language.toLowerCase();
  const base = lower.split(/[-_]/)[0]!;
  return list.some((l) => {
    const entry = l.toLowerCase();
    return entry === lower || entry === base;
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function clip(text: string): string {
  return text.length > MAX_SERVER_MESSAGE ? `${text.slice(0, MAX_SERVER_MESSAGE)}…` : text;
}

/**
 * The voice for a request: the one it names, else its language's (an exact tag, then the base
 * language: `en-GB` → `en`), else the provider's default.
 */
export function voiceFor<V extends string | undefined>(request: { readonly voice?: string; readonly language?: string }, options: { readonly voice: V; readonly voiceByLanguage?: Readonly<Record<string, string>> }): string | V {
  if (request.voice !== undefined) return request.voice;
  const byLanguage = options.voiceByLanguage;
  if (request.language !== undefined && byLanguage) {
    const lower = request.language.toLowerCase();
    const entries = Object.entries(byLanguage);
    const hit = entries.find(([l]) => l.toLowerCase() === lower) ?? entries.find(([l]) => l.toLowerCase() === lower.split(/[-_]/)[0]);
    if (hit) return hit[1];
  }
  return options.voice;
}

/** Whether a provider speaks `language`: its configured list, else its per-language voices, else everything. */
export function speaksLanguage(options: { readonly languages?: readonly string[]; readonly voiceByLanguage?: Readonly<Record<string, string>> }, language: string): boolean {
  if (options.languages) return languageListed(options.languages, language);
  if (options.voiceByLanguage) return languageListed(Object.keys(options.voiceByLanguage), language);
  return true;
}
