/**
 * The client side of `npm run bench -- feed`, run as its own process so that the gateway's feed
 * and its consumers do not share an event loop (or a core). Opens `--clients` supervisor
 * connections, records the delay of every delivery (publish time carried in the event's text vs.
 * arrival), and when the parent says `report` on stdin, prints one JSON line with the figures.
 */
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

const { values } = parseArgs({ options: { url: { type: 'string' }, clients: { type: 'string', default: '200' } } });
const url = values.url!;
const count = Number(values.clients);

/** Delivery delays in 0.1 ms bins up to 10 s: exact enough for p99 without keeping every sample. */
const BIN_MS = 0.1;
const bins = new Uint32Array(100_000);
let deliveries = 0;
let closedEarly = 0;
const received = new Uint32Array(count);
const sockets: WebSocket[] = [];
const now = (): number => performance.timeOrigin + performance.now();

await Promise.all(
  Array.from({ length: count }, (_, i) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    sockets.push(ws);
    ws.on('message', (data: Buffer) => {
      const s = data.toString();
      // The publish time travels as `"text":"t=<ms>"`; control messages have no text.
      const at = s.indexOf('"text":"t=');
      if (at < 0) return;
      const sentAt = Number.parseFloat(s.slice(at + 10, s.indexOf('"', at + 10)));
      const delay = now() - sentAt;
      bins[Math.min(bins.length - 1, Math.max(0, Math.floor(delay / BIN_MS)))]!++;
      deliveries++;
      received[i]!++;
    });
    ws.on('close', () => closedEarly++);
    return new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
  }),
);
process.stdout.write('ready\n');

function percentile(p: number): number {
  let target = Math.ceil(deliveries * p);
  for (let b = 0; b < bins.length; b++) {
    target -= bins[b]!;
    if (target <= 0) return (b + 1) * BIN_MS;
  }
  return Infinity;
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== 'report') continue;
  const cpu = process.cpuUsage();
  process.stdout.write(
    `${JSON.stringify({
      deliveries,
      perClientMin: Math.min(...received),
      perClientMax: Math.max(...received),
      closedEarly,
      p50Ms: percentile(0.5),
      p99Ms: percentile(0.99),
      maxMs: percentile(1),
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    })}\n`,
  );
  for (const ws of sockets) ws.terminate();
  break;
}
process.exit(0);
