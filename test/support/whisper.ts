/**
 * The real whisper.cpp for tests: `whisper-server` built once from the source bundled in
 * nodejs-whisper (cached in `~/.cache/whisperline/whisper.cpp`, shared with CI set-up) and the
 * tiny random-weight model generated once into `~/.cache/whisperline/test-models`.
 *
 * `test/support/global-setup.ts` calls this once per run and hands the paths to the workers in
 * environment variables; a worker started without it (or a script) builds and generates them
 * itself, the build behind a lock so parallel workers never build twice.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureRandomWhisperModel, GENERATOR_VERSION, TINY_TEST_DIMS, type WhisperModelDims } from './ggml-model.js';
import { WhisperEngine } from '../../src/asr/whisper/engine.js';
import { DEFAULT_BUILD_DIR, ensureWhisperBinaries } from '../../src/asr/whisper/whisper-build.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { Logger } from '../../src/log.js';

export interface TestWhisper {
  /** whisper-server. */
  readonly binary: string;
  /** whisper-cli from the same build. */
  readonly cli: string;
  /** The tiny random-weight model (~8 MB, multilingual vocabulary). */
  readonly tinyModel: string;
}

export const ENV_BINARY = 'WHISPERLINE_TEST_WHISPER_SERVER';
export const ENV_CLI = 'WHISPERLINE_TEST_WHISPER_CLI';
export const ENV_TINY_MODEL = 'WHISPERLINE_TEST_TINY_MODEL';

export const TEST_MODEL_DIR = join(homedir(), '.cache', 'whisperline', 'test-models');

/** A cache file name that changes whenever the dimensions or the seed do. */
export function modelFileName(prefix: string, dims: WhisperModelDims, seed: number): string {
  const key = [dims.nVocab, dims.nAudioCtx, dims.nAudioState, dims.nAudioHead, dims.nAudioLayer, dims.nTextCtx, dims.nTextState, dims.nTextHead, dims.nTextLayer, dims.nMels, dims.ftype, seed].join('-');
  return `${prefix}-v${GENERATOR_VERSION}-${key}.bin`;
}

let pending: Promise<TestWhisper> | undefined;

export function ensureTestWhisper(): Promise<TestWhisper> {
  const binary = process.env[ENV_BINARY];
  const cli = process.env[ENV_CLI];
  const tinyModel = process.env[ENV_TINY_MODEL];
  if (binary && cli && tinyModel) return Promise.resolve({ binary, cli, tinyModel });
  pending ??= (async () => {
    const built = await ensureWhisperBinaries({ buildDir: process.env.WHISPERLINE_BUILD_DIR ?? DEFAULT_BUILD_DIR, cuda: false });
    const model = await ensureRandomWhisperModel(join(TEST_MODEL_DIR, modelFileName('tiny', TINY_TEST_DIMS, 1)), TINY_TEST_DIMS, 1);
    return { binary: built.server, cli: built.cli, tinyModel: model.path };
  })();
  return pending;
}

/**
 * The embedded defaults with every decoded utterance let through: the tiny model's random weights
 * give random no-speech probabilities, so the hallucination filters (tested on their own) would
 * drop finals at random.
 */
export function randomModelConfig(): Config {
  const config = loadConfig({ env: {} });
  config.transcripts.noSpeechThreshold = 1;
  config.transcripts.silencePhrases = [];
  return config;
}

/** whisper-server on the tiny random-weight model: one with 2 threads unless `pool` says otherwise. */
export async function startTinyEngine(config: Config, logger: Logger, pool: { poolSize: number; threads: number } = { poolSize: 1, threads: 2 }): Promise<WhisperEngine> {
  const whisper = await ensureTestWhisper();
  const { queueSize, timeoutMs, beamSize, audioContext } = config.asr;
  return WhisperEngine.start(
    { kind: 'local', queueSize, timeoutMs, beamSize, audioContext, ...pool, modelPath: whisper.tinyModel, binary: whisper.binary, buildDir: config.asr.local.buildDir, cuda: false },
    logger,
  );
}

/** Reads a 16-bit PCM WAV's samples (the data chunk, wherever it is). */
export function readWavSamples(path: string): { samples: Int16Array; sampleRate: number; channels: number } {
  const buf = readFileSync(path);
  let pos = 12;
  let sampleRate = 0;
  let channels = 0;
  while (pos + 8 <= buf.length) {
    const id = buf.toString('ascii', pos, pos + 4);
    const size = buf.readUInt32LE(pos + 4);
    if (id === 'fmt ') {
      channels = buf.readUInt16LE(pos + 10);
      sampleRate = buf.readUInt32LE(pos + 12);
    } else if (id === 'data') {
      const end = Math.min(buf.length, pos + 8 + size);
      const copy = Buffer.from(buf.subarray(pos + 8, end));
      return { samples: new Int16Array(copy.buffer, copy.byteOffset, copy.length >> 1), sampleRate, channels };
    }
    pos += 8 + size + (size & 1);
  }
  throw new Error(`no data chunk in ${path}`);
}

/**
 * `text` spoken by espeak-ng, as 16 kHz mono 16-bit samples (sox resamples). Throws when the tools
 * are missing.
 */
export function speak(text: string, options: { voice?: string; wordsPerMinute?: number } = {}): Int16Array {
  const dir = mkdtempSync(join(tmpdir(), 'whisperline-speech-'));
  try {
    const raw = join(dir, 'raw.wav');
    const out = join(dir, 'out16.wav');
    const espeak = spawnSync('espeak-ng', ['-v', options.voice ?? 'en', '-s', String(options.wordsPerMinute ?? 160), '-w', raw, text], { encoding: 'utf8' });
    if (espeak.status !== 0) throw new Error(`espeak-ng failed: ${espeak.stderr || espeak.error?.message}`);
    const sox = spawnSync('sox', [raw, '-r', '16000', '-c', '1', '-b', '16', out], { encoding: 'utf8' });
    if (sox.status !== 0) throw new Error(`sox failed: ${sox.stderr || sox.error?.message}`);
    return readWavSamples(out).samples;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
