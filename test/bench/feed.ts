/**
 * `npm run bench -- feed [--clients 200] [--rate 250] [--seconds 20] [--calls 25]`: supervisor
 * feed fan-out. The gateway side (this process) runs the real feed: a TranscriptStore file, the
 * event hub (every non-partial event written to SQLite before it is published) and the
 * SupervisorFeed on a loopback HTTP server. A second process opens `--clients` WebSocket
 * connections with an all-calls token (test/bench/feed-clients.ts).
 *
 * Load: `--calls` concurrent calls publishing `--rate` events per second in all, in 20 ms ticks:
 * half partials, 45 % finals, 5 % dtmf, each carrying its publish time (ms, high resolution) as
 * its text. Delivery delay = arrival in the client process - publish time (same machine clock).
 *
 *   eventsPerSec  = events published / wall seconds
 *   deliveryP99Ms = 99th percentile delay over every delivery to every client
 *   dropped       = clients x events published - deliveries (partials skipped for slow clients,
 *                   clients cut off), so 0 means every client got every event
 *
 * Target on the 2-core build machine: 200 clients at 250 events/s (50,000 deliveries/s) with
 * deliveryP99Ms < 50 and dropped 0.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { CallEvent } from '../../src/transcripts/events.js';
import { loadConfig } from '../../src/config/load.js';
import { TokenAuth } from '../../src/http/auth.js';
import { CallEventHub } from '../../src/transcripts/event-hub.js';
import { GatewayHttpServer } from '../../src/http/server.js';
import { SupervisorFeed } from '../../src/feeds/supervisor.js';
import { TranscriptStore } from '../../src/transcripts/store.js';

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      clients: { type: 'string', default: '200' },
      rate: { type: 'string', default: '250' },
      seconds: { type: 'string', default: '20' },
      calls: { type: 'string', default: '25' },
    },
  });
  const clients = Number(values.clients);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const calls = Number(values.calls);
  const log = pino({ level: 'silent' });
  const dir = mkdtempSync(join(tmpdir(), 'whisperline-feed-bench-'));
  const store = TranscriptStore.open(join(dir, 'transcripts.db'));
  const hub = new CallEventHub({ store, logger: log });
  const { auth, token } = TokenAuth.generated();
  const config = loadConfig({ env: {} }).supervisor;
  const feed = new SupervisorFeed({ hub, store, auth, config, logger: log });
  const http = await GatewayHttpServer.start({ host: '127.0.0.1', port: 0, health: () => ({ status: 'ok' }), logger: log, upgrades: { '/v1/supervisor': feed.handleUpgrade } });

  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'feed-clients.ts'), '--url', `ws://127.0.0.1:${http.port}/v1/supervisor?token=${token}`, '--clients', String(clients)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const nextLine = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done) throw new Error('the client process exited early');
    return value as string;
  };
  try {
    if ((await nextLine()) !== 'ready') throw new Error('the client process did not connect');
    console.error(`feed bench: ${clients} clients connected; publishing ${rate} events/s over ${calls} calls for ${seconds} s`);

    const seq = new Map<string, number>();
    const next = (callId: string): number => {
      const n = (seq.get(callId) ?? 0) + 1;
      seq.set(callId, n);
      return n;
    };
    const callIds = Array.from({ length: calls }, (_, i) => `bench-call-${i}`);
    for (const callId of callIds) hub.publish({ kind: 'call.started', callId, seq: next(callId), rule: 'bench', labels: [], parties: [{ name: 'caller' }] });
    await sleep(500);

    let published = 0;
    const stamp = (): string => `t=${(performance.timeOrigin + performance.now()).toFixed(3)}`;
    const event = (i: number): CallEvent => {
      const callId = callIds[i % calls]!;
      const r = i % 20;
      const base = { callId, seq: next(callId), party: 'caller', startMs: i * 10, endMs: i * 10 + 900, language: 'en', confidence: 0.9 };
      if (r < 10) return { ...base, kind: 'partial', text: stamp() };
      if (r < 19) return { ...base, kind: 'final', text: stamp() };
      return { kind: 'dtmf', callId, seq: base.seq, party: 'caller', digit: '5', durationMs: 100, endLost: false, text: stamp() } as CallEvent;
    };
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const total = Math.round(rate * seconds);
    // 20 ms ticks, catching up on the schedule so the rate holds even when a tick runs late.
    while (published < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      while (published < due) hub.publish(event(published++));
      await sleep(20);
    }
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await sleep(1000); // the last deliveries
    child.stdin!.write('report\n');
    const report = JSON.parse(await nextLine()) as { deliveries: number; p50Ms: number; p99Ms: number; maxMs: number; closedEarly: number; cpuSeconds: number; perClientMin: number };
    const stats = feed.stats();
    const result = {
      clients,
      eventsPerSec: Math.round(published / wall),
      deliveriesPerSec: Math.round(report.deliveries / wall),
      deliveryP50Ms: Number(report.p50Ms.toFixed(1)),
      deliveryP99Ms: Number(report.p99Ms.toFixed(1)),
      deliveryMaxMs: Number(report.maxMs.toFixed(1)),
      dropped: clients * published - report.deliveries,
      partialsDropped: stats.partialsDropped,
      slowDisconnects: stats.slowDisconnects,
      gatewayCpuPct: Math.round((100 * (cpu.user + cpu.system)) / 1e6 / wall),
      clientsCpuSeconds: Number(report.cpuSeconds.toFixed(1)),
    };
    console.error(`feed bench: ${result.deliveriesPerSec} deliveries/s, p99 ${result.deliveryP99Ms} ms, dropped ${result.dropped}`);
    console.log(JSON.stringify(result));
  } finally {
    child.kill();
    await feed.close();
    await http.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
