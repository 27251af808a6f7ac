import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** The executable `name` resolves to (a path, or a name looked up on PATH); undefined when none. */
export function findExecutable(name: string): string | undefined {
  const candidates = name.includes('/')
    ? [isAbsolute(name) ? name : join(process.cwd(), name)]
    : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/**
 * Spawns a helper daemon (rtpengine, whisper-server) that must never outlive the gateway: under
 * `setpriv --pdeathsig TERM` where setpriv exists, so it is told to stop even when the gateway
 * dies by SIGKILL or a signal that skips 'exit' handlers.
 */
export function spawnBoundToParent(binary: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const setpriv = findExecutable('setpriv');
  return setpriv ? spawn(setpriv, ['--pdeathsig', 'TERM', '--', binary, ...args], options) : spawn(binary, [...args], options);
}
