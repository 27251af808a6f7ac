import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { WhisperlineError } from '../errors.js';
import { ConfigSchema, type Config } from './schema.js';

/** The embedded defaults, shipped next to `src/` and `dist/`. */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../config/default.yaml', import.meta.url));

export const ENV_PREFIX = 'WHISPERLINE_';
/** Names the config file; not a key itself. */
export const ENV_CONFIG_FILE = 'WHISPERLINE_CONFIG';

/**
 * WHISPERLINE_ variables that are not settings, so they are not mapped onto keys (where they would
 * fail as unknown): the config file's name, a switch the audio code reads where it acts, and the
 * test suite's own (`WHISPERLINE_TEST_*`, the whisper build directory), which a developer's shell
 * keeps exported while running the gateway.
 */
const NOT_SETTINGS: ReadonlySet<string> = new Set([ENV_CONFIG_FILE, 'WHISPERLINE_NO_SIMD', 'WHISPERLINE_BUILD_DIR']);
export const isSettingVariable = (name: string): boolean => name.startsWith(ENV_PREFIX) && !NOT_SETTINGS.has(name) && !name.startsWith('WHISPERLINE_TEST_');

export interface ConfigIssue {
  /** Where the bad value came from: a key path (`media.portMin`) or an environment variable. */
  readonly path: string;
  readonly message: string;
}

