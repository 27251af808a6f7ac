/**
 * The load generator of the media benchmark, run in its own process so that it does not share the
 * receiver's core: N synthetic legs, each sending one 20 ms RTP packet every 20 ms to its port.
 * Legs are spread over the 20 ms tick (leg i sends at offset i mod 20 ms) as real calls are.
 */
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { buildRtp } from '../../src/media/rtp/packet.js';

export interface SenderJob {
  legs: { port: number; codec: 'PCMU' | 'opus' }[];
  /** Payloads per codec: one second of audio, looped. */
  payloads: { PCMU: string[]; opus: string[] };
  /** performance.timeOrigin-based epoch ms at which packet 0 of leg 0 is due. */
  startEpochMs: number;
  packetsPerLeg: number;
}

const SOCKETS = 16;

function run(job: SenderJob): Promise<{ sent: number; maxLateMs: number }> {
  const sockets: Socket[] = [];
  for (let i = 0; i < SOCKETS; i++) {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1');
    s.on('error', () => undefined);
    sockets.push(s);
  }
  const payloads = { PCMU: job.payloads.PCMU.map((p) => Buffer.from(p, 'base64')), opus: job.payloads.opus.map((p) => Buffer.from(p, 'base64')) };
  // Pre-sort the schedule: slot s (ms offset within the 20 ms tick) lists its legs.
  const slots: number[][] = Array.from({ length: 20 }, () => []);
  job.legs.forEach((_, i) => slots[i % 20]!.push(i));
  const startPerf = job.startEpochMs - performance.timeOrigin;
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
          const pkt = buildRtp({ payloadType: leg.codec === 'opus' ? 96 : 0, sequence: packet, timestamp: packet * ticks, ssrc: 0x10000 + i }, list[packet % list.length]!);
          sockets[i % SOCKETS]!.send(pkt, leg.port, '127.0.0.1');
          sent++;
        }
        if (++slot === 20) {
          slot = 0;
          packet++;
        }
      }
      if (packet >= job.packetsPerLeg) {
        setTimeout(() => {
          for (const s of sockets) s.close();
          resolve({ sent, maxLateMs });
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

process.on('message', (job: SenderJob) => {
  void run(job).then((result) => {
    process.send!(result, () => process.exit(0));
  });
});
