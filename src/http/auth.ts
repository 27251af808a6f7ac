import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { SupervisorToken } from '../config/schema.js';

/** Who a request authenticated as, and which calls it may see. */
export interface Principal {
  readonly name: string;
  /** Calls whose rule carries any of these labels; empty = every call. */
  readonly labels: readonly string[];
}

/** Whether `principal` may see a call with `callLabels`. */
export function canSee(principal: Principal, callLabels: readonly string[]): boolean {
  return principal.labels.length === 0 || principal.labels.some((l) => callLabels.includes(l));
}

/**
 * The credential a request carries: `Authorization: Bearer <token>`, the password of
 * `Authorization: Basic` (what mod_audio_fork and jambonz listen send), or, for browsers, which
 * cannot set headers on a WebSocket, the `token` (or `access_token`) query parameter.
 */
export function credentialOf(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers.authorization;
  if (header) {
    const [scheme, value] = header.split(/\s+/, 2);
    if (scheme?.toLowerCase() === 'bearer' && value) return value;
    if (scheme?.toLowerCase() === 'basic' && value) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon >= 0 ? decoded.slice(colon + 1) : decoded;
    }
  }
  return url.searchParams.get('token') ?? url.searchParams.get('access_token') ?? undefined;
}

/** Constant time on equal-length buffers (timingSafeEqual needs them), so timing does not reveal a secret. */
export const equalSecret = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Bearer tokens from the configuration, compared in constant time. */
export class TokenAuth {
  private readonly tokens: readonly SupervisorToken[];

  constructor(tokens: readonly SupervisorToken[]) {
    this.tokens = tokens;
  }

  /** A token for every call, for a gateway started without any configured (logged at start). */
  static generated(): { auth: TokenAuth; token: string } {
    const token = randomBytes(24).toString('base64url');
    return { auth: new TokenAuth([{ name: 'generated', token, labels: [] }]), token };
  }

  /** The principal a request authenticates as, or undefined (missing or unknown credential). */
  authenticate(req: IncomingMessage, url: URL): Principal | undefined {
    const credential = credentialOf(req, url);
    if (credential === undefined) return undefined;
    const match = this.tokens.find((t) => equalSecret(t.token, credential));
    return match ? { name: match.name, labels: match.labels } : undefined;
  }
}

/**
 * Browsers send `Origin` on WebSocket upgrades and cross-site requests: it must be the gateway's
 * own origin (same host and port as the request) or one configured. Requests without `Origin`
 * come from non-browser clients, which the token alone authenticates.
 */
export function originAllowed(req: IncomingMessage, allowedOrigins: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (allowedOrigins.includes(origin)) return true;
  const host = req.headers.host;
  return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
}
