/**
 * jambonz verb arrays as applications send them: normalised to the call level's `Verb` shape and
 * validated against jambonz's own verb specifications (`@jambonz/verb-specifications`, the
 * schemas the feature-server and the jambonz client libraries validate with).
 *
 * - Normalising follows jambonz's `normalizeJambones`: the reply must be an array of objects, each
 *   either `{verb: 'say', text}` or a single key `{say: {text}}`; jambonz's verb aliases apply
 *   (`stream` → `listen`, `s2s` → `llm`, `openai_s2s` → `llm` with `vendor: 'openai'`, …). The
 *   result is always `{verb, ...fields}`. What does not fit is an APP_FAILED naming the index and
 *   what was wrong (jambonz's own messages do not say which entry).
 * - Validating is jambonz's `validateVerb` (unknown property, wrong type, missing required field,
 *   enum values, nested `say`/`play`/`synthesizer`…), its messages rewritten to name the verb and
 *   the field, plus an allow-list: a verb jambonz knows but this gateway does not run is reported
 *   as "not supported by whisperline" rather than failing later mid-call.
 */
import verbSpecifications from '@jambonz/verb-specifications';
import { WhisperlineError } from '../errors.js';
import type { Verb } from '../call/app-channel.js';

const { specs, validateVerb, normalizeJambones } = verbSpecifications;

/** The library's functions log through this; nothing they log is worth a line of ours. */
const QUIET = { info: () => undefined };

/**
 * The verbs of jambonz's specifications. The specifications also hold nested types (`synthesizer`,
 * `recognizer`, `target`, `*Options`…) under the same map, which are not verbs an application may
 * send at the top level; jambonz's task factory knows which are which, the specs do not.
 */
export const JAMBONZ_VERBS: readonly string[] = [
  'alert', 'answer', 'conference', 'config', 'dequeue', 'dial', 'dialogflow', 'dtmf', 'dub', 'enqueue',
  'gather', 'hangup', 'leave', 'lex', 'listen', 'llm', 'message', 'pause', 'pipeline', 'play', 'rasa',
  'record', 'redirect', 'rest:dial', 'say', 'sip:decline', 'sip:refer', 'sip:request', 'tag', 'transcribe',
].filter((v) => v in specs);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const fail = (message: string): WhisperlineError => new WhisperlineError('APP_FAILED', message);

/**
 * `body` (an application's reply, parsed) as verbs `{verb, ...fields}`, or APP_FAILED saying what
 * is wrong (`what` names the reply: `the reply to session:new`).
 */
export function normaliseVerbs(body: unknown, what: string): Verb[] {
  if (!Array.isArray(body)) throw fail(`${what} is not an array of verbs (got ${describe(body)})`);
  body.forEach((entry, i) => {
    if (!isRecord(entry)) throw fail(`${what}: entry ${i} is not an object (got ${describe(entry)})`);
    if ('verb' in entry) {
      if (typeof entry.verb !== 'string' || entry.verb === '') throw fail(`${what}: entry ${i} has a "verb" that is not a verb name (got ${describe(entry.verb)})`);
      return;
    }
    const keys = Object.keys(entry);
    if (keys.length !== 1) throw fail(`${what}: entry ${i} has no "verb" property (and is not a single {verbName: {...}})`);
    if (!isRecord(entry[keys[0]!])) throw fail(`${what}: entry ${i} ("${keys[0]}") does not hold an object of the verb's fields`);
  });
  // The checks above leave nothing for jambonz's normaliser to reject; it applies the aliases.
  return normalizeJambones(QUIET, body).map((doc) => {
    const [name, data] = Object.entries(doc)[0]!;
    return { ...data, verb: name };
  });
}

/** The outcome of `validateVerbs`: the first problem found (verbs run in order, so later ones would not matter yet). */
export type VerbCheck = { readonly ok: true } | { readonly ok: false; readonly index: number; readonly verb: string; readonly message: string };

/**
 * Checks verbs (in the `Verb` shape) against jambonz's specifications and, when `supported` is
 * given, against the verbs this gateway runs. Never throws: the call decides (tell the app with
 * `error()`, hang up).
 */
export function validateVerbs(verbs: readonly Verb[], supported?: readonly string[]): VerbCheck {
  for (const [index, entry] of verbs.entries()) {
    const { verb, ...data } = entry;
    const bad = (message: string): VerbCheck => ({ ok: false, index, verb, message });
    if (!JAMBONZ_VERBS.includes(verb)) return bad(`"${verb}" is not a jambonz verb`);
    if (supported && !supported.includes(verb)) return bad(`${verb}: not supported by whisperline (supported: ${supported.join(', ')})`);
    try {
      validateVerb(verb, data, QUIET);
    } catch (err) {
      return bad(explain(verb, err instanceof Error ? err.message : String(err)));
    }
  }
  return { ok: true };
}

/**
 * jambonz's messages (`gather: property timeout has invalid data type`) as `gather: "timeout"
 * must be a number`. A nested type's message names the nested type (`say: …` inside a gather),
 * so it is put under the verb: `gather > say: "text" must be a string or an array`.
 */
function explain(verb: string, message: string): string {
  let m = /^([\w:]+): property (\S+) (?:has invalid data type|is not an array)/.exec(message);
  if (m) return `${scope(verb, m[1]!)}: "${m[2]}" must be ${expected(m[1]!, m[2]!)}`;
  m = /^([\w:]+): unknown property (\S+)/.exec(message);
  if (m) return `${scope(verb, m[1]!)}: unknown property "${m[2]}"`;
  m = /^([\w:]+): missing value for (.+)$/.exec(message);
  if (m) return `${scope(verb, m[1]!)}: missing required ${m[2]!.split(',').map((f) => `"${f}"`).join(', ')}`;
  m = /^invalid value (.*) must be one of (.*)$/.exec(message);
  if (m) return `${verb}: invalid value "${m[1]}" (must be one of ${m[2]!.split(',').join(', ')})`;
  m = /^invalid instruction: (.+)$/.exec(message);
  if (m) return `${verb}: unknown nested type "${m[1]}"`;
  return `${verb}: ${message}`;
}

const scope = (verb: string, reported: string): string => (reported === verb ? verb : `${verb} > ${reported}`);

/** What the spec wants for `field` of `type`, in words: `a number`, `a string or an array`, `an object (say)`. */
function expected(type: string, field: string): string {
  const spec = specs[type]?.properties[field];
  const article = (t: string): string => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);
  if (typeof spec === 'string') {
    if (spec.startsWith('#')) return `an object (${spec.slice(1)})`;
    return spec.split('|').map((t) => article(t.trim())).join(' or ');
  }
  if (Array.isArray(spec)) return `an array`;
  return 'of another type';
}

/** A value's kind for messages, without echoing what may be a long body. */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `a string${v.length <= 40 ? ` ${JSON.stringify(v)}` : ''}`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

/** Every invalid or unsupported verb of `verbs`, by position, with its message (what the runner reports and skips). */
export function verbProblems(verbs: readonly Verb[], supported?: readonly string[]): { index: number; message: string }[] {
  return verbs.flatMap((verb, index) => {
    const check = validateVerbs([verb], supported);
    return check.ok ? [] : [{ index, message: check.message }];
  });
}
