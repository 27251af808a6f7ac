import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { languageCode } from '../asr/languages.js';
import type { FeedsConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { TranscriptOpener } from '../pipeline/speech-runtime.js';
import { credentialOf } from '../http/auth.js';

/** The three ingest protocols; also the middle part of their calls' ids. */
export type IngestPlatform = 'listen' | 'stt' | 'twilio';

/** Tuning that the configuration does not carry; the defaults suit production. */
export interface AudioIngestOptions {
  /** Largest WebSocket message accepted; a bigger one closes the connection with 1009 (default 1 MiB). */
  readonly maxPayloadBytes?: number;
  /** Time a client has, once connected, to send its metadata / start message (ms, default 10 000). */
  readonly startTimeoutMs?: number;
  /** WebSocket ping interval; a peer that has not answered the previous ping is dropped (ms, default 30 000; 0 = off). */
  readonly pingIntervalMs?: number;
  /** How long a close handshake may take before the socket is destroyed (ms, default 3000). */
  readonly closeTimeoutMs?: number;
  /** Bytes waiting in a client's socket above which replies (transcriptions) to it are dropped (default 4 MiB). */
  readonly maxBufferedBytes?: number;
}

export interface AudioIngestDeps {
  /** Each connection's call gets its transcript here (events to the hub, like a SIP call's). */
  readonly speech: TranscriptOpener;
  readonly config: FeedsConfig['ingest'];
  readonly logger: Logger;
  readonly options?: AudioIngestOptions;
}

export const DEFAULT_OPTIONS: Required<AudioIngestOptions> = {
  maxPayloadBytes: 1 << 20,
  startTimeoutMs: 10_000,
  pingIntervalMs: 30_000,
  closeTimeoutMs: 3000,
  maxBufferedBytes: 4 << 20,
};

/**
 * WebSocket close codes the ingest endpoints use (RFC 6455 §7.4.1):
 * - 1000 normal: the server ended the session after `stop` (stt, twilio), every final sent.
 * - 1001 going away: the gateway shuts down.
 * - 1003 unsupported data: a binary frame on a text-only protocol (twilio), an unknown message
 *   type or event, an audio format the gateway does not take (sample rate, encoding, mixType...).
 * - 1007 invalid payload: text that is not JSON (or not valid UTF-8: `ws` closes those itself),
 *   JSON that is not an object, fields missing or of the wrong type, bad base64.
 * - 1008 policy violation: messages out of order (audio before the metadata / start, a second
 *   start), or no start message in time.
 * - 1009 too big: a message over the payload limit (`ws` closes with it before the message exists,
 *   so no error text precedes it).
 * - 1011 internal error: the gateway failed on good input (a bug); the call still ends cleanly.
 * Every code but 1000 and 1001 (and 1009 and invalid UTF-8) follows a `{type:"error", error}`
 * text message saying what was wrong.
 */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  unsupported: 1003,
  invalidPayload: 1007,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Bad input from a client: ends its connection with `code` after an error message. */
export class ProtocolError extends Error {
  constructor(
    readonly code: CloseCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** PCM sample rates the listen and stt endpoints take (each has a resampler design to 16 kHz). */
export const PCM_RATES: readonly number[] = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 64000];

/**
 * Whether the upgrade request carries one of the keys (`Authorization: Bearer`, the Basic password,
 * or `?token=`). Every key is compared, in constant time per key, so timing tells nothing.
 */
export function authorized(req: IncomingMessage, url: URL, apiKeys: readonly string[]): boolean {
  return matchedKey(req, url, apiKeys) !== undefined;
}

/**
 * Which configured key the request carries (its index, the client's identity for per-client
 * limits); -1 when no keys are configured; undefined when keys are and none matches.
 */
export function matchedKey(req: IncomingMessage, url: URL, apiKeys: readonly string[]): number | undefined {
  if (apiKeys.length === 0) return -1;
  const credential = credentialOf(req, url);
  if (credential === undefined) return undefined;
  const given = Buffer.from(credential);
  let matched: number | undefined;
  // Every key is compared (no early exit), so the time taken does not say which one matched.
  apiKeys.forEach((key, i) => {
    const expected = Buffer.from(key);
    if (expected.length === given.length && timingSafeEqual(expected, given)) matched = i;
  });
  return matched;
}

/**
 * Whisper's language for a platform's tag: `en-US` → `en`, `english` → `en`, `auto` → `auto`;
 * undefined when Whisper does not know it.
 */
export function whisperLanguage(tag: string): string | undefined {
  const lower = tag.trim().toLowerCase();
  if (lower === 'auto') return 'auto';
  return languageCode(lower) ?? languageCode(lower.split(/[-_]/, 1)[0] ?? '');
}

/**
 * A call id for one ingest connection: `ingest-<platform>-<external id>-<random>`. The external id
 * (callSid, streamSid) is cut to safe characters; the random part keeps ids unique when a platform
 * reuses one (a retried stream, a second listen on the same call).
 */
export function ingestCallId(platform: IngestPlatform, externalId?: string): string {
  const suffix = randomBytes(4).toString('hex');
  const safe = externalId?.replace(/[^A-Za-z0-9._-]/g, '').slice(0, 64);
  return safe ? `ingest-${platform}-${safe}-${suffix}` : `ingest-${platform}-${suffix}`;
}

/** Parses a text frame as a JSON object, or throws the protocol error saying why not. */
export function parseJsonObject(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError(CloseCode.invalidPayload, `${what} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(CloseCode.invalidPayload, `${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** `obj[key]` as a string when present; a protocol error when present with another type. */
export function optionalString(obj: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ProtocolError(CloseCode.invalidPayload, `${where}.${key} must be a string`);
  return v;
}

export function optionalBoolean(obj: Record<string, unknown>, key: string, where: string): boolean | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ProtocolError(CloseCode.invalidPayload, `${where}.${key} must be a boolean`);
  return v;
}

export function optionalNumber(obj: Record<string, unknown>, key: string, where: string): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ProtocolError(CloseCode.invalidPayload, `${where}.${key} must be a number`);
  return v;
}

export function optionalObject(obj: Record<string, unknown>, key: string, where: string): Record<string, unknown> | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ProtocolError(CloseCode.invalidPayload, `${where}.${key} must be an object`);
  return v as Record<string, unknown>;
}

/** A PCM sample rate from a start message: one of `PCM_RATES`, else a protocol error. */
export function pcmRate(value: number | undefined, fallback: number, where: string): number {
  const rate = value ?? fallback;
  if (!PCM_RATES.includes(rate)) {
    throw new ProtocolError(CloseCode.unsupported, `${where} ${String(rate).slice(0, 24)} is not supported (one of ${PCM_RATES.join(', ')})`);
  }
  return rate;
}

/** A DTMF key as the hub carries it. */
export const DTMF_DIGIT = /^[0-9A-D*#]$/;

/** Shortens a message to what fits in a close frame's reason (123 bytes). */
export function closeReason(message: string): string {
  let reason = message.length > 120 ? `${message.slice(0, 117)}...` : message;
  while (Buffer.byteLength(reason) > 123) reason = reason.slice(0, -1);
  return reason;
}