export class ConfigError extends WhisperlineError {
  constructor(
    readonly source: string,
    readonly issues: readonly ConfigIssue[],
  ) {
    super('CONFIG_INVALID', `invalid configuration (${source}):\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
  }
}

type Tree = Record<string, unknown>;

const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

function readYaml(path: string): Tree {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [{ path: '(file)', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? `line ${err.linePos[0].line}` : '(file)';
    throw new ConfigError(path, [{ path: where, message: `not valid YAML: ${(err as Error).message.split('\n')[0]}` }]);
  }
  if (doc === null || doc === undefined) return {};
  if (!isTree(doc)) throw new ConfigError(path, [{ path: '(root)', message: 'expected a mapping of keys' }]);
  return doc;
}

/** Objects merge key by key; anything else (scalars, lists) in `over` replaces `base`. */
export function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isTree(b) && isTree(v) ? deepMerge(b, v) : v;
  }
  return out;
}

const screamingSnake = (key: string): string => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** Maps every leaf of the defaults to its environment variable name. */
export function envNames(defaults: Tree, prefix: string[] = []): Map<string, string[]> {
  const names = new Map<string, string[]>();
  for (const [k, v] of Object.entries(defaults)) {
    const path = [...prefix, k];
    if (isTree(v)) {
      for (const [n, p] of envNames(v, path)) names.set(n, p);
    } else {
      names.set(ENV_PREFIX + path.map(screamingSnake).join('_'), path);
    }
  }
  return names;
}

function setPath(tree: Tree, path: readonly string[], value: unknown): void {
  let node = tree;
  for (const k of path.slice(0, -1)) {
    const next = node[k];
    node = node[k] = isTree(next) ? { ...next } : {};
  }
  node[path[path.length - 1]!] = value;
}

/** Keys an earlier version had, and where they live now: an unknown key says where it went. */
const MOVED: Readonly<Record<string, string>> = {
  'asr.servers': 'asr.remote.servers (with asr.provider: remote)',
  'asr.poolSize': 'asr.local.poolSize',
  'asr.threads': 'asr.local.threads',
  'asr.cuda': 'asr.local.cuda',
  'asr.buildDir': 'asr.local.buildDir',
};

const movedNote = (path: string): string => (MOVED[path] ? `; it moved to ${MOVED[path]}` : '');

function applyEnv(tree: Tree, defaults: Tree, env: NodeJS.ProcessEnv): { tree: Tree; issues: ConfigIssue[] } {
  const names = envNames(defaults);
  const issues: ConfigIssue[] = [];
  let out = tree;
  for (const [name, raw] of Object.entries(env)) {
    if (!isSettingVariable(name) || raw === undefined) continue;
    const path = names.get(name);
    if (!path) {
      const moved = Object.keys(MOVED).find((old) => ENV_PREFIX + old.split('.').map(screamingSnake).join('_') === name);
      issues.push({ path: name, message: `unknown setting (no such key in config/default.yaml)${moved ? movedNote(moved) : ''}` });
      continue;
    }
    let value: unknown = raw;
    try {
      value = parseYaml(raw);
    } catch {
      // Not a YAML scalar: keep the raw string and let the schema judge it.
    }
    out = deepMerge(out, {});
    setPath(out, path, value);
  }
  return { tree: out, issues };
}

export interface LoadOptions {
  /** A user config file merged over the defaults; defaults to $WHISPERLINE_CONFIG. */
  readonly file?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  readonly defaultsPath?: string;
}

/**
 * Loads defaults, the user's file and the environment, and validates the result against the one
 * schema. Throws `ConfigError` listing every bad key with what was expected.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env[ENV_CONFIG_FILE];
  const defaults = readYaml(options.defaultsPath ?? DEFAULT_CONFIG_PATH);
  const merged = file ? deepMerge(defaults, readYaml(file)) : defaults;
  const { tree, issues } = applyEnv(merged, defaults, env);
  // The input of each issue, so a wrong choice can say what it got.
  const result = ConfigSchema.safeParse(tree, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const path = [...issue.path, key].join('.');
          issues.push({ path, message: `unknown key${movedNote(path)}` });
        }
      } else {
        issues.push({ path: issue.path.join('.') || '(root)', message: issueMessage(issue) });
      }
    }
  }
  if (issues.length > 0) throw new ConfigError(file ?? 'defaults', issues);
  const config = (result as { data: Config }).data;
  config.asr.modelDir = expandHome(config.asr.modelDir);
  config.asr.local.buildDir = expandHome(config.asr.local.buildDir);
  config.store.path = expandHome(config.store.path);
  return config;
}

const shown = (v: unknown): string => {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

/**
 * A choice (an enum, or a union such as `8000 | 16000` or `"auto" | number`) names every allowed
 * value and what it got: zod says only "Invalid input" for a union.
 */
function issueMessage(issue: z.core.$ZodIssue): string {
  const got = 'input' in issue && issue.input !== undefined ? ` (got ${shown(issue.input)})` : '';
  if (issue.code === 'invalid_value') return `expected one of ${issue.values.map(shown).join(', ')}${got}`;
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return issue.message;
  const alternatives: string[] = [];
  for (const branch of issue.errors) {
    const first = branch[0];
    if (first === undefined) return issue.message;
    // A branch of the right type that failed a bound (e.g. a number out of range) says what is wrong.
    if (first.code === 'invalid_value') alternatives.push(...first.values.map(shown));
    else if (first.code === 'invalid_type') alternatives.push(`a ${first.expected}`);
    else if (first.code === 'invalid_format') alternatives.push(`a valid ${first.format}`);
    else return first.message;
  }
  return `expected one of ${alternatives.join(', ')}${got}`;
}

/** A secret as printed: that it is set and its length (a truncated paste shows), never the value. */
const secretShown = (secret: string): string => `<set, ${secret.length} characters>`;

/** A URL with its password (if any) replaced: `http://user:<redacted>@host/`. */
function urlShown(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === '') return url;
    u.password = 'redacted';
    return u.toString().replace(':redacted@', ':<redacted>@');
  } catch {
    return url;
  }
}

/**
 * The configuration as `check-config` prints it: every secret (the drachtio secret, supervisor
 * tokens, ingest API keys, the metrics token, passwords in URLs) replaced by a note that it is
 * set, so the output can be pasted into a ticket or a CI log.
 */
export function redactSecrets(config: Config): unknown {
  return {
    ...config,
    http: { ...config.http, metricsToken: config.http.metricsToken === undefined ? null : secretShown(config.http.metricsToken) },
    sip: { ...config.sip, drachtioSecret: secretShown(config.sip.drachtioSecret) },
    asr: { ...config.asr, modelBaseUrl: urlShown(config.asr.modelBaseUrl), remote: { ...config.asr.remote, servers: config.asr.remote.servers.map(urlShown) } },
    supervisor: { ...config.supervisor, tokens: config.supervisor.tokens.map((t) => ({ ...t, token: secretShown(t.token) })) },
    feeds: { ...config.feeds, ingest: { ...config.feeds.ingest, apiKeys: config.feeds.ingest.apiKeys.map(secretShown) } },
    tts: {
      ...config.tts,
      providers: config.tts.providers.map((p) => ('apiKey' in p && p.apiKey !== undefined ? { ...p, apiKey: secretShown(p.apiKey) } : p)),
      serve: { ...config.tts.serve, apiKeys: config.tts.serve.apiKeys.map(secretShown) },
    },
    translation: {
      ...config.translation,
      providers: config.translation.providers.map((p) =>
        p.type === 'deepl' ? { ...p, authKey: secretShown(p.authKey) } : 'apiKey' in p && p.apiKey !== undefined ? { ...p, apiKey: secretShown(p.apiKey) } : p,
      ),
    },
  };
}

/** `~/x` → the user's home directory joined with `x`; other paths unchanged. */
export function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}
