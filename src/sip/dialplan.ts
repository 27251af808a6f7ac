import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import type { AudioForkPlan, CallRule, InterpretationPlan, PartyPlan, PromptPlan } from '../call/rule.js';
import { WhisperlineError } from '../errors.js';

/**
 * Dialplans: ordered rules that decide what an incoming INVITE gets. Matching is SIP-agnostic
 * (it sees an `InviteFacts`), so it is tested without a SIP stack and reused by every entry point.
 */

/** What a rule can match on, taken from the INVITE by the SIP edge. */
export interface InviteFacts {
  readonly requestUri: string;
  /** User part of the request-URI (the dialled number or name). */
  readonly requestUser: string;
  /** From and To header values (URI with display name). */
  readonly from: string;
  readonly to: string;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  /** Source IP address of the request. */
  readonly source: string;
  /** A SIPREC INVITE (multipart body with rs-metadata, or sent to a recording rule) or a plain one. */
  readonly kind: 'plain' | 'siprec';
}

const regex = z.string().superRefine((v, ctx) => {
  try {
    new RegExp(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `invalid regular expression: ${(err as Error).message}` });
  }
});

const cidr = z.string().superRefine((v, ctx) => {
  if (!parseCidr(v)) ctx.addIssue({ code: 'custom', message: `not an IP address or CIDR block: "${v}"` });
});

const PartySchema = z
  .object({
    /** Shown with every transcript line of this party (e.g. customer, agent). */
    label: z.string().min(1).optional(),
    transcribe: z.boolean().default(true),
    language: z.string().regex(/^(auto|[a-z]{2,3})$/, 'expected "auto" or an ISO 639-1 code').optional(),
    translate: z.boolean().optional(),
    /** The language this party's translations are into. */
    translateTo: z.string().regex(/^[a-z]{2,3}$/, 'expected an ISO 639-1 code').optional(),
  })
  .strict();

/** One prompt or several, spoken in order. */
const Prompts = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => (typeof v === 'string' ? [v] : v));

const SipStatus = z.number().int().min(400).max(699);

