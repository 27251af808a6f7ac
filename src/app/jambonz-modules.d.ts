/**
 * Types for the jambonz npm packages, which ship plain CommonJS without declarations. Only what
 * the app/ transports (verb validation) and their tests (the real application libraries) use.
 */
declare module '@jambonz/verb-specifications' {
  /** A verb's (or nested type's) spec: property name → type (`'number'`, `'string|array'`, `'#say'`, `['#target']`, `{type, enum}`). */
  export interface VerbSpec {
    readonly properties: Readonly<Record<string, unknown>>;
    readonly required?: readonly string[];
  }
  interface VerbSpecifications {
    /** Every verb and nested type, by name. */
    readonly specs: Readonly<Record<string, VerbSpec>>;
    /** Throws an Error (`gather: property timeout has invalid data type`) when `data` does not fit verb `name`. */
    validateVerb(name: string, data: unknown, logger: { info(...args: unknown[]): void }): void;
    /** `[{verb:'say', ...}]` or `[{say: {...}}]` → `[{say: {...}}]`, with jambonz's verb aliases applied; throws on a malformed array. */
    normalizeJambones(logger: { info(...args: unknown[]): void }, obj: unknown): Array<Record<string, Record<string, unknown>>>;
  }
  const verbSpecifications: VerbSpecifications;
  export default verbSpecifications;
}

declare module '@jambonz/node-client-ws' {
  import type { EventEmitter } from 'node:events';
  import type { Server } from 'node:http';

  /** One call on the application side; every jambonz verb is a chainable method. */
  export interface Session extends EventEmitter {
    readonly call_sid: string;
    readonly msgid: string;
    /** The call attributes of `session:new` (less sip_status, sip_reason, call_status). */
    readonly data: Record<string, unknown>;
    readonly [attribute: string]: unknown;
    say(data: Record<string, unknown>): Session;
    gather(data: Record<string, unknown>): Session;
    play(data: Record<string, unknown>): Session;
    pause(data: Record<string, unknown>): Session;
    hangup(data?: Record<string, unknown>): Session;
    conference(data: Record<string, unknown>): Session;
    /** Sends the queued verbs: an `ack` to the pending message the first time, a `redirect` command after. */
    send(options?: { execImmediate?: boolean; reply?: boolean }): void;
    /** Sends the queued verbs as the `ack` of the last hook received. */
    reply(options?: { execImmediate?: boolean }): void;
    /** A raw `{type:'command', command, queueCommand:false, data}` message. */
    sendCommand(command: string, data?: unknown): void;
    close(): void;
  }
  export interface Service extends EventEmitter {
    on(event: 'session:new', listener: (session: Session, path: string, req: unknown) => void): this;
  }
  export function createEndpoint(options: {
    server: Server;
    port?: number;
    logger?: { info(...a: unknown[]): void; error(...a: unknown[]): void; debug(...a: unknown[]): void };
    middlewares?: Array<(req: unknown, res: unknown, next: (err?: unknown) => void) => unknown>;
  }): (options: { path: string }) => Service;
  const nodeClientWs: { createEndpoint: typeof createEndpoint };
  export default nodeClientWs;
}

declare module '@jambonz/node-client' {
  /** A webhook reply under construction: every jambonz verb is a chainable method; JSON is the verb array. */
  export interface WebhookResponse {
    readonly length: number;
    say(data: Record<string, unknown>): WebhookResponse;
    gather(data: Record<string, unknown>): WebhookResponse;
    play(data: Record<string, unknown>): WebhookResponse;
    pause(data: Record<string, unknown>): WebhookResponse;
    hangup(data?: Record<string, unknown>): WebhookResponse;
    toJSON(): Array<Record<string, unknown>>;
  }
  const nodeClient: { WebhookResponse: new () => WebhookResponse };
  export default nodeClient;
}
