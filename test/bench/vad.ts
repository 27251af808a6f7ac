/**
 * `npm run bench -- vad [--seconds 16] [--parties 512] [--single-parties 32] [--realtime-seconds 5]`:
 * how many call parties one core keeps up with through Silero VAD + the segmenter, batched (one
 * inference per tick for all parties) against single (one inference per party per window).
 *
 * Method. Every party gets the same telephony speech (espeak-ng sentences with pauses, made at
 * 8 kHz and brought to 16 kHz), each starting at a different offset so a batch mixes speech and
 * silence. The audio is fed as 20 ms frames, one second of it for every party, then `drain()`
 * scores everything buffered; repeated for `--seconds`. The cost is the process's CPU time
 * (`process.cpuUsage`, all threads: onnxruntime's, GC's, the kernel's) over the feed, so frame
 * handling, the segmenter and the inference all count. onnxruntime runs with one intra-op and one
 * inter-op thread, so this is one core's work; the bench prints CPU/wall to show it (≈ 1).
 *
 *   cpu per party-second = CPU seconds / (parties × audio seconds)
 *   partiesPerCore       = floor(1 / cpu per party-second)
 *
 * "Single" is the same code path with `maxBatch: 1`, so each window is its own inference; its cost
 * per party does not depend on the party count, so fewer parties measure it.
 *
 * A real-time check then runs 90 % of the batched figure for `--realtime-seconds` on the wall
 * clock: frames pushed on a 20 ms timer, the `start()` loop ticking every 32 ms; it passes when no
 * window was dropped and the backlog stays within a few windows.
 */
import { parseArgs } from 'node:util';
import { TEST_VAD_CONFIG } from '../support/vad-config.js';
import type { VadConfig } from '../../src/config/schema.js';
import { BatchedVad } from '../../src/vad/batched-vad.js';
import { SpeechSegmenter } from '../../src/vad/segmenter.js';
import { speechFixture } from '../support/speech.js';

const FRAME = 320;
const FRAMES_PER_SECOND = 50;

const CONFIG: VadConfig = TEST_VAD_CONFIG;

interface Measure {
  parties: number;
  audioSeconds: number;
  cpuSeconds: number;
  wallSeconds: number;
  windows: number;
  runs: number;
  utterances: number;
  inferenceMs: number;
}

/** Feeds `seconds` of `audio` to `parties` parties (offset per party) and drains after each second. */
async function measure(audio: Int16Array, parties: number, seconds: number, maxBatch: number): Promise<Measure> {
  const vad = await BatchedVad.create({ ...CONFIG, maxBatch });
  let utterances = 0;
  const streams = Array.from({ length: parties }, (_, i) => {
    const party = `p${i}`;
    const seg = new SpeechSegmenter(party, CONFIG, () => utterances++);
    // Spread the parties over the recording (a prime stride in frames).
    const offsetFrames = (i * 97) % Math.floor(audio.length / FRAME);
    return { party, seg, stream: vad.open(party, (w) => seg.push(w)), offsetFrames };
  });
  const framesInAudio = Math.floor(audio.length / FRAME);
  // Warm-up: a second of audio, not measured (first runs of each batch size allocate).
  for (const mode of ['warm', 'measure'] as const) {
    const secs = mode === 'warm' ? 1 : seconds;
    const base = mode === 'warm' ? 0 : FRAMES_PER_SECOND;
    const statsBefore = vad.stats;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let s = 0; s < secs; s++) {
      for (let f = 0; f < FRAMES_PER_SECOND; f++) {
        const frame = base + s * FRAMES_PER_SECOND + f;
        for (const p of streams) {
          const at = ((p.offsetFrames + frame) % framesInAudio) * FRAME;
          p.stream.push({ party: p.party, startMs: frame * 20, samples: audio.subarray(at, at + FRAME) });
        }
      }
      await vad.drain();
    }
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (mode === 'measure') {
      const st = vad.stats;
      for (const p of streams) p.seg.flush();
      await vad.close();
      return {
        parties,
        audioSeconds: secs,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        wallSeconds: wall,
        windows: st.windows - statsBefore.windows,
        runs: st.runs - statsBefore.runs,
        utterances,
        inferenceMs: st.inferenceMs - statsBefore.inferenceMs,
      };
    }
  }
  throw new Error('unreachable');
}

function perCore(m: Measure): { partiesPerCore: number; usPerPartyWindow: number; cpuPerPartySecond: number } {
  const cpuPerPartySecond = m.cpuSeconds / (m.parties * m.audioSeconds);
  return {
    partiesPerCore: Math.floor(1 / cpuPerPartySecond),
    usPerPartyWindow: (m.cpuSeconds * 1e6) / m.windows,
    cpuPerPartySecond,
  };
}

