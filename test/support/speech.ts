/**
 * Spoken test audio made on the spot with espeak-ng and sox (no binary fixtures in the repository).
 *
 * Each sentence is synthesised once (espeak-ng, 22.05 kHz), its leading and trailing silence trimmed
 * with sox so its true start and end are known, then resampled by sox (undithered: deterministic) to
 * the asked rate and cached
 * as raw s16le under the OS temp dir, keyed by text, voice and rate. Sentences are joined with
 * silences of known length. 8 kHz audio (telephony) is brought up to 16 kHz with the gateway's own
 * {@link Resampler}, its group delay removed so the reported boundaries stay exact.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { encodeUlawBuffer } from '../../src/audio/g711.js';
import { Resampler } from '../../src/audio/resampler.js';

const run = promisify(execFile);

export interface SpeechFixtureOptions {
  readonly sentences: readonly string[];
  /** Silence between consecutive sentences (ms): one entry per pair, `sentences.length − 1`. */
  readonly gapsMs: readonly number[];
  /** Rate the speech is made at before it becomes 16 kHz (8000: telephony band, like a PCMU leg). */
  readonly sampleRate: 8000 | 16000;
  /** Silence before the first sentence (ms). */
  readonly leadMs: number;
  /** Silence after the last sentence (ms). */
  readonly tailMs: number;
  /** espeak-ng voice (default `en`). */
  readonly voice?: string;
}

export interface SpeechFixture {
  /** The whole signal at 16 kHz. */
  readonly samples16k: Int16Array;
  /** Where each sentence's speech really starts and ends in `samples16k` (ms). */
  readonly sentences: readonly { readonly text: string; readonly startMs: number; readonly endMs: number }[];
}

/** Where synthesised sentences are cached between runs (safe to delete). */
export const SPEECH_CACHE_DIR = path.join(tmpdir(), 'whisperline-speech-cache');

