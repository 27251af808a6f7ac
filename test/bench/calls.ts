/**
 * `npm run bench -- calls [--calls N] [--seconds S] [--ramp S] [--utterances U] [--pool P]
 * [--threads T] [--queue Q] [--partials] [--keep]`: N concurrent SIP calls through the whole gateway.
 *
 * One sipp (test/sipp/load-uac.xml) places N calls (default 100) to an `answer` rule, ramped over
 * `--ramp` seconds (default 2) with `-r`/`-rp` and held up together with `-l N -m N`. Each call
 * streams real RTP (`rtp_stream`: 8 kHz µ-law from espeak-ng, U sentences (default 2) separated by
 * silence, S seconds long (default 8)) and hangs up. The gateway runs in this process, as in
 * test/integration/sip-e2e.test.ts: a real drachtio-server (DRACHTIO_BIN or `drachtio` on PATH;
 * without one the bench says it is skipped and exits 0), a userspace rtpengine, Silero VAD and
 * whisper-server on the tiny random-weight test model (no-speech filter off so every utterance
 * yields a final). Transcription settings: language `en` (no detection pass), partials off unless
 * `--partials`, whisper poolSize `--pool` (default 2) × `--threads` (default 1), queueSize `--queue`
 * (default: the configuration's). On 2 cores, 2 servers × 1 thread finish a burst of tiny-model
 * finals about twice as fast as 1 × 2: each request spends ~20 ms idle on its kept-alive HTTP
 * connection (whisper-server sends the response body in a second segment that Nagle holds until
 * the client's delayed ACK), which a second server overlaps.
 *
 * Figures (last line, JSON):
 * - setupMsP95: sipp's response time of the 200 OK (`rtd` on the 200 with no `start_rtd`: from the
 *   call's first INVITE to its 200 OK, via `-trace_rtt -rtt_freq 1`). sipp 3.6.1 reads
 *   CLOCK_MONOTONIC_COARSE, so these come in steps of one kernel tick (4 ms here);
 * - failedCalls: sipp's FailedCall counter (`-trace_stat`);
 * - lostFramesPct: Σ lost / Σ (packets + lost) over the caller forks of every call.ended;
 * - finalsExpected = calls × utterances; finalsReceived = caller `final` events;
 * - finalLagP95Ms: for each final, its arrival time minus the moment the matching sentence's speech
 *   ended in that call. A call's audio clock starts at its call.started event (emitted right after
 *   the gateway sent the 200 OK, in this process): sipp starts the stream on the ACK, within one
 *   of its rtpstream thread's wake-ups (≤ 100 ms) later, so the lag is over-estimated by that much
 *   at most, never under-estimated. The sentence is the one whose span overlaps the final's
 *   [startMs, endMs] (call clock) the most; `streamOffsetP50Ms` reports the measured offset
 *   (the gateway's VAD end of speech minus the sentence end) as a check;
 * - leftoverSessions: rtpengine's session count after every call ended (must be 0).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { WhisperEngine } from '../../src/asr/whisper/engine.js';
import { encodeUlawBuffer } from '../../src/audio/g711.js';
import { Resampler } from '../../src/audio/resampler.js';
import type { CallEndedEvent, CallEvent } from '../../src/transcripts/events.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { startGateway, type Gateway } from '../../src/main.js';
import { UTTERANCE_TAIL_MS } from '../../src/vad/segmenter.js';
import { findDrachtio } from '../support/drachtio.js';
import { freeMediaPort, freeTcpPort, freeUdpPort, waitFor } from '../support/net.js';
import { rtpPortRange, startTestRtpengine, type TestPortRanges, type TestRtpengine } from '../support/rtpengine.js';
import { speechFixture } from '../support/speech.js';
import { ensureTestWhisper } from '../support/whisper.js';

const SIPP_DIR = join(import.meta.dirname, '..', 'sipp');
const SENTENCES = ['Please check my balance.', 'I need a new card.', 'What time do you open?'];
const LEAD_MS = 1200;
const GAP_MS = 1500;
/** Silence after the last sentence: VAD hang-over (600 ms) and a margin before the BYE. */
const MIN_TAIL_MS = 1000;
/** After sipp is done: how long the last finals (and call.ended) may take. */
const FINALS_WAIT_MS = 120_000;
const CLK_TCK = 100;

