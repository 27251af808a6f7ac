import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { EnvHttpProxyAgent, fetch, type Response } from 'undici';
import { WhisperlineError } from '../../errors.js';

/**
 * whisper.cpp ggml models: the catalogue (sizes and SHA-1 from whisper.cpp's models/README.md),
 * where they live on disk, and their download with progress, checksum and stall detection.
 */
export interface ModelInfo {
  readonly name: string;
  readonly sizeMiB: number;
  readonly sha1: string;
  readonly multilingual: boolean;
}

const CATALOG_ROWS: [string, number, string][] = [
  ['tiny', 75, 'bd577a113a864445d4c299885e0cb97d4ba92b5f'],
  ['tiny.en', 75, 'c78c86eb1a8faa21b369bcd33207cc90d64ae9df'],
  ['base', 142, '465707469ff3a37a2b9b8d8f89f2f99de7299dac'],
  ['base.en', 142, '137c40403d78fd54d454da0f9bd998f78703390c'],
  ['small', 466, '55356645c2b361a969dfd0ef2c5a50d530afd8d5'],
  ['small.en', 466, 'db8a495a91d927739e50b3fc1cc4c6b8f6c2d022'],
  ['medium', 1536, 'fd9727b6e1217c2f614f9b698455c4ffd82463b4'],
  ['medium.en', 1536, '8c30f0e44ce9560643ebd10bbe50cd20eafd3723'],
  ['large-v2', 2970, '0f4c8e34f21cf1a914c59d8b3ce882345ad349d6'],
  ['large-v3', 2970, 'ad82bf6a9043ceed055076d0fd39f5f186ff8062'],
  ['large-v3-q5_0', 1126, 'e6e2ed78495d403bef4b7cff42ef4aaadcfea8de'],
  ['large-v3-turbo', 1536, '4af2b29d7ec73d781377bfd1758ca957a807e941'],
  ['large-v3-turbo-q5_0', 547, 'e050f7970618a659205450ad97eb95a18d69c9ee'],
];

export const MODEL_CATALOG: ReadonlyMap<string, ModelInfo> = new Map(
  CATALOG_ROWS.map(([name, sizeMiB, sha1]) => [name, { name, sizeMiB, sha1, multilingual: !name.includes('.en') }]),
);

export class ModelError extends WhisperlineError {}

export const modelFileName = (name: string): string => `ggml-${name}.bin`;

/** A model setting is a path when it names a file; otherwise a catalogue name. */
export function isModelPath(model: string): boolean {
  return model.includes('/') || model.endsWith('.bin');
}

/** What a model setting may be, for messages: the catalogue's names, or a path. */
export const MODEL_CHOICES = `known: ${[...MODEL_CATALOG.keys()].join(', ')}; or give a path to a ggml file`;

/** Whether a model setting is a catalogue name or a path (whether that file exists is checked when it is opened). */
export const isKnownModel = (model: string): boolean => isModelPath(model) || MODEL_CATALOG.has(model);

/**
 * Resolves the configured model to a file that exists, or fails at once with what to do about it
 * (the gateway must not start and then hang waiting for a model that is not there).
 */
export function resolveModel(model: string, modelDir: string): string {
  if (isModelPath(model)) {
    const path = isAbsolute(model) ? model : resolve(model);
    if (!existsSync(path)) throw new ModelError('MODEL_MISSING', `model file ${path} does not exist`);
    return path;
  }
  if (!MODEL_CATALOG.has(model)) {
    throw new ModelError('MODEL_UNKNOWN', `unknown model "${model}" (${MODEL_CHOICES})`);
  }
  const path = join(modelDir, modelFileName(model));
  if (!existsSync(path)) {
    throw new ModelError('MODEL_MISSING', `model "${model}" is not in ${modelDir}: run \`whisperline models download ${model}\``);
  }
  return path;
}

export interface InstalledModel extends ModelInfo {
  readonly installed: boolean;
  readonly path: string;
}

export function listModels(modelDir: string): InstalledModel[] {
  return [...MODEL_CATALOG.values()].map((m) => {
    const path = join(modelDir, modelFileName(m.name));
    return { ...m, path, installed: existsSync(path) && statSync(path).size > 0 };
  });
}

