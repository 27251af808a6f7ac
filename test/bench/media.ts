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
 *
 * So that a figure can be read on any machine, the report also says what stopped each search
 * (`limitedBy`, `rawLimitedBy`: a search stopped by the sender only gives a lower bound), how much
 * CPU the hypervisor stole during each trial (`stealPct`), and the libopus decode cost per packet
 * measured in the same run, with the ratio it alone allows (`ratioCeilingFromOpusDecode`: the bare
 * receive plus the Opus share's decoding, every other stage free).
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
import { OpusStreamDecoder } from '../../src/audio/opus.js';
import type { SenderJob, SenderResult, SenderStart } from './media-sender.js';

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
  senderCpuPct: number;
  /** Share of the machine's CPU time its hypervisor took during the trial (%). */
  stealPct: number;
  sustained: boolean;
  /** The limits this trial broke (empty when sustained): what stopped the search. */
  limitedBy: Limit[];
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
  limitedBy: Limit[];
  /** Receiver CPU (user + system) per datagram, µs. */
  usPerPacket: number;
  senderCpuPct: number;
  stealPct: number;
}

/**
 * Why a trial did not hold. `sender` means the load was not offered in real time, so the trial
 * measured the sender, not the receiver: a search that stops on it only gives a lower bound.
 */
type Limit = 'loss' | 'latency' | 'cpu' | 'eventLoop' | 'sender';

function limits(c: { lossPct: number; p50?: number; p99?: number; cpuPct: number; elu: number; senderLateMs: number }): Limit[] {
  const out: Limit[] = [];
  if (c.lossPct >= 0.1) out.push('loss');
  if (c.p50 !== undefined && c.p99 !== undefined && (!(c.p50 < MAX_P50_MS) || !(c.p99 < MAX_P99_MS))) out.push('latency');
  if (c.cpuPct > MAX_CPU_PCT) out.push('cpu');
  if (c.elu >= MAX_ELU) out.push('eventLoop');
  if (c.senderLateMs > MAX_SENDER_LATE_MS) out.push('sender');
  return out;
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
  // Set once the sender is ready: packet 0 of leg 0 is due then.
  let startPerf = Infinity;
  const ports: RtpPartyPort[] = [];
  const job: SenderJob = { legs: [], payloads: load, packetsPerLeg };
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
  const { result, cpu, elu, wallMs, stealPct } = await offerLoad(job, (start) => (startPerf = start));
  loopDelay.disable();
  if (process.env.BENCH_DEBUG) console.log(`cpu user ${(cpu.user / 1000).toFixed(0)} ms system ${(cpu.system / 1000).toFixed(0)} ms`);
  if (process.env.BENCH_DEBUG) console.log(`loop delay p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} ms max ${(loopDelay.max / 1e6).toFixed(1)} ms`);
  const received = ports.reduce((sum, p) => sum + p.stats().packets, 0);
  const clock = receiver.clockStats;
  receiver.close();
  const measured = latencies.subarray(0, Math.min(frames, latencies.length)).sort();
  const lossPct = result.sent === 0 ? 100 : (100 * (result.sent - received)) / result.sent;
  const p50 = pct(measured, 0.5);
  const p99 = pct(measured, 0.99);
  const cpuPct = (100 * (cpu.user + cpu.system)) / 1000 / wallMs;
  const limitedBy = limits({ lossPct, p50, p99, cpuPct, elu, senderLateMs: result.maxLateMs });
  return {
    legs,
    sent: result.sent,
    received,
    lossPct: Number(lossPct.toFixed(4)),
    frames,
    p50FrameLatencyMs: Number(p50.toFixed(2)),
    p99FrameLatencyMs: Number(p99.toFixed(2)),
    cpuPct: Number(cpuPct.toFixed(1)),
    eventLoopUtilization: Number(elu.toFixed(3)),
    senderMaxLateMs: Number(result.maxLateMs.toFixed(1)),
    clockUsPerPartyTick: clock.partyTicks === 0 ? 0 : Number(((clock.busyMs * 1000) / clock.partyTicks).toFixed(3)),
    usPerPacket: received === 0 ? 0 : Number(((cpu.user + cpu.system) / received).toFixed(2)),
    senderCpuPct: Number(result.cpuPct.toFixed(1)),
    stealPct: Number(stealPct.toFixed(1)),
    sustained: limitedBy.length === 0,
    limitedBy,
  };
}

/**
 * The machine's CPU time stolen by its hypervisor (/proc/stat's `steal`), in clock ticks, with the
 * total: a trial run while the host was busy shows it, and its figures are not this machine's.
 * Zero where /proc/stat is not there.
 */
function cpuTicks(): { steal: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { steal: fields[7] ?? 0, total: fields.reduce((a, b) => a + b, 0) };
  } catch {
    return { steal: 0, total: 0 };
  }
}

/**
 * Runs the sender process with `job` and measures this (receiving) process meanwhile: its CPU
 * (every thread), its event loop's busy share, and the wall time of the load. The sender first
 * opens its sockets and says it is ready; only then is the start time set (`begin` learns it), so
 * neither the sender's start-up nor the opening of thousands of sockets is counted as lateness.
 */
