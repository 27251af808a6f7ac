import { execFileSync, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadModel, listModels, progressLine, resolveModel, type DownloadProgress } from './models.js';

/** A model mirror on loopback; the real catalogue host is never contacted in tests. */
const body = Buffer.alloc(256 * 1024, 7);
const sha1 = createHash('sha1').update(body).digest('hex');
/** No proxy, whatever the machine running the tests has set: loopback must not be rerouted. */
const direct = {};
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

const hasOpenssl = ((): boolean => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** A loopback port nothing listens on. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

interface TestProxy {
  readonly url: string;
  /** CONNECT targets (host:port), one per tunnel opened. */
  readonly tunnels: string[];
  /** Absolute URLs of the plain-HTTP requests forwarded. */
  readonly forwarded: string[];
  close(): Promise<void>;
}

/** A real forward proxy on loopback: CONNECT tunnels and absolute-URL requests, each one recorded. */
async function startProxy(): Promise<TestProxy> {
  const tunnels: string[] = [];
  const forwarded: string[] = [];
  const proxy = createServer((req, res) => {
    forwarded.push(req.url ?? '');
    const upstream = request(req.url ?? '', { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  proxy.on('connect', (req, client, head) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    tunnels,
    forwarded,
    close: async () => {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    },
  };
}

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('model management', () => {
  it('downloads with progress, verifies the checksum and installs the file', async () => {
    const modelDir = tempDir();
    const progress: DownloadProgress[] = [];
    const path = await downloadModel('base', { modelDir, baseUrl, sha1, env: direct, onProgress: (p) => progress.push(p) });
    expect(path).toBe(join(modelDir, 'ggml-base.bin'));
    expect(progress.length).toBeGreaterThan(1);
    expect(progress[progress.length - 1]).toEqual({ receivedBytes: body.length, totalBytes: body.length });
    expect(resolveModel('base', modelDir)).toBe(path);
    expect(listModels(modelDir).find((m) => m.name === 'base')).toMatchObject({ installed: true });
  });

  it('rejects a checksum mismatch and leaves no file behind', async () => {
    const modelDir = tempDir();
    await expect(downloadModel('base', { modelDir, baseUrl, sha1: '0'.repeat(40), env: direct })).rejects.toMatchObject({
      code: 'MODEL_DOWNLOAD',
      message: expect.stringContaining('checksum mismatch'),
    });
    expect(readdirSync(modelDir)).toEqual([]);
  });

  it('fails clearly on HTTP errors, truncated bodies, stalls and unreachable hosts', async () => {
    const modelDir = tempDir();
    await expect(downloadModel('base', { modelDir, baseUrl: `${baseUrl}/missing`, sha1, env: direct })).rejects.toThrow(/HTTP 404/);
    await expect(downloadModel('base', { modelDir, baseUrl: `${baseUrl}/short`, sha1, env: direct })).rejects.toThrow(/ended early|interrupted after/);
    await expect(downloadModel('base', { modelDir, baseUrl: `${baseUrl}/stall`, sha1, stallTimeoutMs: 200, env: direct })).rejects.toThrow(/stalled: no data for 200 ms/);
    const deadPort = await freePort();
    await expect(downloadModel('base', { modelDir, baseUrl: `http://127.0.0.1:${deadPort}`, sha1, env: direct })).rejects.toThrow(/cannot be reached: .*ECONNREFUSED/);
    expect(readdirSync(modelDir)).toEqual([]);
  });

  it('names the ways to a model without this download when it fails', async () => {
    const modelDir = tempDir();
    const what = (url: string): string => `download of ggml-base.bin from ${url}/ggml-base.bin failed (`;
    const fallbacks =
      '): set asr.model to the path of a model file you have, or run `whisperline models download base` ' +
      `on a machine with internet access and copy ggml-base.bin to ${modelDir}`;
    const proxyHint = '; if this machine reaches the internet only through a proxy, set HTTPS_PROXY (and NO_PROXY for hosts to reach directly)';
    const failure = (baseUrl: string, env: NodeJS.ProcessEnv): Promise<Error> =>
      downloadModel('base', { modelDir, baseUrl, sha1, env }).then(
        () => new Error('downloaded'),
        (e: Error) => e,
      );

    // Host not reached and no proxy set: the proxy variables are named too.
    const deadUrl = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await failure(deadUrl, direct);
    expect(unreachable).toMatchObject({ code: 'MODEL_DOWNLOAD', retryable: true });
    expect(unreachable.message.startsWith(what(deadUrl))).toBe(true);
    expect(unreachable.message).toMatch(/\(cannot be reached: ECONNREFUSED [^)]*\)/);
    expect(unreachable.message.endsWith(fallbacks + proxyHint)).toBe(true);

    // The server answered: a proxy is not what is missing.
    const missing = await failure(`${baseUrl}/missing`, direct);
    expect(missing.message).toBe(`${what(`${baseUrl}/missing`)}HTTP 404 Not Found${fallbacks}`);

    // A proxy is set but cannot be reached: the fallbacks, and no advice to set what is set.
    const viaDeadProxy = await failure(baseUrl, { HTTP_PROXY: `http://127.0.0.1:${await freePort()}` });
    expect(viaDeadProxy.message.startsWith(what(baseUrl))).toBe(true);
    expect(viaDeadProxy.message).toMatch(/\(cannot be reached: ECONNREFUSED [^)]*\)/);
    expect(viaDeadProxy.message.endsWith(fallbacks)).toBe(true);
    expect(readdirSync(modelDir)).toEqual([]);
  });

  it('goes through the proxy HTTP_PROXY names, as an absolute-URL request, unless NO_PROXY lists the host', async () => {
    const proxy = await startProxy();
    try {
      const modelDir = tempDir();
      await downloadModel('base', { modelDir, baseUrl, sha1, env: { HTTP_PROXY: proxy.url } });
      expect(proxy.forwarded).toEqual([`${baseUrl}/ggml-base.bin`]);
      expect(proxy.tunnels).toEqual([]);
      expect(readFileSync(join(modelDir, 'ggml-base.bin')).equals(body)).toBe(true);

      // The lower-case names win over the upper-case ones (curl's order): a dead HTTP_PROXY is not used.
      const lower = tempDir();
      await downloadModel('base', { modelDir: lower, baseUrl, sha1, env: { http_proxy: proxy.url, HTTP_PROXY: `http://127.0.0.1:${await freePort()}` } });
      expect(proxy.forwarded).toHaveLength(2);

      // NO_PROXY, with a port or without, and no_proxy: straight to the server, the proxy sees nothing.
      const port = new URL(baseUrl).port;
      for (const env of [{ HTTP_PROXY: proxy.url, NO_PROXY: 'example.org, 127.0.0.1' }, { HTTP_PROXY: proxy.url, no_proxy: `127.0.0.1:${port}` }]) {
        const bypassed = tempDir();
        await downloadModel('base', { modelDir: bypassed, baseUrl, sha1, env });
        expect(existsSync(join(bypassed, 'ggml-base.bin'))).toBe(true);
      }
      expect(proxy.forwarded).toHaveLength(2);
      // NO_PROXY for another port of the host does not bypass.
      await downloadModel('base', { modelDir: tempDir(), baseUrl, sha1, env: { HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1:1' } });
      expect(proxy.forwarded).toHaveLength(3);
    } finally {
      await proxy.close();
    }
  });

  it.skipIf(!hasOpenssl)('tunnels an https download through the proxy HTTPS_PROXY names (CONNECT), in a process that has only its environment', async () => {
    // A self-signed certificate for 127.0.0.1, trusted in the child through NODE_EXTRA_CA_CERTS as a
    // corporate CA would be; the child reads HTTPS_PROXY from its environment, as the CLI does.
    const dir = tempDir();
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const https = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      if (req.url === '/ggml-base.bin') res.writeHead(200, { 'content-length': body.length }).end(body);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    const httpsPort = (https.address() as AddressInfo).port;
    const proxy = await startProxy();
    const modelDir = join(dir, 'models');
    const script = join(dir, 'download.mts');
    writeFileSync(script, [
      `import { downloadModel } from ${JSON.stringify(fileURLToPath(new URL('./models.ts', import.meta.url)))};`,
      `const [baseUrl, modelDir, sha1] = process.argv.slice(2);`,
      `downloadModel('base', { modelDir, baseUrl, sha1 }).then((path) => console.log(path), (err) => { console.log(err.message); process.exitCode = 1; });`,
    ].join('\n'));
    const childEnv: NodeJS.ProcessEnv = { ...process.env, HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: cert };
    for (const name of ['https_proxy', 'http_proxy', 'HTTP_PROXY', 'no_proxy', 'NO_PROXY']) delete childEnv[name];
    try {
      const run = (extra: NodeJS.ProcessEnv = {}): Promise<string> =>
        promisify(execFile)(process.execPath, ['--import', 'tsx', script, `https://127.0.0.1:${httpsPort}`, modelDir, sha1], { env: { ...childEnv, ...extra } }).then((r) => r.stdout.trim());
      expect(await run()).toBe(join(modelDir, 'ggml-base.bin'));
      expect(proxy.tunnels).toEqual([`127.0.0.1:${httpsPort}`]);
      expect(proxy.forwarded).toEqual([]);
      expect(readFileSync(join(modelDir, 'ggml-base.bin')).equals(body)).toBe(true);
      // NO_PROXY in the environment: no second tunnel.
      rmSync(modelDir, { recursive: true });
      expect(await run({ NO_PROXY: '127.0.0.1' })).toBe(join(modelDir, 'ggml-base.bin'));
      expect(proxy.tunnels).toHaveLength(1);
    } finally {
      await proxy.close();
      https.closeAllConnections();
      await new Promise((r) => https.close(r));
    }
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
