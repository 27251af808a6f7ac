/**
 * Builds `whisper-server` (and `whisper-cli`, which benchmarks compare against) once from the
 * whisper.cpp source that `nodejs-whisper` bundles, into a cache shared by every checkout of
 * the same user (a working copy, a CI clone, two clones set up at once).
 *
 * - A build is keyed by what it is built from: the whisper.cpp and nodejs-whisper versions, the
 *   CMake options and the CPU (GGML_NATIVE), never by the checkout's path. It lives in
 *   `<buildDir>/<variant>-<key>/bin`, with a stamp that records the key's parts.
 * - It is compiled in a private temporary tree (CMake ties a tree to its source directory), then
 *   the standalone binaries (static libraries) are moved into place with one rename, under a
 *   lock per key: a reader sees a whole build or none, and no build anyone uses is removed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WhisperlineError } from '../../errors.js';
import type { Logger } from '../../log.js';

export const DEFAULT_BUILD_DIR = join(homedir(), '.cache', 'whisperline', 'whisper.cpp');

export interface WhisperBuildOptions {
  /** Root of the build cache; a build lives in `<buildDir>/<cpu|cuda>-<key>`. */
  readonly buildDir: string;
  /** Build with CUDA (`-DGGML_CUDA=1`); needs `nvcc`. */
  readonly cuda: boolean;
  readonly logger?: Logger;
  /** Build output lines (cmake/compiler), e.g. for a CLI progress display. */
  readonly onOutput?: (line: string) => void;
}

export interface WhisperBinaries {
  readonly server: string;
  readonly cli: string;
}

/** What a build is made from: its cache key. The source's path is not part of it. */
interface Stamp {
  readonly nodejsWhisper: string;
  readonly whisperCpp: string;
  readonly cmakeArgs: readonly string[];
  /** GGML_NATIVE compiles for this CPU: a cache copied to another CPU model is rebuilt. */
  readonly cpu: string;
}

/** The cache key of a stamp: short, stable, filesystem-safe. */
export function buildKey(stamp: Stamp): string {
  return createHash('sha256').update(JSON.stringify(stamp)).digest('hex').slice(0, 16);
}

/** The whisper.cpp source tree bundled in nodejs-whisper, and the versions that identify it. */
export async function bundledWhisperSource(): Promise<{ dir: string; nodejsWhisper: string; whisperCpp: string }> {
  const require = createRequire(import.meta.url);
  let pkgPath: string;
  try {
    pkgPath = require.resolve('nodejs-whisper/package.json');
  } catch (cause) {
    throw new WhisperlineError('ASR_BUILD', 'nodejs-whisper is not installed: it carries the whisper.cpp source', { cause });
  }
  const dir = join(dirname(pkgPath), 'cpp', 'whisper.cpp');
  const pkg = JSON.parse(await readFile(pkgPath, 'utf8')) as { version?: string };
  let cmakeLists: string;
  try {
    cmakeLists = await readFile(join(dir, 'CMakeLists.txt'), 'utf8');
  } catch (cause) {
    throw new WhisperlineError('ASR_BUILD', `whisper.cpp source not found in ${dir}`, { cause });
  }
  const whisperCpp = /project\("whisper\.cpp"\s+VERSION\s+([\d.]+)\)/.exec(cmakeLists)?.[1] ?? 'unknown';
  return { dir, nodejsWhisper: pkg.version ?? 'unknown', whisperCpp };
}

export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

export function cmakeArgsFor(cuda: boolean): string[] {
  return [
    '-DCMAKE_BUILD_TYPE=Release',
    // Static libraries: the binaries do not depend on the build tree's shared objects.
    '-DBUILD_SHARED_LIBS=OFF',
    '-DWHISPER_BUILD_TESTS=OFF',
    '-DWHISPER_BUILD_EXAMPLES=ON',
    '-DWHISPER_BUILD_SERVER=ON',
    '-DWHISPER_SDL2=OFF',
    '-DWHISPER_CURL=OFF',
    // whisper-server's HTTP library leaves Nagle on: it writes headers and body separately, and the
    // body then waits for the client's delayed ACK on a kept-alive connection (~20-40 ms a request).
    '-DCMAKE_CXX_FLAGS=-DCPPHTTPLIB_TCP_NODELAY=true',
    ...(cuda ? ['-DGGML_CUDA=1'] : []),
  ];
}

/** Paths of the binaries of one keyed build (they may not exist yet). */
export function whisperBinaryPaths(buildDir: string, cuda: boolean, key: string): WhisperBinaries {
  const bin = join(buildDir, `${cuda ? 'cuda' : 'cpu'}-${key}`, 'bin');
  return { server: join(bin, 'whisper-server'), cli: join(bin, 'whisper-cli') };
}

/** Builds (once) and returns the path of `whisper-server`. */
export async function ensureWhisperServer(options: WhisperBuildOptions): Promise<string> {
  return (await ensureWhisperBinaries(options)).server;
}