export interface DownloadProgress {
  readonly receivedBytes: number;
  /** From Content-Length; undefined when the server does not say. */
  readonly totalBytes: number | undefined;
}

export interface DownloadOptions {
  readonly modelDir: string;
  readonly baseUrl: string;
  readonly onProgress?: (p: DownloadProgress) => void;
  /** No byte for this long aborts the download (ms). Default 30 s. */
  readonly stallTimeoutMs?: number;
  /** Overrides the catalogue checksum (tests; private mirrors of other models). */
  readonly sha1?: string;
  readonly signal?: AbortSignal;
  /**
   * Where HTTPS_PROXY / https_proxy, HTTP_PROXY / http_proxy and NO_PROXY / no_proxy are read.
   * Default: the process environment.
   */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The proxy settings in `env`, for undici's EnvHttpProxyAgent: the proxy the URL's scheme calls for
 * (an https URL falls back to the HTTP proxy, as curl does), none for the hosts NO_PROXY lists.
 * Read from `env` here rather than by the agent, which would read process.env. The lower-case
 * names win, as in curl and undici.
 */
function proxySettings(env: NodeJS.ProcessEnv): { httpProxy?: string; httpsProxy?: string; noProxy: string } {
  const pick = (name: string): string | undefined => (env[name.toLowerCase()] ?? env[name]) || undefined;
  const httpProxy = pick('HTTP_PROXY');
  const httpsProxy = pick('HTTPS_PROXY') ?? httpProxy;
  return { httpProxy, httpsProxy, noProxy: env.no_proxy ?? env.NO_PROXY ?? '' };
}

/**
 * Downloads a catalogue model into `modelDir`: streamed to a `.part` file while hashing, verified
 * against its SHA-1, then renamed into place, so a failed or interrupted download never leaves a
 * file that looks like a model. Goes through the proxy the environment names (Node's own fetch
 * ignores HTTPS_PROXY, which left gateways behind a proxy without a model); every failure says
 * what to do instead of downloading.
 */
export async function downloadModel(name: string, options: DownloadOptions): Promise<string> {
  const info = MODEL_CATALOG.get(name);
  const expected = options.sha1 ?? info?.sha1;
  if (!expected) throw new ModelError('MODEL_DOWNLOAD', `unknown model "${name}" (known: ${[...MODEL_CATALOG.keys()].join(', ')})`);
  mkdirSync(options.modelDir, { recursive: true });
  const target = join(options.modelDir, modelFileName(name));
  const part = `${target}.part`;
  const url = `${options.baseUrl.replace(/\/+$/, '')}/${modelFileName(name)}`;
  const stallMs = options.stallTimeoutMs ?? 30_000;
  const proxy = proxySettings(options.env ?? process.env);
  // `unreachable`: no answer from the server at all, where a missing proxy setting is a likely cause.
  const failed = (reason: string, cause?: unknown, unreachable = false): ModelError =>
    new ModelError('MODEL_DOWNLOAD', downloadFailure(name, url, options.modelDir, reason, unreachable && !proxy.httpsProxy), { retryable: true, cause });

  const abort = new AbortController();
  const onOuterAbort = (): void => abort.abort(new ModelError('MODEL_DOWNLOAD', `download of ${name} cancelled`));
  options.signal?.addEventListener('abort', onOuterAbort);
  let stallTimer: NodeJS.Timeout | undefined;
  let receivedBytes = 0;
  const armStall = (): void => {
    clearTimeout(stallTimer);
    // Nothing at all yet is how a firewall that drops what does not go through the proxy looks.
    stallTimer = setTimeout(() => abort.abort(failed(`stalled: no data for ${stallMs} ms`, undefined, receivedBytes === 0)), stallMs);
  };
  // One agent per download: redirects (the catalogue host answers with one to its CDN) are
  // dispatched through it too, each origin with its own proxy decision. https goes through a
  // CONNECT tunnel; plain http is sent to the proxy as an absolute URL, as curl does, because
  // proxies commonly refuse CONNECT to ports other than 443 (Squid's default configuration).
  const dispatcher = new EnvHttpProxyAgent({ ...proxy, proxyTunnel: false });
  try {
    armStall();
    let response: Response;
    try {
      response = await fetch(url, { signal: abort.signal, redirect: 'follow', dispatcher });
    } catch (err) {
      throw downloadError(err, abort.signal, 'cannot be reached', failed, true);
    }
    if (!response.ok || !response.body) {
      throw failed(`HTTP ${response.status} ${response.statusText}`.trim());
    }
    const length = Number(response.headers.get('content-length'));
    const totalBytes = Number.isFinite(length) && length > 0 ? length : undefined;
    const hash = createHash('sha1');
    const out = createWriteStream(part);
    try {
      const reader = response.body.getReader();
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (err) {
          throw downloadError(err, abort.signal, 'interrupted after ' + receivedBytes + ' bytes', failed, false);
        }
        if (chunk.done) break;
        armStall();
        hash.update(chunk.value);
        receivedBytes += chunk.value.length;
        if (!out.write(chunk.value)) await new Promise<void>((r) => out.once('drain', () => r()));
        options.onProgress?.({ receivedBytes, totalBytes });
      }
    } finally {
      await new Promise<void>((r) => out.end(r));
    }
    if (totalBytes !== undefined && receivedBytes !== totalBytes) {
      throw failed(`ended early: ${receivedBytes} of ${totalBytes} bytes`);
    }
    const actual = hash.digest('hex');
    if (actual !== expected) {
      throw failed(`checksum mismatch: expected SHA-1 ${expected}, got ${actual}`);
    }
    renameSync(part, target);
    return target;
  } catch (err) {
    rmSync(part, { force: true });
    throw err;
  } finally {
    clearTimeout(stallTimer);
    options.signal?.removeEventListener('abort', onOuterAbort);
    // Nothing is in flight any more (the body was read to its end or the request aborted); this
    // closes the kept-alive sockets to the server or proxy, which would otherwise hold the process.
    await dispatcher.destroy().catch(() => undefined);
  }
}

