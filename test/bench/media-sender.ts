/**
 * The load generator of the media benchmark, run in its own process so that it does not share the
 * receiver's core: N synthetic legs, each sending one 20 ms RTP packet every 20 ms to its port.
 * Legs are spread over the 20 ms tick (leg i sends at offset i mod 20 ms) as real calls are.
 *
 * Each leg has its own connected socket, as each fork of rtpengine has its own source port. A
 * connected socket also spares every send the address lookup that an unconnected send makes, so
 * the sender is cheap enough per packet (about half of an unconnected send) to outrun the bare
 * receiver: the raw search then measures the receiver, not this process.
 *
 * Protocol with the benchmark: it sends the job; this process opens its sockets and answers
 * `{ ready: true }`; the benchmark then sends `{ startEpochMs }`, and this process answers with
 * what it sent once the last packet is out.
 */
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { buildRtp } from '../../src/media/rtp/packet.js';

export interface SenderJob {
  legs: { port: number; codec: 'PCMU' | 'opus' }[];
  /** Payloads per codec: one second of audio, looped. */
  payloads: { PCMU: string[]; opus: string[] };
  packetsPerLeg: number;
}

export interface SenderStart {
  /** performance.timeOrigin-based epoch ms at which packet 0 of leg 0 is due. */
  startEpochMs: number;
}

export interface SenderResult {
  sent: number;
  /** How late the sender was, at worst, against the schedule (ms). */
  maxLateMs: number;
  /** The sender's own CPU (user + system) over the load, as a percentage of one core. */
  cpuPct: number;
}

async function open(job: SenderJob): Promise<Socket[]> {
  return Promise.all(
    job.legs.map(
      (leg) =>
        new Promise<Socket>((resolve, reject) => {
          const s = createSocket('udp4');
          s.on('error', reject);
          s.bind(0, '127.0.0.1', () => {
            s.connect(leg.port, '127.0.0.1', () => {
              // A datagram the receiver's port refuses (closed early) must not end the sender.
              s.removeListener('error', reject);
              s.on('error', () => undefined);
              resolve(s);
            });
          });
        }),
    ),
  );
}

function run(job: SenderJob, sockets: Socket[], start: SenderStart): Promise<SenderResult> {
  const payloads = { PCMU: job.payloads.PCMU.map((p) => Buffer.from(p, 'base64')), opus: job.payloads.opus.map((p) => Buffer.from(p, 'base64')) };
  // Pre-sort the schedule: slot s (ms offset within the 20 ms tick) lists its legs.
  const slots: number[][] = Array.from({ length: 20 }, () => []);
  job.legs.forEach((_, i) => slots[i % 20]!.push(i));
  const startPerf = start.startEpochMs - performance.timeOrigin;
  const cpu0 = process.cpuUsage();
  let sent = 0;
  let maxLateMs = 0;
  let packet = 0;
  let slot = 0;
  return new Promise((resolve) => {
    const loop = (): void => {
      const now = performance.now();
      for (;;) {
        const due = startPerf + packet * 20 + slot;
        if (due > now || packet >= job.packetsPerLeg) break;
        maxLateMs = Math.max(maxLateMs, now - due);
        for (const i of slots[slot]!) {
          const leg = job.legs[i]!;
          const list = payloads[leg.codec];
          const ticks = leg.codec === 'opus' ? 960 : 160;
          sockets[i]!.send(buildRtp({ payloadType: leg.codec === 'opus' ? 96 : 0, sequence: packet, timestamp: packet * ticks, ssrc: 0x10000 + i }, list[packet % list.length]!));
          sent++;
        }
        if (++slot === 20) {
          slot = 0;
          packet++;
        }
      }
      if (packet >= job.packetsPerLeg) {
        const cpu = process.cpuUsage(cpu0);
        const wallMs = performance.now() - startPerf;
        setTimeout(() => {
          for (const s of sockets) s.close();
          resolve({ sent, maxLateMs, cpuPct: (100 * (cpu.user + cpu.system)) / 1000 / Math.max(1, wallMs) });
        }, 50);
        return;
      }
      // Sleep until the next slot is due rather than spin: the receiver needs the other core.
      const next = startPerf + packet * 20 + slot;
      setTimeout(loop, Math.max(0, next - performance.now() - 0.5));
    };
    loop();
  });
}

let job: SenderJob | undefined;
let sockets: Socket[] = [];
process.on('message', (m: SenderJob | SenderStart) => {
  if ('legs' in m) {
    job = m;
    void open(m).then(
      (s) => {
        sockets = s;
        process.send!({ ready: true });
      },
      (err: Error) => {
        console.error(`media sender: cannot open its sockets: ${err.message}`);
        process.exit(1);
      },
    );
    return;
  }
  void run(job!, sockets, m).then((result) => {
    process.send!(result, () => process.exit(0));
  });
});
