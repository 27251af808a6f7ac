/**
 * `npm run bench -- media`: how many concurrent forked legs one core takes through
 * receiver → latch/probation → reorder → decode → resample → playout clock → 20 ms frames in
 * real time.
 *
 * The receiver runs on this process's single event loop (one core); a child process generates
 * the load over real UDP on loopback. Trials grow N until loss reaches 0.1 % or frames fall
 * behind real time; `legsPerCore` is the largest N that held.
 *
 * Absolute figures differ by 2× between machines of one kind, so the same run also measures the
 * limit of the machine: a bare receiver (the same sender, the same number of sockets, each only
 * counting its datagrams) gives `rawLegsPerCore`, and `ratioToRaw` = legsPerCore / rawLegsPerCore
 * says what the gateway's path costs on top of the kernel-to-JS receive itself. The playout
 * clock's cost is measured inside the receiver (`clockUsPerPartyTick`: µs per party per 20 ms tick).
 */
import { fork } from 'node:child_process';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PartyAudio } from '../../src/audio/party-audio.js';
import { encodeUlawBuffer } from '../../src/audio/g711.js';
import { RtpPortPool } from '../../src/media/rtp/port-pool.js';
import { RtpReceiver, type RtpPartyPort } from '../../src/media/rtp/receiver.js';
import { payloadMapFromSdp } from '../../src/media/rtp/payload-map.js';
import { sine } from '../support/signal.js';
import { OpusPacketEncoder } from '../support/opus-encoder.js';
import type { SenderJob } from './media-sender.js';

const MAP = payloadMapFromSdp(
  ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 9 RTP/AVP 0 96', 'a=rtpmap:96 opus/48000/2', ''].join('\r\n'),
);
/**
 * Keeping up in real time: the median frame leaves within one packet time of its packet's send
 * time (no standing backlog), and the slowest 1 % within 100 ms.
 */
const MAX_P50_MS = 20;
const MAX_P99_MS = 100;
/**
 * One core: the receiver process's CPU time (every thread: GC helpers and kernel time included)
 * stays within one core-second per second, and its event loop is not saturated.
 */
const MAX_CPU_PCT = 100;
const MAX_ELU = 0.9;
/**
 * The load was offered in real time: the sender (one process on the other core) sent every packet
 * within three packet times of when it was due. Past that it is the sender's limit that is
 * measured, not the receiver's.
 */
const MAX_SENDER_LATE_MS = 60;

interface Trial {
  legs: number;
  sent: number;
  received: number;
  lossPct: number;
  frames: number;
  p50FrameLatencyMs: number;
  p99FrameLatencyMs: number;
  cpuPct: number;
  /** Share of wall time the receiver's event loop was busy (0-1). */
  eventLoopUtilization: number;
  senderMaxLateMs: number;
  /** The playout clock's time per party per tick (µs), as the receiver accounts it. */
  clockUsPerPartyTick: number;
  /** Receiver CPU (user + system) per datagram, µs. */
  usPerPacket: number;
  sustained: boolean;
}

/** A bare receiver's trial: the same sockets and sender, each socket only counting its datagrams. */
interface RawTrial {
  legs: number;
  sent: number;
  received: number;
  lossPct: number;
  cpuPct: number;
  eventLoopUtilization: number;
  senderMaxLateMs: number;
  sustained: boolean;
  /** Receiver CPU (user + system) per datagram, µs. */
  usPerPacket: number;
}

function payloads(): SenderJob['payloads'] {
  const pcm8k = sine(440, 8000, 1000, 0.3);
  const PCMU: string[] = [];
  for (let i = 0; i < 50; i++) PCMU.push(Buffer.from(encodeUlawBuffer(pcm8k.subarray(i * 160, (i + 1) * 160))).toString('base64'));
  const enc = new OpusPacketEncoder(48000);
  const pcm48k = sine(440, 48000, 1000, 0.3);
  const opus: string[] = [];
  for (let i = 0; i < 50; i++) opus.push(Buffer.from(enc.encode(pcm48k.subarray(i * 960, (i + 1) * 960))).toString('base64'));
  return { PCMU, opus };
}

const pct = (sorted: Float64Array, p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : NaN);