/** One sentence, trimmed, at `rate` (mono s16). Cached; concurrent callers may race harmlessly. */
export async function synthesize(text: string, rate: number, voice = 'en'): Promise<Int16Array> {
  const key = createHash('sha256').update(`v2|${voice}|${rate}|${text}`).digest('hex').slice(0, 24);
  const file = path.join(SPEECH_CACHE_DIR, `${key}.s16`);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch {
    await mkdir(SPEECH_CACHE_DIR, { recursive: true });
    const unique = `${key}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    const wav = path.join(SPEECH_CACHE_DIR, `${unique}.wav`);
    const raw = path.join(SPEECH_CACHE_DIR, `${unique}.raw`);
    try {
      await run('espeak-ng', ['-w', wav, '-v', voice, text]);
      // Trim silence at both ends (threshold 1 %, 20 ms), then resample (very high quality).
      // -D: no dither, so the output (and every test on it) is the same on every machine and run.
      await run('sox', [
        '-D',
        wav, '-t', 'raw', '-e', 'signed-integer', '-b', '16', '-c', '1', '-L', raw,
        'silence', '1', '0.02', '1%', 'reverse', 'silence', '1', '0.02', '1%', 'reverse',
        'rate', '-v', String(rate),
      ]);
      bytes = await readFile(raw);
      await writeFile(`${raw}.done`, bytes);
      await rename(`${raw}.done`, file);
    } finally {
      await rm(wav, { force: true });
      await rm(raw, { force: true });
    }
  }
  const out = new Int16Array(bytes.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readInt16LE(i * 2);
  if (out.length === 0) throw new Error(`espeak-ng produced no audio for ${JSON.stringify(text)}`);
  return out;
}

/** Sentences joined by known silences, as 16 kHz audio with each sentence's true boundaries. */
export async function speechFixture(opts: SpeechFixtureOptions): Promise<SpeechFixture> {
  const { sentences, gapsMs, sampleRate, leadMs, tailMs } = opts;
  if (sentences.length === 0) throw new RangeError('speechFixture needs at least one sentence');
  if (gapsMs.length !== sentences.length - 1) {
    throw new RangeError(`speechFixture: ${sentences.length} sentences need ${sentences.length - 1} gaps, got ${gapsMs.length}`);
  }
  const clips = await Promise.all(sentences.map((s) => synthesize(s, sampleRate, opts.voice)));
  const perMs = sampleRate / 1000;
  const silence = (ms: number) => Math.round(ms * perMs);
  const total =
    silence(leadMs) + clips.reduce((n, c) => n + c.length, 0) + gapsMs.reduce((n, g) => n + silence(g), 0) + silence(tailMs);
  const joined = new Int16Array(total);
  const marks: { text: string; startMs: number; endMs: number }[] = [];
  let at = silence(leadMs);
  clips.forEach((clip, i) => {
    joined.set(clip, at);
    marks.push({ text: sentences[i]!, startMs: at / perMs, endMs: (at + clip.length) / perMs });
    at += clip.length + (i < gapsMs.length ? silence(gapsMs[i]!) : 0);
  });

  if (sampleRate === 16000) return { samples16k: joined, sentences: marks };
  // Up to 16 kHz as the gateway does; drop the filter's group delay so times line up.
  const resampler = new Resampler(sampleRate, 16000);
  const delay = resampler.delaySamples;
  const padIn = Math.ceil(delay / 2) + 1;
  const padded = new Int16Array(joined.length + padIn);
  padded.set(joined);
  const up = resampler.process(padded);
  return { samples16k: up.slice(delay, delay + joined.length * 2), sentences: marks };
}

/** A sentence as a phone sends it: 20 ms µ-law payloads (200 ms lead, 1.2 s of trailing silence). */
export async function speechPcmuPackets(sentence = 'I would like to check my balance.'): Promise<Uint8Array[]> {
  const speech = await speechFixture({ sentences: [sentence], gapsMs: [], sampleRate: 8000, leadMs: 200, tailMs: 1200 });
  const pcm8k = new Resampler(16000, 8000).process(speech.samples16k);
  const packets: Uint8Array[] = [];
  for (let i = 0; i + 160 <= pcm8k.length; i += 160) packets.push(encodeUlawBuffer(pcm8k.subarray(i, i + 160)));
  return packets;
}

/** Sample-exact slice of 16 kHz audio by time (ms). */
export function sliceMs(samples16k: Int16Array, startMs: number, endMs: number): Int16Array {
  return samples16k.subarray(Math.max(0, Math.round(startMs * 16)), Math.min(samples16k.length, Math.round(endMs * 16)));
}

/**
 * Non-speech that a call carries (hold, ringback, line noise), at 16 kHz: what a VAD must ignore.
 * Deterministic, so a test sees the same signal on every run.
 */

/** A tone switched on and off (e.g. 425 Hz, 1 s on / 4 s off, the European ringback), 10 ms ramps. */
export function cadenceTone(freqHz: number, onMs: number, offMs: number, durationMs: number, amplitude = 0.3): Int16Array {
  const out = new Int16Array(Math.round(durationMs * 16));
  const period = (onMs + offMs) * 16;
  const on = onMs * 16;
  const ramp = 160;
  const w = (2 * Math.PI * freqHz) / 16000;
  for (let i = 0; i < out.length; i++) {
    const t = i % period;
    if (t >= on) continue;
    const env = Math.min(1, t / ramp, (on - t) / ramp);
    out[i] = Math.round(amplitude * 32767 * env * Math.sin(w * i));
  }
  return out;
}

/** Hold music of sorts: a cycle of triads (with a second harmonic), one chord per `chordMs`. */
export function chordSequence(durationMs: number, chordMs = 500, amplitude = 0.3): Int16Array {
  const chords = [
    [261.63, 329.63, 392.0],
    [220.0, 261.63, 329.63],
    [174.61, 220.0, 261.63],
    [196.0, 246.94, 293.66],
  ];
  const out = new Int16Array(Math.round(durationMs * 16));
  const per = chordMs * 16;
  const scale = (amplitude * 32767) / (3 * 1.3);
  for (let i = 0; i < out.length; i++) {
    const chord = chords[Math.floor(i / per) % chords.length]!;
    const t = i / 16000;
    let v = 0;
    for (const f of chord) v += Math.sin(2 * Math.PI * f * t) + 0.3 * Math.sin(4 * Math.PI * f * t);
    const k = i % per;
    const env = Math.min(1, k / 400, (per - k) / 400);
    out[i] = Math.round(v * env * scale);
  }
  return out;
}

/** White noise at `rmsDbfs` (mean-square level re full scale, e.g. −30), from a fixed seed. */
export function whiteNoise(durationMs: number, rmsDbfs: number, seed = 1): Int16Array {
  const out = new Int16Array(Math.round(durationMs * 16));
  // Uniform on ±a has RMS a/√3.
  const a = Math.pow(10, rmsDbfs / 20) * 32767 * Math.sqrt(3);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.round((s / 4294967296 - 0.5) * 2 * a);
  }
  return out;
}