/** Wall-clock run: frames pushed as they fall due, the VAD's own real-time loop scoring them. */
async function realtime(audio: Int16Array, parties: number, seconds: number) {
  const vad = await BatchedVad.create(CONFIG);
  const framesInAudio = Math.floor(audio.length / FRAME);
  const streams = Array.from({ length: parties }, (_, i) => {
    const party = `rt${i}`;
    const seg = new SpeechSegmenter(party, CONFIG, () => {});
    return { party, stream: vad.open(party, (w) => seg.push(w)), offsetFrames: (i * 97) % framesInAudio };
  });
  let maxPending = 0;
  let sent = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  vad.start(32, (err) => console.error('vad error', err));
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(Math.floor((performance.now() - t0) / 20), seconds * FRAMES_PER_SECOND);
      for (; sent < due; sent++) {
        for (const p of streams) {
          const at = ((p.offsetFrames + sent) % framesInAudio) * FRAME;
          p.stream.push({ party: p.party, startMs: sent * 20, samples: audio.subarray(at, at + FRAME) });
        }
      }
      for (const p of streams) maxPending = Math.max(maxPending, p.stream.pendingWindows);
      if (sent >= seconds * FRAMES_PER_SECOND) {
        clearInterval(timer);
        resolve();
      }
    }, 20);
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  vad.stop();
  const st = vad.stats;
  await vad.close();
  const cpuPct = ((cpu.user + cpu.system) / 1e6 / wall) * 100;
  return {
    parties,
    seconds,
    cpuPct: Math.round(cpuPct),
    maxPendingWindows: maxPending,
    droppedWindows: st.droppedWindows,
    meanBatch: Math.round(st.meanBatch),
    maxRunMs: Math.round(st.maxRunMs * 10) / 10,
    keptUp: st.droppedWindows === 0 && maxPending <= 4,
  };
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: 'string', default: '16' },
      parties: { type: 'string', default: '512' },
      'single-parties': { type: 'string', default: '32' },
      'realtime-seconds': { type: 'string', default: '5' },
    },
  });
  const seconds = Number(values.seconds);
  const parties = Number(values.parties);
  const singleParties = Number(values['single-parties']);
  const realtimeSeconds = Number(values['realtime-seconds']);

  console.log('vad bench: generating telephony speech with espeak-ng (cached after the first run)');
  const fx = await speechFixture({
    sentences: [
      'Hello, thank you for calling. How can I help you today?',
      'I would like to change the address on my account.',
      'Sure. Can you confirm your date of birth, please?',
      'It is the fourth of July, nineteen eighty two.',
      'Thanks. One moment while I look that up.',
    ],
    gapsMs: [1200, 2500, 900, 3000],
    sampleRate: 8000,
    leadMs: 1500,
    tailMs: 2500,
  });
  const audio = fx.samples16k;
  const speechMs = fx.sentences.reduce((n, s) => n + s.endMs - s.startMs, 0);
  console.log(`audio: ${(audio.length / 16000).toFixed(1)} s per loop, ${Math.round((speechMs / (audio.length / 16)) * 100)} % speech`);

  console.log(`batched: ${parties} parties, ${seconds} s of audio each, maxBatch ${CONFIG.maxBatch}`);
  const batched = await measure(audio, parties, seconds, CONFIG.maxBatch);
  const b = perCore(batched);
  console.log(
    `batched: cpu ${batched.cpuSeconds.toFixed(2)} s, wall ${batched.wallSeconds.toFixed(2)} s (cpu/wall ${(batched.cpuSeconds / batched.wallSeconds).toFixed(2)}), ` +
      `${batched.windows} windows in ${batched.runs} runs (mean batch ${(batched.windows / batched.runs).toFixed(0)}), ` +
      `${b.usPerPartyWindow.toFixed(1)} µs/party-window (inference ${((batched.inferenceMs * 1000) / batched.windows).toFixed(1)}), ` +
      `${batched.utterances} utterances → ${b.partiesPerCore} parties/core`,
  );

  console.log(`single: ${singleParties} parties, ${seconds} s of audio each, maxBatch 1`);
  const single = await measure(audio, singleParties, seconds, 1);
  const s = perCore(single);
  console.log(
    `single: cpu ${single.cpuSeconds.toFixed(2)} s, wall ${single.wallSeconds.toFixed(2)} s (cpu/wall ${(single.cpuSeconds / single.wallSeconds).toFixed(2)}), ` +
      `${single.windows} windows, ${s.usPerPartyWindow.toFixed(1)} µs/party-window (inference ${((single.inferenceMs * 1000) / single.windows).toFixed(1)}) → ${s.partiesPerCore} parties/core`,
  );

  const rtParties = Math.max(1, Math.floor(b.partiesPerCore * 0.9));
  console.log(`real-time check: ${rtParties} parties for ${realtimeSeconds} s of wall clock`);
  const rt = await realtime(audio, rtParties, realtimeSeconds);
  console.log(
    `real-time: cpu ${rt.cpuPct} %, mean batch ${rt.meanBatch}, slowest run ${rt.maxRunMs} ms, max backlog ${rt.maxPendingWindows} windows, dropped ${rt.droppedWindows} → ${rt.keptUp ? 'kept up' : 'FELL BEHIND'}`,
  );

  console.log(
    JSON.stringify({
      partiesPerCoreBatched: b.partiesPerCore,
      partiesPerCoreSingle: s.partiesPerCore,
      speedup: Math.round((s.cpuPerPartySecond / b.cpuPerPartySecond) * 100) / 100,
      batchSize: Math.round(batched.windows / batched.runs),
      usPerPartyWindowBatched: Math.round(b.usPerPartyWindow * 10) / 10,
      usPerPartyWindowSingle: Math.round(s.usPerPartyWindow * 10) / 10,
      cpuPerWallBatched: Math.round((batched.cpuSeconds / batched.wallSeconds) * 100) / 100,
      audioSeconds: seconds,
      parties,
      realtime: rt,
    }),
  );
}
