import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureTestWhisper } from '../../../test/support/whisper.js';
import { buildKey, bundledWhisperSource, cmakeArgsFor, ensureWhisperBinaries, ensureWhisperServer, whisperBinaryPaths } from './whisper-build.js';

const scratch = mkdtempSync(join(tmpdir(), 'whisperline-build-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('whisper-server build', () => {
  it('finds the whisper.cpp source bundled in nodejs-whisper', async () => {
    const source = await bundledWhisperSource();
    expect(existsSync(join(source.dir, 'examples', 'server', 'server.cpp'))).toBe(true);
    expect(source.whisperCpp).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('does nothing when the stamp matches (the cached build the tests use)', async () => {
    const { binary } = await ensureTestWhisper();
    const buildDir = dirname(dirname(dirname(binary)));
    const lines: string[] = [];
    const again = await ensureWhisperBinaries({ buildDir, cuda: false, onOutput: (l) => lines.push(l) });
    expect(again.server).toBe(binary);
    expect(again.server).toMatch(/\/cpu-[0-9a-f]{16}\/bin\/whisper-server$/);
    expect(lines).toEqual([]);
    const stamp = JSON.parse(readFileSync(join(dirname(dirname(binary)), 'whisperline-build.json'), 'utf8')) as { cmakeArgs: string[] };
    expect(stamp.cmakeArgs).toContain('-DCMAKE_BUILD_TYPE=Release');
    expect(stamp.cmakeArgs).not.toContain('-DGGML_CUDA=1');
  });

  it('refuses a CUDA build without nvcc, with ASR_BUILD', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(ensureWhisperServer({ buildDir: scratch, cuda: true })).rejects.toMatchObject({ code: 'ASR_BUILD', message: expect.stringMatching(/nvcc/) as string });
    } finally {
      process.env.PATH = path;
    }
  });

  /** A finished build of the current source and options, as another checkout would have left it. */
  async function fakeInstall(buildDir: string, builtFrom: string): Promise<{ server: string; cli: string }> {
    const source = await bundledWhisperSource();
    const stamp = { nodejsWhisper: source.nodejsWhisper, whisperCpp: source.whisperCpp, cmakeArgs: cmakeArgsFor(false), cpu: cpus()[0]?.model ?? 'unknown' };
    const paths = whisperBinaryPaths(buildDir, false, buildKey(stamp));
    mkdirSync(dirname(paths.server), { recursive: true });
    writeFileSync(paths.server, '#!/bin/sh\n');
    writeFileSync(paths.cli, '#!/bin/sh\n');
    writeFileSync(join(dirname(dirname(paths.server)), 'whisperline-build.json'), JSON.stringify({ ...stamp, builtFrom }));
    return paths;
  }

  it("uses a build another checkout made of the same source and options: the key is what it is built from, not the checkout's path", async () => {
    const buildDir = join(scratch, 'shared');
    const installed = await fakeInstall(buildDir, '/another/checkout/node_modules/nodejs-whisper/cpp/whisper.cpp');
    const lines: string[] = [];
    expect(await ensureWhisperBinaries({ buildDir, cuda: false, onOutput: (l) => lines.push(l) })).toEqual(installed);
    expect(lines).toEqual([]);
    // The other checkout's build is still there, untouched.
    expect(readFileSync(installed.server, 'utf8')).toBe('#!/bin/sh\n');
  });

  it('waits for a build another process is making under the lock, then uses it instead of building again', async () => {
    const buildDir = join(scratch, 'locked');
    mkdirSync(buildDir, { recursive: true });
    const source = await bundledWhisperSource();
    const key = buildKey({ nodejsWhisper: source.nodejsWhisper, whisperCpp: source.whisperCpp, cmakeArgs: cmakeArgsFor(false), cpu: cpus()[0]?.model ?? 'unknown' });
    // Another builder: a live process holds the lock of this key.
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    const lock = join(buildDir, `cpu-${key}.lock`);
    mkdirSync(lock);
    writeFileSync(join(lock, 'pid'), String(other.pid));
    const lines: string[] = [];
    let done = false;
    const waiting = ensureWhisperBinaries({ buildDir, cuda: false, onOutput: (l) => lines.push(l) }).finally(() => (done = true));
    await new Promise((r) => setTimeout(r, 800));
    expect(done).toBe(false);
    // It finishes: its build appears, the lock goes.
    const installed = await fakeInstall(buildDir, '/the/other/checkout');
    rmSync(lock, { recursive: true, force: true });
    other.kill();
    expect(await waiting).toEqual(installed);
    expect(lines).toEqual([]);
  });
});