async function trial(legs: number, seconds: number, opusShare: number, load: SenderJob['payloads'], basePort: number): Promise<Trial> {
  const receiver = new RtpReceiver({ bindAddress: '127.0.0.1', portMin: basePort, portMax: basePort + 2 * legs + 200, reorderWindowMs: 60 });
  const packetsPerLeg = Math.round(seconds * 50);
  const latencies = new Float64Array(legs * packetsPerLeg);
  let frames = 0;
  const t0 = performance.now();
  const startPerf = t0 + 500;
  const ports: RtpPartyPort[] = [];
  const job: SenderJob = { legs: [], payloads: load, startEpochMs: performance.timeOrigin + startPerf, packetsPerLeg };
  const opusEvery = opusShare > 0 ? Math.round(1 / opusShare) : Infinity;
  for (let i = 0; i < legs; i++) {
    const offset = i % 20;
    const audio = new PartyAudio(
      `leg${i}`,
      () => {
        const due = startPerf + audio.framesOut * 20 + offset - 20;
        if (frames < latencies.length) latencies[frames] = performance.now() - due;
        frames++;
      },
      { callClock: (arrival) => arrival - t0 },
    );
    const port = await receiver.openParty(MAP, {
      audio: (f, ts, payload, lost, arrival) => audio.audio(f, ts, payload, lost, arrival),
      advance: (due) => audio.advance(due),
      comfortNoise: (l) => audio.comfortNoise(l),
      streamChange: (ssrc, arrival) => audio.streamChange(ssrc, arrival),
      dtmf: () => undefined,
      end: () => audio.end(),
    });
    ports.push(port);
    job.legs.push({ port: port.port, codec: i % opusEvery === opusEvery - 1 ? 'opus' : 'PCMU' });
  }
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  const { result, cpu, elu, wallMs } = await offerLoad(job);
  loopDelay.disable();
  if (process.env.BENCH_DEBUG) console.log(`cpu user ${(cpu.user / 1000).toFixed(0)} ms system ${(cpu.system / 1000).toFixed(0)} ms`);
  if (process.env.BENCH_DEBUG) console.log(`loop delay p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} ms max ${(loopDelay.max / 1e6).toFixed(1)} ms`);
  const received = ports.reduce((sum, p) => sum + p.stats().packets, 0);
  const clock = receiver.clockStats;
  receiver.close();
  const measured = latencies.subarray(0, Math.min(frames, latencies.length)).sort();
  const lossPct = result.sent === 0 ? 100 : (100 * (result.sent - received)) / result.sent;
  const p99 = pct(measured, 0.99);
  const cpuPct = (100 * (cpu.user + cpu.system)) / 1000 / wallMs;
  return {
    legs,
    sent: result.sent,
    received,
    lossPct: Number(lossPct.toFixed(4)),
    frames,
    p50FrameLatencyMs: Number(pct(measured, 0.5).toFixed(2)),
    p99FrameLatencyMs: Number(p99.toFixed(2)),
    cpuPct: Number(cpuPct.toFixed(1)),
    eventLoopUtilization: Number(elu.toFixed(3)),
    senderMaxLateMs: Number(result.maxLateMs.toFixed(1)),
    clockUsPerPartyTick: clock.partyTicks === 0 ? 0 : Number(((clock.busyMs * 1000) / clock.partyTicks).toFixed(3)),
    usPerPacket: received === 0 ? 0 : Number(((cpu.user + cpu.system) / received).toFixed(2)),
    sustained: lossPct < 0.1 && pct(measured, 0.5) < MAX_P50_MS && p99 < MAX_P99_MS && cpuPct <= MAX_CPU_PCT && elu < MAX_ELU && result.maxLateMs <= MAX_SENDER_LATE_MS,
  };
}

/**
 * Runs the sender process with `job` and measures this (receiving) process meanwhile: its CPU
 * (every thread), its event loop's busy share, and the wall time of the load (the 500 ms lead-in
 * before packet 0 left out).
 */
async function offerLoad(job: SenderJob): Promise<{ result: { sent: number; maxLateMs: number }; cpu: NodeJS.CpuUsage; elu: number; wallMs: number }> {
  const sender = fork(fileURLToPath(new URL('./media-sender.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'] });
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const wall0 = performance.now();
  const result = await new Promise<{ sent: number; maxLateMs: number }>((resolve, reject) => {
    sender.once('message', (m) => resolve(m as { sent: number; maxLateMs: number }));
    sender.once('error', reject);
    sender.send(job);
  });
  // Let the last packets drain out of the socket buffers.
  await new Promise((r) => setTimeout(r, 200));
  return { result, cpu: process.cpuUsage(cpu0), elu: performance.eventLoopUtilization(elu0).utilization, wallMs: performance.now() - wall0 - 500 };
}

