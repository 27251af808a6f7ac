import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { WhisperlineError } from '../errors.js';
import { ConfigSchema, type Config } from './schema.js';

/** The embedded defaults, shipped next to `src/` and `dist/`. */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../config/default.yaml', import.meta.url));

export const ENV_PREFIX = 'WHISPERLINE_';
/** Names the config file; not a key itself. */
export const ENV_CONFIG_FILE = 'WHISPERLINE_CONFIG';

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
    if (!name.startsWith(ENV_PREFIX) || name === ENV_CONFIG_FILE || raw === undefined) continue;
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
  const result = ConfigSchema.safeParse(tree);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const path = [...issue.path, key].join('.');
          issues.push({ path, message: `unknown key${movedNote(path)}` });
        }
      } else {
        issues.push({ path: issue.path.join('.') || '(root)', message: issue.message });
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

/** `~/x` → the user's home directory joined with `x`; other paths unchanged. */
export function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}