/** Builds (once) `whisper-server` and `whisper-cli` and returns their paths. */
export async function ensureWhisperBinaries(options: WhisperBuildOptions): Promise<WhisperBinaries> {
  const { buildDir, cuda, logger } = options;
  const source = await bundledWhisperSource();
  const cmakeArgs = cmakeArgsFor(cuda);
  const stamp: Stamp = { nodejsWhisper: source.nodejsWhisper, whisperCpp: source.whisperCpp, cmakeArgs, cpu: cpus()[0]?.model ?? 'unknown' };
  const key = buildKey(stamp);
  const name = `${cuda ? 'cuda' : 'cpu'}-${key}`;
  const installDir = join(buildDir, name);
  const binaries = whisperBinaryPaths(buildDir, cuda, key);
  const stampPath = join(installDir, 'whisperline-build.json');
  if (await isBuilt(binaries, stampPath, stamp)) return binaries;

  if (cuda && !nvccAvailable()) {
    throw new WhisperlineError('ASR_BUILD', 'asr.local.cuda is true but nvcc (the CUDA compiler) is not on PATH: install the CUDA toolkit or set asr.local.cuda to false');
  }
  if (!findOnPath('cmake')) {
    throw new WhisperlineError('ASR_BUILD', 'cmake is not on PATH: it is needed to build whisper-server');
  }

  await mkdir(buildDir, { recursive: true });
  const release = await acquireLock(join(buildDir, `${name}.lock`), logger);
  // A private tree per build: CMake ties a tree to its source directory (this checkout's).
  const tree = join(buildDir, 'tmp', `${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    // Another process may have finished the build while this one waited for the lock.
    if (await isBuilt(binaries, stampPath, stamp)) return binaries;
    const jobs = String(typeof availableParallelism === 'function' ? availableParallelism() : cpus().length);
    const started = Date.now();
    logger?.info({ source: source.dir, installDir, cuda, whisperCpp: source.whisperCpp }, 'building whisper-server');
    await runStep('cmake', ['-S', source.dir, '-B', tree, ...cmakeArgs], options).catch((err: unknown) => {
      if (!cuda || !(err instanceof WhisperlineError)) throw err;
      // The usual cause: nvcc present without the rest of the toolkit (cuBLAS) or without a GPU to target.
      throw new WhisperlineError('ASR_BUILD', `CUDA configuration of whisper.cpp failed (needs the full CUDA toolkit, cuBLAS included): ${err.message}`, { cause: err });
    });
    await runStep('cmake', ['--build', tree, '--config', 'Release', '-j', jobs, '--target', 'whisper-server', 'whisper-cli'], options);
    // Staged beside the install directory, then moved into place in one rename.
    const staging = join(buildDir, 'tmp', `${name}-staged-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(join(staging, 'bin'), { recursive: true });
    for (const binary of ['whisper-server', 'whisper-cli']) {
      const built = join(tree, 'bin', binary);
      if (!existsSync(built)) throw new WhisperlineError('ASR_BUILD', `whisper.cpp build finished but ${built} is missing`);
      await copyFile(built, join(staging, 'bin', binary));
    }
    await writeFile(join(staging, 'whisperline-build.json'), JSON.stringify({ ...stamp, builtFrom: source.dir, builtAt: new Date().toISOString() }, null, 2));
    // An install directory without a valid stamp is a leftover of an interrupted older layout: replaced.
    await rm(installDir, { recursive: true, force: true });
    await rename(staging, installDir);
    logger?.info({ seconds: Math.round((Date.now() - started) / 1000), binary: binaries.server }, 'whisper-server built');
    return binaries;
  } finally {
    await rm(tree, { recursive: true, force: true }).catch(() => undefined);
    await release();
  }
}

async function isBuilt(binaries: WhisperBinaries, stampPath: string, want: Stamp): Promise<boolean> {
  if (!existsSync(binaries.server) || !existsSync(binaries.cli)) return false;
  try {
    const have = JSON.parse(await readFile(stampPath, 'utf8')) as Stamp;
    return have.nodejsWhisper === want.nodejsWhisper && have.whisperCpp === want.whisperCpp && have.cpu === want.cpu && JSON.stringify(have.cmakeArgs) === JSON.stringify(want.cmakeArgs);
  } catch {
    return false;
  }
}

/** Runs one build step; a failure carries the tail of its output. */
function runStep(command: string, args: string[], options: WhisperBuildOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const onData = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        options.onOutput?.(line);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (cause) => reject(new WhisperlineError('ASR_BUILD', `cannot run ${command}`, { cause })));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else {
        reject(
          new WhisperlineError('ASR_BUILD', `${command} ${args.slice(0, 2).join(' ')} failed (${signal ?? `exit ${code}`}):\n${tail.join('\n')}`),
        );
      }
    });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A lock directory holding the owner's pid. A lock whose owner is gone is taken over. Waits up
 * to 30 minutes (a CUDA build is long).
 */
async function acquireLock(lockDir: string, logger?: Logger): Promise<() => Promise<void>> {
  const deadline = Date.now() + 30 * 60_000;
  let announced = false;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'pid'), String(process.pid));
      return () => rm(lockDir, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) {
      await rm(lockDir, { recursive: true, force: true });
      continue;
    }
    if (!Number.isInteger(owner)) {
      // The owner may be between mkdir and writing its pid; a lock that stays pid-less is stale.
      const age = Date.now() - (await stat(lockDir).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 10_000) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
    }
    if (!announced) {
      logger?.info({ lockDir, owner }, 'waiting for another whisper-server build');
      announced = true;
    }
    if (Date.now() > deadline) throw new WhisperlineError('ASR_BUILD', `timed out waiting for the build lock ${lockDir}`);
    await sleep(500);
  }
}

/** Whether the CUDA compiler is available (for callers that choose the variant). */
export function nvccAvailable(): boolean {
  const nvcc = findOnPath('nvcc');
  return nvcc !== undefined && spawnSync(nvcc, ['--version'], { stdio: 'ignore' }).status === 0;
}