/** The file form of a rule: flat keys, checked together so errors name the key a user wrote. */
const RuleFileSchema = z
  .object({
    name: z.string().min(1),
    match: z
      .object({
        requestUser: regex.optional(),
        to: regex.optional(),
        from: regex.optional(),
        headers: z.record(z.string().min(1), regex).optional(),
        source: z.union([cidr, z.array(cidr).min(1)]).optional(),
        kind: z.enum(['plain', 'siprec', 'any']).default('any'),
      })
      .strict()
      .default({ kind: 'any' }),
    action: z.enum(['answer', 'bridge', 'siprec', 'reject', 'app']),
    /** `app`: the voice application (jambonz protocol): http(s):// webhook or ws(s):// WebSocket. */
    url: z.string().regex(/^(https?|wss?):\/\/[^\s]+$/, 'expected an http(s):// (webhook) or ws(s):// (WebSocket) URL').optional(),
    /** `app`: credentials sent to the application (Basic or Bearer). */
    auth: z.union([z.object({ username: z.string().min(1), password: z.string().min(1) }).strict(), z.object({ bearer: z.string().min(1) }).strict()]).optional(),
    /** `app`: the voice the application's `say` verbs use unless they name one. */
    voice: z.string().min(1).optional(),
    /** `app`: barge-in for gathers that do not say (jambonz's default: off). */
    bargein: z.boolean().optional(),
    /** `app` (webhook): where call status changes are POSTed (jambonz's call status hook). */
    statusHook: z.string().regex(/^https?:\/\/[^\s]+$/, 'expected an http(s):// URL').optional(),
    /** `app`: the application's `dial` verbs: where phone numbers go, and which URIs may be dialed. */
    dial: z
      .object({
        trunk: z.string().regex(/^sips?:[^\s@]+$/, 'expected a sip: or sips: URI without a user part (sip:carrier.example.com:5060)').optional(),
        allow: regex.optional(),
      })
      .strict()
      .optional(),
    /** `bridge`: where the B2BUA sends the call. */
    target: z.string().regex(/^sips?:/, 'expected a sip: or sips: URI').optional(),
    /** `reject`: the SIP status and reason phrase. */
    status: SipStatus.optional(),
    reason: z.string().min(1).optional(),
    parties: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'party names are letters, digits, _ . -'), PartySchema).optional(),
    language: z.string().regex(/^(auto|[a-z]{2,3})$/, 'expected "auto" or an ISO 639-1 code').optional(),
    model: z.string().min(1).optional(),
    partials: z.boolean().optional(),
    translate: z.boolean().optional(),
    /** Audio fork out (jambonz listen format) for this rule's calls. */
    fork: z
      .object({
        url: z.string().regex(/^wss?:\/\//, 'expected a ws:// or wss:// URL'),
        mix: z.enum(['mono', 'mixed', 'stereo']).default('stereo'),
        sampleRate: z.union([z.literal(8000), z.literal(16000)]).default(16000),
        bidirectional: z.boolean().default(false),
      })
      .strict()
      .optional(),
    /** Free labels (queue, tenant...) that supervisor scopes select calls by. */
    labels: z.array(z.string().min(1)).default([]),
    /** `tts.providers` / `translation.providers` names for this rule (checked against the configuration at load). */
    synthesizer: z.string().min(1).optional(),
    translator: z.string().min(1).optional(),
    /** `answer`: what the caller is told once answered, and before the gateway hangs up. */
    say: z
      .union([
        Prompts,
        z
          .object({
            answered: Prompts.optional(),
            ending: Prompts.optional(),
            language: z.string().regex(/^[a-z]{2,3}$/, 'expected an ISO 639-1 code').optional(),
            voice: z.string().min(1).optional(),
          })
          .strict(),
      ])
      .optional(),
    /** `bridge`: live interpretation between the parties' languages. */
    interpret: z
      .object({
        original: z.enum(['mute', 'pass']).default('mute'),
        voices: z.object({ caller: z.string().min(1).optional(), callee: z.string().min(1).optional() }).strict().optional(),
        maxLagMs: z.number().int().min(1000).max(60_000).default(8000),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.action === 'app' && !r.url) ctx.addIssue({ code: 'custom', path: ['url'], message: 'an app rule needs the application URL (http(s):// webhook or ws(s):// WebSocket)' });
    if (r.action !== 'app') {
      for (const key of ['url', 'auth', 'voice', 'bargein', 'statusHook', 'dial'] as const) {
        if (r[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `${key} is only for app rules (this one is ${r.action})` });
      }
    }
    if (r.say !== undefined && r.action !== 'answer') ctx.addIssue({ code: 'custom', path: ['say'], message: `say is for answer rules (this one is ${r.action}); bridges speak through interpret` });
    if (r.interpret !== undefined) {
      if (r.action !== 'bridge') ctx.addIssue({ code: 'custom', path: ['interpret'], message: `interpret is for bridge rules (this one is ${r.action})` });
      for (const party of ['caller', 'callee'] as const) {
        const language = r.parties?.[party]?.language;
        if (language === undefined || language === 'auto') {
          ctx.addIssue({ code: 'custom', path: ['parties', party, 'language'], message: `interpret needs the ${party}'s language (an ISO 639-1 code): what the other party's speech is translated into` });
        }
        if (r.parties?.[party]?.transcribe === false) ctx.addIssue({ code: 'custom', path: ['parties', party, 'transcribe'], message: 'interpret translates what each party says: both must be transcribed' });
      }
    }
    if (r.action === 'bridge' && !r.target) ctx.addIssue({ code: 'custom', path: ['target'], message: 'a bridge rule needs a target URI' });
    if (r.action !== 'bridge' && r.target) ctx.addIssue({ code: 'custom', path: ['target'], message: `target is only for bridge rules (this one is ${r.action})` });
    if (r.action === 'reject' && r.status === undefined) ctx.addIssue({ code: 'custom', path: ['status'], message: 'a reject rule needs a SIP status (400-699)' });
    if (r.action !== 'reject' && r.status !== undefined) ctx.addIssue({ code: 'custom', path: ['status'], message: `status is only for reject rules (this one is ${r.action})` });
  });

