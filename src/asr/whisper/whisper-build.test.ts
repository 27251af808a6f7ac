import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureTestWhisper } from '../../../test/support/whisper.js';
import {
  bundledWhisperSource,
  configuredSourceDir,
  ensureWhisperBinaries,
  ensureWhisperServer,
  resetForeignBuildTree,
  whisperBinaryPaths,
} from './whisper-build.js';

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
    const started = Date.now();
    const again = await ensureWhisperBinaries({ buildDir, cuda: false, onOutput: (l) => lines.push(l) });
    expect(again.server).toBe(binary);
    expect(again).toEqual(whisperBinaryPaths(buildDir, false));
    expect(lines).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5000);
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

  it('removes a build tree that CMake configured from another checkout, and keeps its own', async () => {
    const tree = join(scratch, 'cpu');
    mkdirSync(join(tree, 'bin'), { recursive: true });
    writeFileSync(join(tree, 'bin', 'whisper-server'), '');
    const cache = (home: string): string => `# This is the CMakeCache file.\nCMAKE_BUILD_TYPE:STRING=Release\nCMAKE_HOME_DIRECTORY:INTERNAL=${home}\n`;

    writeFileSync(join(tree, 'CMakeCache.txt'), cache('/a/checkout/node_modules/nodejs-whisper/cpp/whisper.cpp'));
    expect(await configuredSourceDir(tree)).toBe('/a/checkout/node_modules/nodejs-whisper/cpp/whisper.cpp');
    expect(await resetForeignBuildTree(tree, '/a/checkout/node_modules/nodejs-whisper/cpp/whisper.cpp')).toBe(false);
    expect(existsSync(join(tree, 'bin', 'whisper-server'))).toBe(true);

    expect(await resetForeignBuildTree(tree, '/another/checkout/node_modules/nodejs-whisper/cpp/whisper.cpp')).toBe(true);
    expect(existsSync(tree)).toBe(false);
    expect(await configuredSourceDir(tree)).toBeUndefined();
    expect(await resetForeignBuildTree(tree, '/anything')).toBe(false);
  });
});