/** Runs the sender against `legs` sockets bound as the receiver binds them; the receive path is a counter. */
async function rawTrial(legs: number, seconds: number, opusShare: number, load: SenderJob['payloads'], basePort: number): Promise<RawTrial> {
  const pool = new RtpPortPool('127.0.0.1', basePort, basePort + 2 * legs + 200);
  const packetsPerLeg = Math.round(seconds * 50);
  const startPerf = performance.now() + 500;
  const job: SenderJob = { legs: [], payloads: load, startEpochMs: performance.timeOrigin + startPerf, packetsPerLeg };
  const opusEvery = opusShare > 0 ? Math.round(1 / opusShare) : Infinity;
  const sockets: { close(): void }[] = [];
  let received = 0;
  for (let i = 0; i < legs; i++) {
    const { socket, port } = await pool.bind();
    try {
      socket.setRecvBufferSize(256 * 1024); // as RtpReceiver sets it
    } catch {
      // capped by net.core.rmem_max, as for the receiver
    }
    socket.on('message', () => void received++);
    sockets.push(socket);
    job.legs.push({ port, codec: i % opusEvery === opusEvery - 1 ? 'opus' : 'PCMU' });
  }
  const { result, cpu, elu, wallMs } = await offerLoad(job);
  if (process.env.BENCH_DEBUG) console.log(`raw cpu user ${(cpu.user / 1000).toFixed(0)} ms system ${(cpu.system / 1000).toFixed(0)} ms`);
  for (const s of sockets) s.close();
  const lossPct = result.sent === 0 ? 100 : (100 * (result.sent - received)) / result.sent;
  const cpuPct = (100 * (cpu.user + cpu.system)) / 1000 / wallMs;
  return {
    legs,
    sent: result.sent,
    received,
    lossPct: Number(lossPct.toFixed(4)),
    cpuPct: Number(cpuPct.toFixed(1)),
    eventLoopUtilization: Number(elu.toFixed(3)),
    senderMaxLateMs: Number(result.maxLateMs.toFixed(1)),
    sustained: lossPct < 0.1 && cpuPct <= MAX_CPU_PCT && elu < MAX_ELU && result.maxLateMs <= MAX_SENDER_LATE_MS,
    usPerPacket: received === 0 ? 0 : Number(((cpu.user + cpu.system) / received).toFixed(2)),
  };
}

/** Grows N over `ladder` until a trial fails, then bisects twice between the last good and the first failing N; the largest N that held. */
async function search<T extends { legs: number; sustained: boolean }>(ladder: readonly number[], run: (legs: number) => Promise<T>): Promise<number> {
  let good = 0;
  let bad = 0;
  for (const legs of ladder) {
    if ((await run(legs)).sustained) good = legs;
    else {
      bad = legs;
      break;
    }
  }
  for (let i = 0; bad > 0 && i < 2; i++) {
    const mid = Math.round((good + bad) / 2 / 50) * 50;
    if (mid === good || mid === bad) break;
    if ((await run(mid)).sustained) good = mid;
    else bad = mid;
  }
  return good;
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      legs: { type: 'string' },
      seconds: { type: 'string', default: '3' },
      'opus-share': { type: 'string', default: '0.2' },
      /** Skip the bare receiver's search (ratioToRaw is then null). */
      'no-raw': { type: 'boolean', default: false },
    },
  });
  const seconds = Number(values.seconds);
  const opusShare = Number(values['opus-share']);
  const load = payloads();
  const trials: Trial[] = [];
  let port = 20000;
  // Alternate ranges so released ports are not reused at once (8 000 legs fit in either).
  const nextBase = (): number => (port = port === 20000 ? 42000 : 20000);
  const run = async (legs: number): Promise<Trial> => {
    const t = await trial(legs, seconds, opusShare, load, nextBase());
    trials.push(t);
    console.log(`media: ${JSON.stringify(t)}`);
    return t;
  };
  const rawRun = async (legs: number): Promise<RawTrial> => {
    const t = await rawTrial(legs, seconds, opusShare, load, nextBase());
    console.log(`media raw: ${JSON.stringify(t)}`);
    return t;
  };
  let rawLegsPerCore: number | null = null;
  if (values.legs) {
    await run(Number(values.legs));
    if (!values['no-raw']) rawLegsPerCore = (await rawRun(Number(values.legs))).sustained ? Number(values.legs) : 0;
  } else {
    await search([250, 500, 1000, 1500, 2000, 3000, 4000, 5000], run);
    if (!values['no-raw']) rawLegsPerCore = await search([500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000], rawRun);
  }
  const best = trials.filter((t) => t.sustained).sort((a, b) => b.legs - a.legs)[0];
  const report = best ?? trials[trials.length - 1]!;
  const legsPerCore = best?.legs ?? 0;
  console.log(
    JSON.stringify({
      bench: 'media',
      legs: report.legs,
      legsPerCore,
      rawLegsPerCore,
      ratioToRaw: rawLegsPerCore ? Number((legsPerCore / rawLegsPerCore).toFixed(3)) : null,
      clockUsPerPartyTick: report.clockUsPerPartyTick,
      lossPct: report.lossPct,
      p99FrameLatencyMs: report.p99FrameLatencyMs,
      cpuPct: report.cpuPct,
      eventLoopUtilization: report.eventLoopUtilization,
      opusShare,
      packetMs: 20,
      seconds,
      firstFailing: trials.filter((t) => !t.sustained).sort((a, b) => a.legs - b.legs)[0]?.legs ?? null,
    }),
  );
}