/** The error for a fetch or body read that threw: the stall or cancellation that aborted it, or what the socket said. */
function downloadError(
  err: unknown,
  signal: AbortSignal,
  what: string,
  failed: (reason: string, cause: unknown, unreachable: boolean) => ModelError,
  unreachable: boolean,
): ModelError {
  if (signal.aborted && signal.reason instanceof ModelError) return signal.reason;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = [cause?.code, cause?.message ?? (err as Error).message].filter(Boolean).join(' ');
  return failed(`${what}: ${why}`, err, unreachable);
}

/**
 * A failed download's message: what failed, then the ways to a model without this download (the
 * usual case is a gateway that cannot reach the model host at all), and the proxy variables when
 * the host was not reached and no proxy is set.
 */
function downloadFailure(name: string, url: string, modelDir: string, reason: string, suggestProxy: boolean): string {
  const viaProxy = suggestProxy ? '; if this machine reaches the internet only through a proxy, set HTTPS_PROXY (and NO_PROXY for hosts to reach directly)' : '';
  return (
    `download of ${modelFileName(name)} from ${url} failed (${reason}): set asr.model to the path of a model file you have, ` +
    `or run \`whisperline models download ${name}\` on a machine with internet access and copy ${modelFileName(name)} to ${modelDir}${viaProxy}`
  );
}

/** One line of a terminal progress bar: `[#####.....]  45%  64.0/142.0 MiB  12.3 MiB/s`. */
export function progressLine(p: DownloadProgress, elapsedMs: number, width = 30): string {
  const mib = (b: number): string => (b / 1048576).toFixed(1);
  const rate = elapsedMs > 0 ? `${mib((p.receivedBytes * 1000) / elapsedMs)} MiB/s` : '';
  if (p.totalBytes === undefined) return `${mib(p.receivedBytes)} MiB  ${rate}`;
  const frac = Math.min(1, p.receivedBytes / p.totalBytes);
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(frac * 100)).padStart(3)}%  ${mib(p.receivedBytes)}/${mib(p.totalBytes)} MiB  ${rate}`;
}
