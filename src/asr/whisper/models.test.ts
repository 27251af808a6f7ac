import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadModel, listModels, progressLine, resolveModel, type DownloadProgress } from './models.js';

/** A model mirror on loopback; the real catalogue host is never contacted in tests. */
const body = Buffer.alloc(256 * 1024, 7);
const sha1 = createHash('sha1').update(body).digest('hex');
let server: Server;
let baseUrl: string;
const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'wl-models-'));
  dirs.push(d);
  return d;
};

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/ggml-base.bin') {
      res.writeHead(200, { 'content-length': body.length });
      // In pieces, so progress is reported more than once.
      res.write(body.subarray(0, 100_000));
      setTimeout(() => res.end(body.subarray(100_000)), 20);
    } else if (req.url === '/stall/ggml-base.bin') {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 1000)); // then nothing, ever
    } else if (req.url === '/short/ggml-base.bin') {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body.subarray(0, 1000));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('model management', () => {
  it('downloads with progress, verifies the checksum and installs the file', async () => {
    const modelDir = tempDir();
    const progress: DownloadProgress[] = [];
    const path = await downloadModel('base', { modelDir, baseUrl, sha1, onProgress: (p) => progress.push(p) });
    expect(path).toBe(join(modelDir, 'ggml-base.bin'));
    expect(progress.length).toBeGreaterThan(1);
    expect(progress[progress.length - 1]).toEqual({ receivedBytes: body.length, totalBytes: body.length });
    expect(resolveModel('base', modelDir)).toBe(path);
    expect(listModels(modelDir).find((m) => m.name === 'base')).toMatchObject({ installed: true });
  });

  it('rejects a checksum mismatch and leaves no file behind', async () => {
    const modelDir = tempDir();
    await expect(downloadModel('base', { modelDir, baseUrl, sha1: '0'.repeat(40) })).rejects.toMatchObject({
      code: 'MODEL_DOWNLOAD',
      message: expect.stringContaining('checksum mismatch'),
    });
    expect(readdirSync(modelDir)).toEqual([]);
  });

  it('fails clearly on HTTP errors, truncated bodies, stalls and unreachable hosts', async () => {
    const modelDir = tempDir();
    await expect(downloadModel('base', { modelDir, baseUrl: `${baseUrl}/missing`, sha1 })).rejects.toThrow(/HTTP 404/);
    await expect(downloadModel('base', { modelDir, baseUrl: `${baseUrl}/short`, sha1 })).rejects.toThrow(/ended early|interrupted after/);
    await expect(downloadModel('base', { modelDir, baseUrl: `${baseUrl}/stall`, sha1, stallTimeoutMs: 200 })).rejects.toThrow(/stalled: no data for 200 ms/);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(downloadModel('base', { modelDir, baseUrl: `http://127.0.0.1:${deadPort}`, sha1 })).rejects.toThrow(/cannot be reached: .*ECONNREFUSED/);
    expect(readdirSync(modelDir)).toEqual([]);
  });

  it('says what to do when a model is missing, unknown or a bad path', () => {
    const modelDir = tempDir();
    expect(() => resolveModel('small.en', modelDir)).toThrow(/run `whisperline models download small.en`/);
    expect(() => resolveModel('huge', modelDir)).toThrow(/unknown model "huge"/);
    expect(() => resolveModel('/nope/model.bin', modelDir)).toThrow(/does not exist/);
    const file = join(modelDir, 'custom.bin');
    writeFileSync(file, 'x');
    expect(resolveModel(file, modelDir)).toBe(file);
    expect(existsSync(file)).toBe(true);
  });

  it('draws a progress bar', () => {
    expect(progressLine({ receivedBytes: 52428800, totalBytes: 104857600 }, 1000, 10)).toBe('[#####.....]  50%  50.0/100.0 MiB  50.0 MiB/s');
  });
});
