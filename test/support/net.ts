import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** Loopback ports for test servers and sipp, found by binding port 0 (then released). */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function freeTcpPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** An even UDP port with port + 2 free too (sipp binds the audio and video media sockets). */
export async function freeMediaPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = await freeUdpPort();
    if (p % 2 !== 0 || p > 65000) continue;
    const probe = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.bind(p + 2, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((r) => probe.close(() => r()));
    if (ok) return p;
  }
  throw new Error('no free media port pair for sipp');
}

/** Polls `check` every 50 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
