/**
 * jambonz `dial` targets as SIP URIs. A `sip` target is its `sipUri`; a `phone` number goes to the
 * rule's trunk (`sip:<number>@<trunk host>`), as jambonz sends numbers to a carrier; a `user`
 * with a domain is `sip:<user@domain>`. The rule's `allow` pattern limits where an application
 * may dial (toll fraud goes through applications that dial anything).
 */

export interface DialRouting {
  /** Where `phone` targets go: a sip:/sips: URI without a user part (sip:carrier.example.com:5060;transport=tcp). */
  readonly trunk?: string;
  /** The URIs an application may dial; anything else is refused (403). */
  readonly allow?: RegExp;
}

export type ResolvedTarget = { readonly uri: string } | { readonly problem: string; readonly sipStatus: number };

/** jambonz dials at most ten targets at once. */
export const MAX_DIAL_TARGETS = 10;

export function dialTargetUri(target: unknown, routing: DialRouting): ResolvedTarget {
  if (typeof target !== 'object' || target === null) return { problem: 'a target is not an object', sipStatus: 400 };
  const t = target as { type?: unknown; sipUri?: unknown; number?: unknown; name?: unknown };
  let uri: string;
  switch (t.type) {
    case 'sip':
      if (typeof t.sipUri !== 'string' || !/^sips?:[^\s]+$/.test(t.sipUri)) return { problem: 'target.sipUri: expected a sip: or sips: URI', sipStatus: 400 };
      uri = t.sipUri;
      break;
    case 'phone': {
      if (typeof t.number !== 'string' || !/^\+?[0-9*#]{1,32}$/.test(t.number)) return { problem: 'target.number: expected a phone number (digits, an optional leading +)', sipStatus: 400 };
      if (!routing.trunk) return { problem: `target.number ${t.number}: no trunk for phone numbers (the app rule's dial.trunk)`, sipStatus: 404 };
      uri = routing.trunk.replace(/^(sips?:)/, `$1${t.number}@`);
      break;
    }
    case 'user':
      if (typeof t.name !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(t.name)) return { problem: 'target.name: expected user@domain (whisperline has no registrar to find a bare user)', sipStatus: 404 };
      uri = `sip:${t.name}`;
      break;
    default:
      return { problem: `target.type ${String(t.type)}: not supported by whisperline (sip, phone, user)`, sipStatus: 488 };
  }
  if (routing.allow && !routing.allow.test(uri)) return { problem: `${uri}: not allowed by the app rule's dial.allow`, sipStatus: 403 };
  return { uri };
}
