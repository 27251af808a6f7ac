/**
 * What the app/ transports take beyond the call level's `AppChannelSpec` (only optional fields, so
 * any `AppChannelSpec` is one): the call level does not know about them; the composition root may
 * fill them from configuration.
 */
import type { AppChannelSpec } from '../call/app-channel.js';

export interface AppTransportSpec extends AppChannelSpec {
  /** Webhook: the method of the new-call request (jambonz's `call_hook.method`). Default POST; GET sends no body. */
  readonly method?: 'GET' | 'POST';
}