async function offerLoad(job: SenderJob, begin: (startPerf: number) => void = () => undefined): Promise<{ result: SenderResult; cpu: NodeJS.CpuUsage; elu: number; wallMs: number; stealPct: number }> {
  const sender = fork(fileURLToPath(new URL('./media-sender.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'] });
  const exited = new Promise<never>((_, reject) => sender.once('exit', (code) => reject(new Error(`media sender exited with ${code} before it reported`))));
  exited.catch(() => undefined); // it exits after its last report too; only a race below reads it
  const reply = (): Promise<unknown> => Promise.race([new Promise((resolve) => sender.once('message', resolve)), exited]);
  const ready = reply();
  sender.send(job);
  await ready;
  const startPerf = performance.now() + 200;
  begin(startPerf);
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const ticks0 = cpuTicks();
  const done = reply();
  sender.send({ startEpochMs: performance.timeOrigin + startPerf } satisfies SenderStart);
  const result = (await done) as SenderResult;
  // Let the last packets drain out of the socket buffers.
  await new Promise((r) => setTimeout(r, 200));
  const ticks = cpuTicks();
  const stealPct = ticks.total > ticks0.total ? (100 * (ticks.steal - ticks0.steal)) / (ticks.total - ticks0.total) : 0;
  return { result, cpu: process.cpuUsage(cpu0), elu: performance.eventLoopUtilization(elu0).utilization, wallMs: performance.now() - startPerf, stealPct };
}

/** Runs the sender against `legs` sockets bound as the receiver binds them; the receive path is a counter. */
async function rawTrial(legs: number, seconds: number, opusShare: number, load: SenderJob['payloads'], basePort: number): Promise<RawTrial> {
  const pool = new RtpPortPool('127.0.0.1', basePort, basePort + 2 * legs + 200);
  const packetsPerLeg = Math.round(seconds * 50);
  const job: SenderJob = { legs: [], payloads: load, packetsPerLeg };
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
  const { result, cpu, elu, wallMs, stealPct } = await offerLoad(job);
  if (process.env.BENCH_DEBUG) console.log(`raw cpu user ${(cpu.user / 1000).toFixed(0)} ms system ${(cpu.system / 1000).toFixed(0)} ms`);
  for (const s of sockets) s.close();
  const lossPct = result.sent === 0 ? 100 : (100 * (result.sent - received)) / result.sent;
  const cpuPct = (100 * (cpu.user + cpu.system)) / 1000 / wallMs;
  const limitedBy = limits({ lossPct, cpuPct, elu, senderLateMs: result.maxLateMs });
  return {
    legs,
    sent: result.sent,
    received,
    lossPct: Number(lossPct.toFixed(4)),
    cpuPct: Number(cpuPct.toFixed(1)),
    eventLoopUtilization: Number(elu.toFixed(3)),
    senderMaxLateMs: Number(result.maxLateMs.toFixed(1)),
    sustained: limitedBy.length === 0,
    limitedBy,
    usPerPacket: received === 0 ? 0 : Number(((cpu.user + cpu.system) / received).toFixed(2)),
    senderCpuPct: Number(result.cpuPct.toFixed(1)),
    stealPct: Number(stealPct.toFixed(1)),
  };
}

/**
 * The Opus decode cost on this machine, measured in this run: CPU µs per 20 ms packet of the
 * benchmark's own Opus payloads, decoded to 16 kHz as the receiver decodes them. With the bare
 * receive cost it bounds `ratioToRaw` whatever the rest of the path costs.
 */
function opusDecodeUsPerPacket(load: SenderJob['payloads']): number {
  const packets = load.opus.map((p) => Buffer.from(p, 'base64'));
  const decoder = new OpusStreamDecoder(16000);
  for (const p of packets) decoder.decode(p); // warm up
  // The least disturbed of several samples: a busy host only ever makes a sample slower.
  let best = Infinity;
  for (let sample = 0; sample < 5; sample++) {
    const rounds = 10;
    const cpu0 = process.cpuUsage();
    for (let r = 0; r < rounds; r++) for (const p of packets) decoder.decode(p);
    const cpu = process.cpuUsage(cpu0);
    best = Math.min(best, (cpu.user + cpu.system) / (rounds * packets.length));
  }
  decoder.close();
  return best;
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
  const rawTrials: RawTrial[] = [];
  const rawRun = async (legs: number): Promise<RawTrial> => {
    const t = await rawTrial(legs, seconds, opusShare, load, nextBase());
    rawTrials.push(t);
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
  const firstFailing = trials.filter((t) => !t.sustained).sort((a, b) => a.legs - b.legs)[0];
  const rawBest = rawTrials.filter((t) => t.sustained).sort((a, b) => b.legs - a.legs)[0];
  const rawFirstFailing = rawTrials.filter((t) => !t.sustained).sort((a, b) => a.legs - b.legs)[0];
  const opusUs = opusDecodeUsPerPacket(load);
  // With every stage but receive and Opus decoding free: the most the ratio could be here.
  const rawUs = rawBest?.usPerPacket ?? 0;
  const ratioCeiling = rawUs > 0 ? rawUs / (rawUs + opusShare * opusUs) : null;
  console.log(
    JSON.stringify({
      bench: 'media',
      legs: report.legs,
      legsPerCore,
      rawLegsPerCore,
      ratioToRaw: rawLegsPerCore ? Number((legsPerCore / rawLegsPerCore).toFixed(3)) : null,
      clockUsPerPartyTick: report.clockUsPerPartyTick,
      usPerPacket: report.usPerPacket,
      rawUsPerPacket: rawBest?.usPerPacket ?? null,
      opusDecodeUsPerPacket: Number(opusUs.toFixed(2)),
      ratioCeilingFromOpusDecode: ratioCeiling === null ? null : Number(ratioCeiling.toFixed(3)),
      lossPct: report.lossPct,
      p99FrameLatencyMs: report.p99FrameLatencyMs,
      cpuPct: report.cpuPct,
      eventLoopUtilization: report.eventLoopUtilization,
      opusShare,
      packetMs: 20,
      seconds,
      firstFailing: firstFailing?.legs ?? null,
      limitedBy: firstFailing?.limitedBy ?? null,
      rawFirstFailing: rawFirstFailing?.legs ?? null,
      rawLimitedBy: rawFirstFailing?.limitedBy ?? null,
    }),
  );
}