const log = (line: string): void => console.log(`calls: ${line}`);
const pct = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(s.length * p) - 1)]! : Number.NaN;
};
const r1 = (x: number): number => (Number.isFinite(x) ? Math.round(x * 10) / 10 : x);

function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}


/**
 * Port slots leased like the tests do (lock files, so a vitest run at the same time never gets
 * the same ports): `slots` contiguous slots of 400 ports; the others leased on the way are
 * given back.
 */
function leaseContiguousSlots(slots: number): { min: number; max: number; release(): void } {
  const held: { base: number; lease: TestPortRanges }[] = [];
  const releaseAll = (keep: Set<number>): void => {
    for (const h of held) if (!keep.has(h.base)) h.lease.release();
  };
  for (;;) {
    let lease: TestPortRanges;
    try {
      lease = rtpPortRange();
    } catch (err) {
      releaseAll(new Set());
      throw new Error(`could not lease ${slots} contiguous port slots: ${(err as Error).message}`);
    }
    const base = lease.rtpengine.min;
    const size = lease.gateway.max + 1 - base;
    held.push({ base, lease });
    const bases = new Set(held.map((h) => h.base));
    for (const h of held) {
      let run = 1;
      while (run < slots && bases.has(h.base + run * size)) run++;
      if (run === slots) {
        const keep = new Set(Array.from({ length: slots }, (_, i) => h.base + i * size));
        releaseAll(keep);
        const mine = held.filter((x) => keep.has(x.base));
        return { min: h.base, max: h.base + slots * size - 1, release: () => mine.forEach((x) => x.lease.release()) };
      }
    }
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc; NaN when it is gone. */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** Busy share of all cores since boot, from /proc/stat (for a before/after difference). */
function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = line.reduce((a, b) => a + b, 0);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  return { busy: total - idle, total };
}

function parseSippStats(file: string): { successful: number; failed: number; created: number } | undefined {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const head = lines[0]!.split(';');
    const last = lines[lines.length - 1]!.split(';');
    const col = (name: string): number => Number(last[head.indexOf(name)]);
    return { successful: col('SuccessfulCall(C)'), failed: col('FailedCall(C)'), created: col('CallRate(C)') };
  } catch {
    return undefined;
  }
}

