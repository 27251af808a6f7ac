/**
 * `npm run bench -- asr [--utterances N] [--threads N] [--audio-context auto|N]`: the Whisper
 * engine (long-lived whisper-server, model loaded once, encoder window sized to each utterance)
 * against one whisper.cpp process per utterance (what nodejs-whisper's `nodewhisper()` does, on
 * whisper's full 30 s window, which it cannot change), on a random-weight model with whisper
 * `base`'s dimensions (so the compute cost of base), same binary build, threads and decoding
 * options. The same per-file path given the engine's window too is reported as `ratioSameWindow`:
 * that is the gain of keeping the process alone.
 *
 * The one-process-per-file side spawns the `whisper-cli` that `nodewhisper()` would run, built
 * from the same bundled source, instead of calling `nodewhisper()` itself: that function only
 * finds whisper-cli inside node_modules (building a second copy there), passes neither a thread
 * count nor greedy/no-fallback flags, and changes the process's working directory.
 *
 * Decoding on both sides: greedy (beam 1, best-of 1), temperature 0 without fallback, 2 threads.
 * Max tokens cannot be passed to either (whisper-server 1.9.1 has no such request field,
 * whisper-cli no such flag); the random weights end each decode after a few tokens anyway.
 *
 * Last line: `{"utterances","engineMsPerUtterance","spawnMsPerUtterance","ratio","p95EndOfSpeechToFinalMs",
 * "spawnSameWindowMsPerUtterance","ratioSameWindow",...}`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { WhisperEngine, type WhisperEngineConfig } from '../../src/asr/whisper/engine.js';
import { BASE_DIMS, ensureRandomWhisperModel } from '../support/ggml-model.js';
import { audioContextFor } from '../../src/asr/whisper/whisper-server.js';
import { encodeWav } from '../../src/audio/wav.js';
import { DEFAULT_BUILD_DIR, ensureWhisperBinaries } from '../../src/asr/whisper/whisper-build.js';
import { modelFileName, speak, TEST_MODEL_DIR } from '../support/whisper.js';

const SENTENCES = [
  'Hello, I would like to check my order.',
  'My account number is four five six.',
  'Can you transfer me to billing please?',
  'The package arrived damaged yesterday afternoon.',
  'Yes, that is correct.',
  'I have been waiting for over twenty minutes and nobody has called me back.',
  'Could you spell your last name for me?',
  'Thank you, have a nice day.',
  'I want to cancel my subscription at the end of this month.',
  'What time does the store open tomorrow?',
  'Please send the invoice to my email address.',
  'No, I did not receive any confirmation.',
];

const log = (line: string): void => console.log(line);
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const percentile = (xs: readonly number[], p: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]! : Number.NaN;
};
const round = (x: number): number => Math.round(x * 10) / 10;

function runCli(binary: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    child.stderr.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString('utf8')).slice(-2000);
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`whisper-cli exited ${code}: ${tail}`))));
  });
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      utterances: { type: 'string', default: String(SENTENCES.length) },
      threads: { type: 'string', default: '2' },
      'audio-context': { type: 'string', default: 'auto' },
    },
  });
  const audioContext: 'auto' | number = values['audio-context'] === 'auto' ? 'auto' : Number(values['audio-context']);
  const count = Math.max(1, Math.min(SENTENCES.length, Number(values.utterances)));
  const threads = Math.max(1, Number(values.threads));

  log('asr bench: whisper-server build (cached after the first run)');
  const buildStart = performance.now();
  const bins = await ensureWhisperBinaries({ buildDir: process.env.WHISPERLINE_BUILD_DIR ?? DEFAULT_BUILD_DIR, cuda: false });
  log(`  binaries ready in ${((performance.now() - buildStart) / 1000).toFixed(1)} s: ${bins.server}`);
  const modelStart = performance.now();
  const model = await ensureRandomWhisperModel(join(TEST_MODEL_DIR, modelFileName('base', BASE_DIMS, 1)), BASE_DIMS, 1);
  log(`  base-sized random model (${(model.bytes / 1e6).toFixed(0)} MB) ready in ${((performance.now() - modelStart) / 1000).toFixed(1)} s`);

  const dir = mkdtempSync(join(tmpdir(), 'whisperline-bench-asr-'));
  try {
    const utterances = SENTENCES.slice(0, count).map((text, i) => {
      const samples = speak(text);
      const file = join(dir, `u${i}.wav`);
      writeFileSync(file, encodeWav(samples, 16000));
      return { samples, file, durationMs: (samples.length / 16000) * 1000 };
    });
    log(`  ${utterances.length} espeak-ng utterances, ${utterances.map((u) => (u.durationMs / 1000).toFixed(1)).join(' / ')} s`);

    const config: WhisperEngineConfig = {
      kind: 'local',
      modelPath: model.path,
      binary: bins.server,
      poolSize: 1,
      threads,
      cuda: false,
      buildDir: DEFAULT_BUILD_DIR,
      queueSize: 64,
      timeoutMs: 120_000,
      beamSize: 1,
      audioContext,
    };
    const startEngine = performance.now();
    const engine = await WhisperEngine.start(config, pino({ level: 'warn' }));
    log(`(a) WhisperEngine: poolSize 1, ${threads} threads, started (model loaded) in ${Math.round(performance.now() - startEngine)} ms`);
    const engineMs: number[] = [];
    const spawnMs: number[] = [];
    const spawnFullMs: number[] = [];
    const live: number[] = [];
    // The same decoding options for both paths, the encoder window (audio_ctx) included.
    const cliArgs = (u: (typeof utterances)[number], window: 'auto' | number = audioContext): string[] => [
      '-m', model.path, '-f', u.file, '-l', 'en', '-t', String(threads), '-nf', '-bs', '1', '-bo', '1',
      '-ac', String(audioContextFor(u.samples.length, window)),
    ];
    const viaEngine = async (u: (typeof utterances)[number]): Promise<number> => {
      const t0 = performance.now();
      await engine.recognize({ samples: u.samples, language: 'en', task: 'transcribe', priority: 'final' });
      return performance.now() - t0;
    };
    const viaSpawn = async (u: (typeof utterances)[number]): Promise<number> => {
      const t0 = performance.now();
      await runCli(bins.cli, cliArgs(u));
      return performance.now() - t0;
    };
    try {
      log(`(b) one whisper-cli process per utterance, same model, ${threads} threads, -nf -bs 1 -bo 1, given the engine's window (audio_ctx ${audioContext}): the process-reuse gain alone`);
      log('(a) and (b) alternate per utterance, so background load on the machine hits both alike');
      await viaEngine(utterances[0]!); // warm-up: first inference allocates buffers
      await viaSpawn(utterances[0]!); // warm-up: page cache
      for (const [i, u] of utterances.entries()) {
        if (i % 2 === 0) {
          engineMs.push(await viaEngine(u));
          spawnMs.push(await viaSpawn(u));
        } else {
          spawnMs.push(await viaSpawn(u));
          engineMs.push(await viaEngine(u));
        }
        log(`  ${i + 1}/${utterances.length}: engine ${Math.round(engineMs[i]!)} ms, spawn ${Math.round(spawnMs[i]!)} ms`);
      }

      // Live: utterances arrive as they are spoken (one speaker, 600 ms pauses); each final is sent at
      // its end of speech and timed until its result.
      log('(c) live feed through the engine: end of speech → final');
      const t0 = performance.now();
      let at = 0;
      const pending: Promise<void>[] = [];
      for (const [i, u] of utterances.entries()) {
        at += u.durationMs;
        const endOfSpeech = t0 + at;
        await sleep(Math.max(0, endOfSpeech - performance.now()));
        pending.push(
          engine.recognize({ samples: u.samples, language: 'en', task: 'transcribe', priority: 'final' }).then(() => {
            live[i] = performance.now() - endOfSpeech;
            log(`  live ${i + 1}/${utterances.length}: final ${Math.round(live[i]!)} ms after end of speech`);
          }),
        );
        at += 600;
      }
      await Promise.all(pending);

      // What nodewhisper() itself runs cannot set the encoder window: whisper-cli on the full 30 s
      // window: the per-file path the ratio is taken against.
      if (audioContext !== 0) {
        log('(d) one whisper-cli per utterance on the full 30 s window (what nodewhisper() runs)');
        for (const [i, u] of utterances.entries()) {
          const t1 = performance.now();
          await runCli(bins.cli, cliArgs(u, 0));
          spawnFullMs.push(performance.now() - t1);
          log(`  ${i + 1}/${utterances.length}: spawn, full window ${Math.round(spawnFullMs[i]!)} ms`);
        }
      }
    } finally {
      await engine.close();
    }

    const engineMean = mean(engineMs);
    // nodejs-whisper's path cannot size the encoder window: whisper-cli on the full 30 s window,
    // with the decoding options (greedy, no fallback, threads) matched to the engine's.
    const spawnMean = mean(spawnFullMs.length > 0 ? spawnFullMs : spawnMs);
    const sameWindowMean = mean(spawnMs);
    const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
    console.log(
      JSON.stringify({
        utterances: utterances.length,
        engineMsPerUtterance: round(engineMean),
        spawnMsPerUtterance: round(spawnMean),
        // Engine time as a share of one-process-per-file time: lower is better.
        ratio: ratio(engineMean, spawnMean),
        p95EndOfSpeechToFinalMs: round(percentile(live, 0.95)),
        // The process-reuse gain alone: whisper-cli given the engine's encoder window too.
        spawnSameWindowMsPerUtterance: round(sameWindowMean),
        ratioSameWindow: ratio(engineMean, sameWindowMean),
        audioContext,
        threads,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
