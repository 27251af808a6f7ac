/**
 * Builds `whisper-server` (and `whisper-cli`, which benchmarks compare against) once from the
 * whisper.cpp source that `nodejs-whisper` bundles. The build is cached: a stamp file beside the
 * binaries records the source version and the options, and a matching stamp means nothing to do.
 * A lock directory keeps concurrent callers (parallel test workers, two gateways) from building
 * into the same folder at once.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WhisperlineError } from '../../errors.js';
import type { Logger } from '../../log.js';

export const DEFAULT_BUILD_DIR = join(homedir(), '.cache', 'whisperline', 'whisper.cpp');

export interface WhisperBuildOptions {
  /** Root of the build cache; the variant is built in `<buildDir>/cpu` or `<buildDir>/cuda`. */
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

interface Stamp {
  readonly nodejsWhisper: string;
  readonly whisperCpp: string;
  readonly source: string;
  readonly cmakeArgs: readonly string[];
  /** GGML_NATIVE compiles for this CPU: a cache copied to another CPU model is rebuilt. */
  readonly cpu: string;
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

function cmakeArgsFor(cuda: boolean): string[] {
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

/** Paths of the binaries of one build variant (they may not exist yet). */
export function whisperBinaryPaths(buildDir: string, cuda: boolean): WhisperBinaries {
  const bin = join(buildDir, cuda ? 'cuda' : 'cpu', 'bin');
  return { server: join(bin, 'whisper-server'), cli: join(bin, 'whisper-cli') };
}

/** Builds (once) and returns the path of `whisper-server`. */
export async function ensureWhisperServer(options: WhisperBuildOptions): Promise<string> {
  return (await ensureWhisperBinaries(options)).server;
}

/** Builds (once) `whisper-server` and `whisper-cli` and returns their paths. */
export async function ensureWhisperBinaries(options: WhisperBuildOptions): Promise<WhisperBinaries> {
  const { buildDir, cuda, logger } = options;
  const variantDir = join(buildDir, cuda ? 'cuda' : 'cpu');
  const binaries = whisperBinaryPaths(buildDir, cuda);
  const source = await bundledWhisperSource();
  const cmakeArgs = cmakeArgsFor(cuda);
  const stamp: Stamp = {
    nodejsWhisper: source.nodejsWhisper,
    whisperCpp: source.whisperCpp,
    source: source.dir,
    cmakeArgs,
    cpu: cpus()[0]?.model ?? 'unknown',
  };
  const stampPath = join(variantDir, 'whisperline-build.json');
  if (await isBuilt(binaries, stampPath, stamp)) return binaries;

  if (cuda && !nvccAvailable()) {
    throw new WhisperlineError('ASR_BUILD', 'asr.local.cuda is true but nvcc (the CUDA compiler) is not on PATH: install the CUDA toolkit or set asr.local.cuda to false');
  }
  if (!findOnPath('cmake')) {
    throw new WhisperlineError('ASR_BUILD', 'cmake is not on PATH: it is needed to build whisper-server');
  }

  await mkdir(buildDir, { recursive: true });
  const release = await acquireLock(join(buildDir, `${cuda ? 'cuda' : 'cpu'}.lock`), logger);
  try {
    // Another process may have finished the build while this one waited for the lock.
    if (await isBuilt(binaries, stampPath, stamp)) return binaries;
    await rm(stampPath, { force: true });
    await resetForeignBuildTree(variantDir, source.dir, logger);
    const jobs = String(typeof availableParallelism === 'function' ? availableParallelism() : cpus().length);
    const started = Date.now();
    logger?.info({ source: source.dir, variantDir, cuda, whisperCpp: source.whisperCpp }, 'building whisper-server');
    await runStep('cmake', ['-S', source.dir, '-B', variantDir, ...cmakeArgs], options).catch((err: unknown) => {
      if (!cuda || !(err instanceof WhisperlineError)) throw err;
      // The usual cause: nvcc present without the rest of the toolkit (cuBLAS) or without a GPU to target.
      throw new WhisperlineError('ASR_BUILD', `CUDA configuration of whisper.cpp failed (needs the full CUDA toolkit, cuBLAS included): ${err.message}`, { cause: err });
    });
    await runStep('cmake', ['--build', variantDir, '--config', 'Release', '-j', jobs, '--target', 'whisper-server', 'whisper-cli'], options);
    for (const path of [binaries.server, binaries.cli]) {
      if (!existsSync(path)) throw new WhisperlineError('ASR_BUILD', `whisper.cpp build finished but ${path} is missing`);
    }
    await writeFile(stampPath, JSON.stringify(stamp, null, 2));
    logger?.info({ seconds: Math.round((Date.now() - started) / 1000), binary: binaries.server }, 'whisper-server built');
    return binaries;
  } finally {
    await release();
  }
}

/**
 * The source directory a CMake build tree was configured from, read from its CMakeCache.txt, or
 * undefined when the tree has not been configured.
 */
export async function configuredSourceDir(variantDir: string): Promise<string | undefined> {
  const cache = await readFile(join(variantDir, 'CMakeCache.txt'), 'utf8').catch(() => undefined);
  return cache === undefined ? undefined : /^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$/m.exec(cache)?.[1]?.trim();
}

/**
 * CMake refuses to configure a build tree from a source directory other than the one that made
 * it. The cache is per user, not per checkout, so a second checkout of whisperline (a CI clone
 * beside a working copy) finds a tree made from the other checkout's node_modules. Its objects
 * belong to that source, so the whole tree is removed, not only the cache file.
 */
export async function resetForeignBuildTree(variantDir: string, sourceDir: string, logger?: Logger): Promise<boolean> {
  const configured = await configuredSourceDir(variantDir);
  if (configured === undefined || configured === sourceDir) return false;
  logger?.info({ variantDir, configured, sourceDir }, 'whisper.cpp build tree was configured from another source: starting afresh');
  await rm(variantDir, { recursive: true, force: true });
  return true;
}

async function isBuilt(binaries: WhisperBinaries, stampPath: string, want: Stamp): Promise<boolean> {
  if (!existsSync(binaries.server) || !existsSync(binaries.cli)) return false;
  try {
    const have = JSON.parse(await readFile(stampPath, 'utf8')) as Stamp;
    return JSON.stringify(have) === JSON.stringify(want);
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
