/**
 * The app/ transports: a call's channel to its voice application (a jambonz webhook or WebSocket
 * application), chosen by the application URL's scheme, and jambonz verb validation.
 */
import { WhisperlineError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AppChannel, AppChannelOpener } from '../call/app-channel.js';
import type { AppTransportSpec } from './spec.js';
import { openWebhookChannel } from './webhook.js';
import { openWsChannel } from './ws.js';

export type { AppTransportSpec } from './spec.js';
export { JAMBONZ_VERBS, normaliseVerbs, validateVerbs, verbProblems, type VerbCheck } from './verbs.js';
export { WebhookChannel, type WebhookChannelOptions } from './webhook.js';
export { SUBPROTOCOL, WsChannel, type JambonzCommand, type WsChannelOptions } from './ws.js';

export interface AppChannelOptions {
  /** Where the channel logs (webhook `error()`, failed status hooks, invalid messages). */
  readonly logger?: Logger;
  /** WebSocket: time allowed for the handshake. Default the spec's `timeoutMs`, else 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** WebSocket: reconnects after a dropped socket before the call's application is given up (5). */
  readonly maxReconnects?: number;
  /** WebSocket: the first wait before reconnecting, doubled up to 4 s (500 ms). */
  readonly reconnectBackoffMs?: number;
}

/**
 * The channel for `spec.url`: http(s) → webhook, ws(s) → WebSocket (`ws.jambonz.org`). Any other
 * scheme, or no URL at all, throws APP_FAILED at once (nothing is sent).
 */
export function openAppChannel(spec: AppTransportSpec, options: AppChannelOptions = {}): AppChannel {
  let scheme: string;
  try {
    scheme = new URL(spec.url).protocol;
  } catch (err) {
    throw new WhisperlineError('APP_FAILED', `the application URL "${spec.url}" is not a URL`, { cause: err });
  }
  switch (scheme) {
    case 'http:':
    case 'https:':
      return openWebhookChannel(spec, options.logger ? { logger: options.logger } : {});
    case 'ws:':
    case 'wss:':
      return openWsChannel(spec, options);
    default:
      throw new WhisperlineError('APP_FAILED', `the application URL "${spec.url}" is neither http(s) (webhook) nor ws(s) (WebSocket)`);
  }
}

/** An `AppChannelOpener` for the composition root: every call's channel gets these options. */
export function appChannelOpener(options: AppChannelOptions = {}): AppChannelOpener {
  return (spec) => openAppChannel(spec, options);
}