type RuleFile = z.infer<typeof RuleFileSchema>;
export type RuleMatch = RuleFile['match'];

/** A `reject` rule: refused at the SIP edge with its status; no call is made. */
export interface RejectRule {
  readonly action: 'reject';
  readonly name: string;
  readonly status: number;
  readonly reason?: string;
}

/** A rule as the gateway uses it: how it matches, and the call it makes (or the refusal). */
export interface DialplanRule {
  readonly match: RuleMatch;
  readonly rule: CallRule | RejectRule;
}

/** A key the rule's own checks (superRefine above) made required for its action. */
function checked<T>(value: T | undefined, key: string): T {
  if (value === undefined) throw new DialplanError('(rule)', [{ path: key, message: 'required for this action' }]);
  return value;
}

/** The file form turned into the call level's rule (a union by action: a bridge has its target). */
function toDialplanRule(r: RuleFile): DialplanRule {
  if (r.action === 'reject') {
    return { match: r.match, rule: { action: 'reject', name: r.name, status: checked(r.status, 'status'), ...(r.reason !== undefined ? { reason: r.reason } : {}) } };
  }
  const parties: Readonly<Record<string, PartyPlan>> | undefined = r.parties;
  const fork: AudioForkPlan | undefined = r.fork;
  const common = {
    name: r.name,
    labels: r.labels,
    ...(parties !== undefined ? { parties } : {}),
    ...(r.language !== undefined ? { language: r.language } : {}),
    ...(r.model !== undefined ? { model: r.model } : {}),
    ...(r.partials !== undefined ? { partials: r.partials } : {}),
    ...(r.translate !== undefined ? { translate: r.translate } : {}),
    ...(fork !== undefined ? { fork } : {}),
    ...(r.synthesizer !== undefined ? { synthesizer: r.synthesizer } : {}),
    ...(r.translator !== undefined ? { translator: r.translator } : {}),
  };
  const say: PromptPlan | undefined =
    r.say === undefined
      ? undefined
      : Array.isArray(r.say)
        ? { answered: r.say, ending: [] }
        : {
            answered: r.say.answered ?? [],
            ending: r.say.ending ?? [],
            ...(r.say.language !== undefined ? { language: r.say.language } : {}),
            ...(r.say.voice !== undefined ? { voice: r.say.voice } : {}),
          };
  const interpret: InterpretationPlan | undefined =
    r.interpret === undefined ? undefined : { original: r.interpret.original, maxLagMs: r.interpret.maxLagMs, ...(r.interpret.voices ? { voices: r.interpret.voices } : {}) };
  const rule: CallRule =
    r.action === 'bridge'
      ? { ...common, action: 'bridge', target: checked(r.target, 'target'), ...(interpret ? { interpret } : {}) }
      : r.action === 'answer'
        ? { ...common, action: 'answer', ...(say ? { say } : {}) }
        : r.action === 'app'
          ? {
              ...common,
              action: 'app',
              url: checked(r.url, 'url'),
              ...(r.auth ? { auth: r.auth } : {}),
              ...(r.voice !== undefined ? { voice: r.voice } : {}),
              ...(r.bargein !== undefined ? { bargein: r.bargein } : {}),
              ...(r.statusHook !== undefined ? { statusHook: r.statusHook } : {}),
              ...(r.dial !== undefined ? { dial: { ...(r.dial.trunk !== undefined ? { trunk: r.dial.trunk } : {}), ...(r.dial.allow !== undefined ? { allow: r.dial.allow } : {}) } } : {}),
            }
          : { ...common, action: r.action };
  return { match: r.match, rule };
}

export const RuleSchema = RuleFileSchema.transform(toDialplanRule);
export const DialplanFileSchema = z.object({ rules: z.array(RuleSchema) }).strict();

