/**
 * The call level's port to a voice application (a jambonz application: webhook or WebSocket).
 * The call runs the verbs; how they reach it (HTTP POSTs, a `ws.jambonz.org` socket) is the
 * transport's business (src/app/), filled in by the composition root, as audio forks are.
 */

/** jambonz's call attributes, as its applications receive them on a new call and with every hook. */
export interface CallAttributes {
  readonly call_sid: string;
  readonly direction: 'inbound' | 'outbound';
  readonly from: string;
  readonly to: string;
  /** The SIP Call-ID. */
  readonly call_id: string;
  readonly sip_status: number;
  readonly call_status: 'trying' | 'ringing' | 'early-media' | 'in-progress' | 'completed' | 'failed' | 'busy' | 'no-answer';
  readonly caller_name?: string;
  readonly originating_sip_ip?: string;
  readonly originating_sip_trunk_name?: string;
  readonly local_sip_address?: string;
  readonly account_sid?: string;
  readonly application_sid?: string;
  readonly trace_id?: string;
  /** Headers of the INVITE the application may read (jambonz puts them under `sip`). */
  readonly sip?: { readonly headers: Readonly<Record<string, string>> };
  readonly [field: string]: unknown;
}

/** One jambonz verb: `{verb: 'say', text: ...}` (applications also write `{say: {...}}`; the transport normalises). */
export type Verb = { readonly verb: string; readonly [field: string]: unknown };

/** Something the application pushed mid-call (WebSocket transport): `redirect` with new verbs, and others. */
export interface AppCommand {
  readonly command: string;
  readonly data: unknown;
}

export interface AppChannel {
  /**
   * The new call (`session:new`): resolves with the application's first verbs. Rejects with
   * APP_FAILED (refused, unreachable, timed out, a reply that is not a verb array), saying which.
   */
  start(attributes: CallAttributes): Promise<Verb[]>;
  /**
   * A verb's `actionHook` (the hook as the verb gave it: a URL, relative to the application's, or a
   * name on the WebSocket transport) with its result: resolves with the verbs that replace the
   * remaining ones, or undefined when the application sent none (the remaining verbs go on).
   */
  hook(hook: string | { readonly url: string; readonly method?: string }, payload: Readonly<Record<string, unknown>>): Promise<Verb[] | undefined>;
  /** A `call:status` change (webhook: the call status hook, when configured). Never rejects. */
  status(payload: Readonly<Record<string, unknown>>): void;
  /** Tells the application something went wrong (an invalid verb, a failed hook): `jambonz:error` on the socket. */
  error(message: string, details?: Readonly<Record<string, unknown>>): void;
  /** Commands the application pushes (WebSocket transport only). */
  onCommand(listener: (command: AppCommand) => void): void;
  /** Ends the session (closes the socket). Idempotent. */
  close(): Promise<void>;
}

export interface AppChannelSpec {
  /** `http(s)://` (webhook) or `ws(s)://` (WebSocket, subprotocol ws.jambonz.org). */
  readonly url: string;
  readonly auth?: { readonly username: string; readonly password: string } | { readonly bearer: string };
  /** The call's `call_sid` (message envelopes carry it). */
  readonly callSid: string;
  /** How long one request (session:new, a hook) may take before APP_FAILED (ms). */
  readonly timeoutMs?: number;
  /** Webhook: the call status hook (jambonz's `call_status_hook`); the WebSocket transport sends `call:status` on the socket. */
  readonly statusUrl?: string;
}

/** Opens a call's channel to its application (the composition root gives the app/ transport). */
export type AppChannelOpener = (spec: AppChannelSpec) => AppChannel;
