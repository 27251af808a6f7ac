/**
 * The drachtio-server binary for the SIP end-to-end suite and the calls benchmark (a test tool:
 * drachtio-server is not packaged in Debian or npm). Found in this order: DRACHTIO_BIN, the test
 * binary in ../shared/tools/drachtio/ beside the checkout (built from drachtio-server's public
 * source; `.ci/setup` installs the runtime libraries it needs), `drachtio` on PATH. One that is
 * there but does not start (missing libraries) is reported, not used.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export type DrachtioLookup = { readonly binary: string } | { readonly missing: string };

export function findDrachtio(): DrachtioLookup {
  const repo = join(import.meta.dirname, '..', '..');
  const onPath = spawnSync('sh', ['-c', 'command -v drachtio'], { encoding: 'utf8' });
  const candidates = [process.env.DRACHTIO_BIN, join(repo, '..', 'shared', 'tools', 'drachtio', 'drachtio'), onPath.status === 0 ? onPath.stdout.trim() : undefined];
  for (const binary of candidates) {
    if (!binary || !existsSync(binary)) continue;
    const probe = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    if (probe.status === 0) return { binary };
    return { missing: `${binary} does not run (${(probe.stderr || probe.error?.message || `exit ${probe.status}`).trim().split('\n')[0]}): install the runtime libraries its README lists (bash .ci/setup does)` };
  }
  return { missing: 'no drachtio binary in DRACHTIO_BIN, ../shared/tools/drachtio or on PATH (drachtio-server is not packaged; build it from its public source to run these)' };
}