export class DialplanError extends WhisperlineError {
  constructor(
    readonly file: string,
    readonly issues: readonly { path: string; message: string }[],
  ) {
    super('CONFIG_INVALID', `invalid dialplan ${file}:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
  }
}

/** A rule with its matchers compiled once. */
export interface CompiledRule {
  readonly rule: CallRule | RejectRule;
  /** `file#index` for logs and errors. */
  readonly origin: string;
  matches(facts: InviteFacts): boolean;
}

export type Decision =
  | { readonly kind: 'rule'; readonly rule: CallRule; readonly origin: string }
  | { readonly kind: 'reject'; readonly rule: RejectRule; readonly origin: string }
  | { readonly kind: 'no-match'; readonly status: number; readonly reason: string };

export function parseCidr(v: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address, bits, extra] = v.split('/');
  if (extra !== undefined || !address) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

export function compileRule({ match: m, rule }: DialplanRule, origin: string): CompiledRule {
  const tests: ((f: InviteFacts) => boolean)[] = [];
  if (m.kind !== 'any') tests.push((f) => f.kind === m.kind);
  if (m.requestUser !== undefined) {
    const re = new RegExp(m.requestUser);
    tests.push((f) => re.test(f.requestUser));
  }
  if (m.to !== undefined) {
    const re = new RegExp(m.to);
    tests.push((f) => re.test(f.to));
  }
  if (m.from !== undefined) {
    const re = new RegExp(m.from);
    tests.push((f) => re.test(f.from));
  }
  for (const [name, pattern] of Object.entries(m.headers ?? {})) {
    const re = new RegExp(pattern);
    const key = name.toLowerCase();
    tests.push((f) => f.headers[key] !== undefined && re.test(f.headers[key]!));
  }
  if (m.source !== undefined) {
    const list = new BlockList();
    for (const block of Array.isArray(m.source) ? m.source : [m.source]) {
      const c = parseCidr(block)!;
      list.addSubnet(c.address, c.prefix, c.family);
    }
    tests.push((f) => {
      const v = isIP(f.source);
      return v !== 0 && list.check(f.source, v === 4 ? 'ipv4' : 'ipv6');
    });
  }
  return { rule, origin, matches: (f) => tests.every((t) => t(f)) };
}

/** Validates one dialplan file's parsed YAML; throws DialplanError naming every bad key. */
export function parseDialplanFile(doc: unknown, file: string): CompiledRule[] {
  const result = DialplanFileSchema.safeParse(doc ?? { rules: [] });
  if (!result.success) {
    const issues = result.error.issues.flatMap((i) =>
      i.code === 'unrecognized_keys'
        ? i.keys.map((k) => ({ path: [...i.path, k].join('.'), message: 'unknown key' }))
        : [{ path: i.path.join('.') || '(root)', message: i.message }],
    );
    throw new DialplanError(file, issues);
  }
  const names = new Set<string>();
  const dupes = result.data.rules.filter(({ rule: r }) => (names.has(r.name) ? true : (names.add(r.name), false)));
  if (dupes.length > 0) throw new DialplanError(file, dupes.map(({ rule: r }) => ({ path: 'rules', message: `duplicate rule name "${r.name}"` })));
  return result.data.rules.map((r, i) => compileRule(r, `${file}#${i}`));
}

/** The rules of every dialplan file, in order; the first rule that matches decides. */
export class Dialplan {
  constructor(
    readonly rules: readonly CompiledRule[],
    private readonly noMatchStatus = 404,
  ) {}

  decide(facts: InviteFacts): Decision {
    for (const r of this.rules) {
      if (!r.matches(facts)) continue;
      return r.rule.action === 'reject' ? { kind: 'reject', rule: r.rule, origin: r.origin } : { kind: 'rule', rule: r.rule, origin: r.origin };
    }
    return { kind: 'no-match', status: this.noMatchStatus, reason: this.noMatchStatus === 404 ? 'Not Found' : 'No Matching Dialplan Rule' };
  }
}
