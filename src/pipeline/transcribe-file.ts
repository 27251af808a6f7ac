import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { FRAME_SAMPLES, SAMPLE_RATE } from '../audio/frame.js';
import { Resampler } from '../audio/resampler.js';
import { parseWav } from '../audio/wav.js';
import type { Logger } from '../log.js';
import type { CallEvent } from '../transcripts/events.js';
import type { PartyOptions } from './call-pipeline.js';
import type { SpeechRuntime, TranscriptOverrides } from './speech-runtime.js';

export interface TranscribeFileOptions {
  /** The speech side; its VAD is drained by hand (`realtime: false`), so files go faster than real time. */
  readonly speech: SpeechRuntime;
  readonly logger: Logger;
  readonly overrides?: TranscriptOverrides;
  readonly party?: PartyOptions;
  /** Names of the channels' parties; stereo call recordings are caller left, callee right. */
  readonly partyNames?: readonly string[];
  /** Sees each event of the file's call (also published through the runtime). */
  readonly onEvent?: (event: CallEvent) => void;
}

/** Audio handed to the VAD between drains; its per-party ring holds 2 s. */
const DRAIN_EVERY_FRAMES = 25;
/** Finals in flight before reading more of the file: the engine's queue is not a file buffer. */
const MAX_PENDING_FINALS = 4;

/**
 * Transcribes a recorded call (WAV: 16-bit PCM or G.711, mono or one party per stereo channel)
 * through the same transcript as live calls (`call.started` … `call.ended`, rule `file`), faster
 * than real time. Partials are off: nobody is watching a file being read.
 */
export async function transcribeFile(path: string, options: TranscribeFileOptions): Promise<void> {
  const wav = parseWav(await readFile(path));
  const names = options.partyNames ?? (wav.channels.length === 2 ? ['caller', 'callee'] : ['caller']);
  const partyNames = wav.channels.map((_, i) => names[i] ?? `channel${i + 1}`);
  const transcript = options.speech.openCall({
    callId: basename(path),
    rule: 'file',
    labels: [],
    overrides: { ...options.overrides, partials: false },
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    logger: options.logger,
  });
  transcript.start(partyNames.map((name) => ({ name })));
  const parties = partyNames.map((name) => transcript.addParty(name, { ...options.party, partials: false }));
  const channels16k = wav.channels.map((c) => (wav.sampleRate === SAMPLE_RATE ? c : new Resampler(wav.sampleRate, SAMPLE_RATE).process(c)));
  const frames = Math.ceil(Math.max(...channels16k.map((c) => c.length)) / FRAME_SAMPLES);
  const vad = options.speech.vad;
  for (let f = 0; f < frames; f++) {
    channels16k.forEach((pcm, i) => {
      const samples = new Int16Array(FRAME_SAMPLES);
      samples.set(pcm.subarray(f * FRAME_SAMPLES, (f + 1) * FRAME_SAMPLES));
      parties[i]!.push({ party: parties[i]!.party, startMs: f * 20, samples });
    });
    if ((f + 1) % DRAIN_EVERY_FRAMES === 0) {
      await vad.drain();
      while (parties.reduce((n, p) => n + p.pendingFinals, 0) > MAX_PENDING_FINALS) await new Promise((r) => setTimeout(r, 10));
    }
  }
  await transcript.end({ reason: 'completed', durationMs: frames * 20 });
}