interface CallTrack {
  startedAt: number;
  endedAt?: number;
  ended?: CallEndedEvent;
  finals: { at: number; startMs: number; endMs: number }[];
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      calls: { type: 'string', default: '100' },
      seconds: { type: 'string', default: '8' },
      ramp: { type: 'string', default: '2' },
      utterances: { type: 'string', default: '2' },
      pool: { type: 'string', default: '2' },
      threads: { type: 'string', default: '1' },
      queue: { type: 'string' },
      partials: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
    },
  });
  const calls = Number(values.calls);
  const seconds = Number(values.seconds);
  const rampS = Number(values.ramp);
  const utterances = Number(values.utterances);
  const poolSize = Number(values.pool);
  const threads = Number(values.threads);
  if (![calls, seconds, rampS, utterances, poolSize, threads].every((x) => Number.isFinite(x) && x > 0)) {
    throw new Error('--calls, --seconds, --ramp, --utterances, --pool and --threads must be positive numbers');
  }

  const drachtio = findDrachtio();
  const drachtioBin = 'binary' in drachtio ? drachtio.binary : undefined;
  const missing = 'missing' in drachtio
    ? drachtio.missing
    : !which('sipp')
      ? 'no sipp on PATH (apt-get install sip-tester)'
      : !(process.env.RTPENGINE_BIN || which('rtpengine'))
        ? 'no rtpengine on PATH or in RTPENGINE_BIN (apt-get install rtpengine-daemon)'
        : undefined;
  if (missing) {
    log(`skipped: ${missing}`);
    console.log(JSON.stringify({ bench: 'calls', skipped: missing }));
    return;
  }

  // What each caller says: U sentences with known ends, padded to `seconds`.
  const sentences = Array.from({ length: utterances }, (_, i) => SENTENCES[i % SENTENCES.length]!);
  const probe = await speechFixture({ sentences, gapsMs: sentences.slice(1).map(() => GAP_MS), sampleRate: 8000, leadMs: LEAD_MS, tailMs: 0 });
  const speechEndMs = probe.sentences.at(-1)!.endMs;
  const tailMs = Math.round(seconds * 1000 - speechEndMs);
  if (tailMs < MIN_TAIL_MS) throw new Error(`--seconds ${seconds} is too short for ${utterances} utterances: needs ≥ ${Math.ceil((speechEndMs + MIN_TAIL_MS) / 1000)} s`);
  const speech = await speechFixture({ sentences, gapsMs: sentences.slice(1).map(() => GAP_MS), sampleRate: 8000, leadMs: LEAD_MS, tailMs });
  const marks = speech.sentences;
  const pcm8k = new Resampler(16000, 8000).process(speech.samples16k);
  const packetsPerCall = Math.floor(pcm8k.length / 160);

  const dir = mkdtempSync(join(tmpdir(), 'wl-bench-calls-'));
  const children: ChildProcess[] = [];
  let ports: { min: number; max: number; release(): void } | undefined;
  let rtpe: TestRtpengine | undefined;
  let gateway: Gateway | undefined;
  const t0 = performance.now();
  try {
    // Ports: rtpengine holds 4 per call and 2 per fork (8 per call given), the gateway an even
    // port (2 numbers) for each call's sink and for its fork (4 per call given), plus margins.
    const rtpengineSpan = 8 * calls + 200;
    const gatewaySpan = 4 * calls + 200;
    ports = leaseContiguousSlots(Math.ceil((rtpengineSpan + gatewaySpan) / 400));
    const rtpeRange = { min: ports.min, max: ports.min + rtpengineSpan - 1 };
    const gwRange = { min: rtpeRange.max + 1, max: ports.max };
    log(`ports: rtpengine ${rtpeRange.min}-${rtpeRange.max}, gateway ${gwRange.min}-${gwRange.max}`);

    const whisper = await ensureTestWhisper();
    rtpe = await startTestRtpengine(rtpeRange.min, rtpeRange.max, { logLevel: 5 });

    const sipPort = await freeTcpPort();
    const adminPort = await freeTcpPort();
    const conf = join(dir, 'drachtio.conf.xml');
    writeFileSync(
      conf,
      `<drachtio><admin port="${adminPort}" secret="cymru">127.0.0.1</admin><sip><contacts><contact>sip:127.0.0.1:${sipPort};transport=udp,tcp</contact></contacts></sip><cdrs>false</cdrs><logging><console/><loglevel>warning</loglevel><sofia-loglevel>1</sofia-loglevel></logging></drachtio>`,
    );
    const drachtio = spawn(drachtioBin!, ['-f', conf], { stdio: 'ignore' });
    children.push(drachtio);
    await waitFor(
      'drachtio admin port',
      () =>
        new Promise<boolean>((resolve) => {
          const s = connect(adminPort, '127.0.0.1', () => (s.destroy(), resolve(true)));
          s.on('error', () => resolve(false));
        }),
      15_000,
    );

    const plans = join(dir, 'dialplans');
    mkdirSync(plans);
    writeFileSync(join(plans, 'load.yaml'), `rules:\n  - name: load\n    match: { requestUser: "^load$" }\n    action: answer\n    parties: { caller: { label: customer } }\n`);
    const config = loadConfig({
      env: {
        WHISPERLINE_SIP_DRACHTIO_PORT: String(adminPort),
        WHISPERLINE_SIP_DIALPLANS: plans,
        WHISPERLINE_SIP_MAX_CALLS: String(Math.max(500, calls)),
        WHISPERLINE_RTPENGINE_LAUNCH: 'false',
        WHISPERLINE_RTPENGINE_PORT: String(rtpe.ngPort),
        WHISPERLINE_MEDIA_PORT_MIN: String(gwRange.min),
        WHISPERLINE_MEDIA_PORT_MAX: String(gwRange.max),
        WHISPERLINE_ASR_MODEL: whisper.tinyModel,
        WHISPERLINE_ASR_LOCAL_POOL_SIZE: String(poolSize),
        WHISPERLINE_ASR_LOCAL_THREADS: String(threads),
        ...(values.queue ? { WHISPERLINE_ASR_QUEUE_SIZE: values.queue } : {}),
        WHISPERLINE_TRANSCRIPTS_LANGUAGE: 'en',
        WHISPERLINE_TRANSCRIPTS_PARTIALS: String(values.partials),
        WHISPERLINE_TRANSCRIPTS_NO_SPEECH_THRESHOLD: '1',
        WHISPERLINE_TRANSCRIPTS_SILENCE_PHRASES: '[]',
        WHISPERLINE_LOG_LEVEL: 'warn',
        WHISPERLINE_HTTP_PORT: '0',
        WHISPERLINE_STORE_PATH: join(dir, 'transcripts.db'),
      },
    });
    const logFile = join(dir, 'gateway.log');
    gateway = await startGateway(config, createLogger(config.log, pino.destination({ dest: logFile, sync: true })));
    const gw = gateway;
    const engine = gw.speech.recognizer instanceof WhisperEngine ? gw.speech.recognizer : undefined;
    await waitFor('the gateway to connect to drachtio', () => gw.sip?.connection === 'connected', 15_000);

    // Events: per call, when it started (its audio clock), its caller finals, its end.
    const tracks = new Map<string, CallTrack>();
    let live = 0;
    let peak = 0;
    let otherFinals = 0;
    gw.events.on('event', (e: CallEvent) => {
      const at = performance.now();
      if (e.kind === 'call.started') {
        tracks.set(e.callId, { startedAt: at, finals: [] });
        peak = Math.max(peak, ++live);
      } else if (e.kind === 'call.ended') {
        const t = tracks.get(e.callId);
        if (t) {
          t.ended = e;
          t.endedAt = at;
        }
        live--;
      } else if (e.kind === 'final') {
        const t = tracks.get(e.callId);
        if (t && e.party === 'caller') t.finals.push({ at, startMs: e.startMs, endMs: e.endMs });
        else otherFinals++;
      }
    });

    // The scenario with this run's audio file and talk time filled in.
    const audioFile = join(dir, 'speech.ulaw');
    writeFileSync(audioFile, encodeUlawBuffer(pcm8k));
    const scenarioFile = join(dir, 'load-uac.xml');
    writeFileSync(
      scenarioFile,
      readFileSync(join(SIPP_DIR, 'load-uac.xml'), 'utf8').replaceAll('[audio_file]', audioFile).replaceAll('[talk_ms]', String(Math.round(seconds * 1000) + 200)),
    );
    const rate = Math.max(1, Math.ceil(calls / rampS));
    const statFile = join(dir, 'sipp-stat.csv');
    const sippArgs = [
      `127.0.0.1:${sipPort}`, '-sf', scenarioFile, '-s', 'load',
      '-i', '127.0.0.1', '-p', String(await freeUdpPort()), '-mi', '127.0.0.1', '-mp', String(await freeMediaPort()),
      '-r', String(rate), '-rp', '1000', '-l', String(calls), '-m', String(calls),
      '-nostdin', '-timeout', `${Math.round(seconds + rampS + 60)}s`,
      '-trace_rtt', '-rtt_freq', '1', '-trace_stat', '-stf', statFile, '-fd', '1',
      '-trace_err', '-error_file', join(dir, 'sipp-errors.log'),
    ];
    log(`${calls} calls of ${seconds} s (${utterances} utterances each, ${packetsPerCall} packets), ramp ${rate} calls/s; whisper pool ${poolSize} × ${threads} threads, partials ${values.partials ? 'on' : 'off'}`);

    const cpuPids = (): Record<string, number | undefined> => ({
      gateway: process.pid,
      rtpengine: rtpe?.pid,
      drachtio: drachtio.pid,
      ...Object.fromEntries((engine?.servers() ?? []).map((s, i) => [`whisper${i}`, s.pid])),
    });
    const pids0 = cpuPids();
    const cpu0 = Object.fromEntries(Object.entries(pids0).map(([k, p]) => [k, cpuSeconds(p)]));
    const mt0 = machineTicks();
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();

    const loadStart = performance.now();
    const sipp = spawn('sipp', sippArgs, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(sipp);
    let sippErr = '';
    sipp.stderr.on('data', (d: Buffer) => (sippErr = (sippErr + d.toString()).slice(-4000)));
    const sippDone = new Promise<number | null>((resolve) => sipp.on('close', (code) => resolve(code)));
    let sippCode: number | null | undefined;
    void sippDone.then((c) => (sippCode = c));
    let sippCpu = 0;
    const progress = (): void => {
      const st = engine?.stats();
      const finals = [...tracks.values()].reduce((n, t) => n + t.finals.length, 0);
      const s = cpuSeconds(sipp.pid);
      if (Number.isFinite(s)) sippCpu = s;
      log(
        `t=${((performance.now() - loadStart) / 1000).toFixed(0)}s live ${live} (peak ${peak}) started ${tracks.size} ended ${[...tracks.values()].filter((t) => t.ended).length} finals ${finals}` +
          (st ? ` asr queued ${st.queued} inFlight ${st.inFlight} done ${st.completed} p95 ${r1(st.latencyP95Ms)} ms` : '') +
          ` load ${loadavg()[0]!.toFixed(1)}`,
      );
    };
    const ticker = setInterval(progress, 2000);
    let cpuAll: Record<string, number> = {};
    let machineBusyPct = Number.NaN;
    let loopP99 = Number.NaN;
    let loopMax = Number.NaN;
    try {
      await Promise.race([sippDone, sleep((seconds + rampS + 90) * 1000, undefined, { ref: false })]);
      if (sippCode === undefined) {
        log('sipp did not finish in time: stopping it');
        sipp.kill('SIGTERM');
        await Promise.race([sippDone, sleep(5000, undefined, { ref: false })]);
      }
      const sippEnd = performance.now();
      log(`sipp exited ${sippCode} after ${((sippEnd - loadStart) / 1000).toFixed(1)} s; waiting for the last finals`);
      // call.ended comes after a call's last final: wait for every started call to end.
      await waitFor('every call to end', () => [...tracks.values()].every((t) => t.ended), FINALS_WAIT_MS).catch((err: Error) => log(err.message));
      cpuAll = Object.fromEntries(Object.entries(pids0).map(([k, p]) => [k, r1((100 * (cpuSeconds(p) - cpu0[k]!)) / ((performance.now() - loadStart) / 1000))]));
      cpuAll.sipp = r1((100 * sippCpu) / ((sippEnd - loadStart) / 1000));
      const mt1 = machineTicks();
      machineBusyPct = r1((100 * (mt1.busy - mt0.busy)) / (mt1.total - mt0.total));
      loopP99 = r1(loopDelay.percentile(99) / 1e6);
      loopMax = r1(loopDelay.max / 1e6);
    } finally {
      clearInterval(ticker);
      loopDelay.disable();
    }
    progress();
    const allEndedAt = performance.now();
    // rtpengine is deleted before call.ended; give its session count a moment, bounded.
    let leftoverSessions = await rtpe.numSessions();
    for (let i = 0; i < 20 && leftoverSessions > 0; i++) {
      await sleep(250);
      leftoverSessions = await rtpe.numSessions();
    }
    const engineStats = engine?.stats();
    const openPorts = gw.receiver.openPorts;
    const liveCalls = gw.registry.size;

    // Set-up times from sipp's response-time trace.
    const rtts: number[] = [];
    for (const f of readdirSync(dir).filter((n) => n.endsWith('_rtt.csv'))) {
      for (const line of readFileSync(join(dir, f), 'utf8').trim().split('\n').slice(1)) {
        const v = Number(line.split(';')[1]);
        if (Number.isFinite(v)) rtts.push(v);
      }
    }
    const sippStats = parseSippStats(statFile);

    // Media, finals and their lag.
    let packets = 0;
    let lost = 0;
    let late = 0;
    const lags: number[] = [];
    const offsets: number[] = [];
    let finalsReceived = 0;
    let finalsMatched = 0;
    let callsAllFinals = 0;
    const reasons: Record<string, number> = {};
    for (const t of tracks.values()) {
      const caller = t.ended?.parties.caller;
      if (caller) {
        packets += caller.packets;
        lost += caller.lost;
        late += caller.late;
      }
      if (t.ended) reasons[t.ended.reason] = (reasons[t.ended.reason] ?? 0) + 1;
      finalsReceived += t.finals.length;
      const covered = new Set<number>();
      for (const f of t.finals) {
        let best = -1;
        let bestOverlap = 0;
        marks.forEach((m, k) => {
          const overlap = Math.min(f.endMs, m.endMs) - Math.max(f.startMs, m.startMs);
          if (overlap > bestOverlap) {
            best = k;
            bestOverlap = overlap;
          }
        });
        if (best < 0) continue;
        covered.add(best);
        lags.push(f.at - (t.startedAt + marks[best]!.endMs));
        offsets.push(f.endMs - UTTERANCE_TAIL_MS - marks[best]!.endMs);
      }
      finalsMatched += covered.size;
      if (covered.size === marks.length) callsAllFinals++;
    }

    const logLines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.trim() !== '');
    const errorLines = logLines.filter((l) => /"level":(50|60)/.test(l));
    if (errorLines.length > 0) log(`${errorLines.length} error lines in the gateway log, first: ${errorLines[0]!.slice(0, 400)}`);
    if (sippCode !== 0) log(`sipp: ${sippErr.trim().slice(-600) || '(no stderr)'}; errors in ${join(dir, 'sipp-errors.log')}`);
    log(`cpu % of one core during the load: ${JSON.stringify(cpuAll)}; machine busy ${machineBusyPct} %; event loop delay p99 ${loopP99} ms, max ${loopMax} ms`);
    if (engineStats) log(`engine: ${JSON.stringify(engineStats)}`);
    log(`calls ended: ${JSON.stringify(reasons)}; gateway after the run: ${openPorts} RTP ports open, ${liveCalls} calls registered`);

    const report = {
      bench: 'calls',
      concurrentCalls: peak,
      callsPlaced: calls,
      callsStarted: tracks.size,
      successfulCalls: sippStats?.successful ?? null,
      failedCalls: sippStats?.failed ?? null,
      sippExit: sippCode ?? null,
      setupMsP50: r1(pct(rtts, 0.5)),
      setupMsP95: r1(pct(rtts, 0.95)),
      setupMsMax: r1(Math.max(...rtts)),
      lostFramesPct: packets + lost > 0 ? Number(((100 * lost) / (packets + lost)).toFixed(3)) : null,
      packetsReceived: packets,
      packetsSentBySipp: packetsPerCall * calls,
      latePackets: late,
      finalsExpected: calls * utterances,
      finalsReceived,
      finalsMatched,
      callsWithAllFinals: callsAllFinals,
      otherFinals,
      finalLagP50Ms: r1(pct(lags, 0.5)),
      finalLagP95Ms: r1(pct(lags, 0.95)),
      finalLagMaxMs: r1(Math.max(...lags)),
      streamOffsetP50Ms: r1(pct(offsets, 0.5)),
      leftoverSessions,
      engine: engineStats
        ? {
            completed: engineStats.completed,
            failed: engineStats.failed,
            droppedFinals: engineStats.droppedFinals,
            finalsOverCapacity: engineStats.finalsOverCapacity,
            droppedPartials: engineStats.droppedPartials,
            timeouts: engineStats.timeouts,
            restarts: engineStats.restarts,
            latencyP95Ms: r1(engineStats.latencyP95Ms),
          }
        : null,
      gatewayErrors: errorLines.length,
      whisper: { poolSize, threads, queueSize: config.asr.queueSize, model: 'tiny (random weights)' },
      partials: values.partials,
      seconds,
      utterancesPerCall: utterances,
      cpuPct: cpuAll,
      machineBusyPct,
      eventLoopDelayP99Ms: loopP99,
      drainS: r1((allEndedAt - loadStart) / 1000 - seconds),
      wallS: 0,
    };
    await gw.close();
    gateway = undefined;
    report.wallS = r1((performance.now() - t0) / 1000);
    if (values.keep) log(`kept ${dir}`);
    console.log(JSON.stringify(report));
  } finally {
    await gateway?.close().catch(() => undefined);
    for (const c of children.reverse()) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        await Promise.race([new Promise((r) => c.once('exit', r)), sleep(3000, undefined, { ref: false })]);
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }
    }
    await rtpe?.stop();
    ports?.release();
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}
