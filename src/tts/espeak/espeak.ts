/**
 * espeak-ng as a synthesis provider: the embedded default (a Debian package, no model download),
 * so a fresh gateway can speak. Each request is one `espeak-ng --stdout` process reading the text
 * on stdin (never from its command line); its WAV stream is parsed as it comes, so the first
 * audio is out within milliseconds. SSML with `-m`.
 */
import { spawn } from 'node:child_process';
import { spawnBoundToParent } from '../../child-process.js';
import { WhisperlineError } from '../../errors.js';
import type { SynthesisRequest, SynthesizedAudio, Synthesizer, SynthesizerCapabilities } from '../synthesizer.js';

export interface EspeakOptions {
  /** The espeak-ng executable (default `espeak-ng` on PATH). */
  readonly binary?: string;
  /** Words per minute (espeak-ng's `-s`; default 160). */
  readonly wordsPerMinute?: number;
  /** The voice when a request names neither voice nor language (default `en`). */
  readonly defaultVoice?: string;
}

/** The longest text one request takes. */
const MAX_TEXT_CHARS = 20_000;
const WAV_HEADER_BYTES = 44;
/** Audio handed out per chunk at most (bytes of PCM): about 90 ms at 22 050 Hz. */
const MAX_CHUNK_BYTES = 4096;

export class EspeakSynthesizer implements Synthesizer {
  readonly name = 'espeak-ng';
  readonly capabilities: SynthesizerCapabilities = { streaming: true, ssml: true };
  private voices: Promise<ReadonlySet<string>> | undefined;

  constructor(private readonly options: EspeakOptions = {}) {}

  async supports(language: string): Promise<boolean> {
    return (await this.knownVoices()).has(language.toLowerCase());
  }

  synthesize(request: SynthesisRequest): AsyncIterable<SynthesizedAudio> {
    return { [Symbol.asyncIterator]: () => this.run(request)[Symbol.asyncIterator]() };
  }

  private async *run(request: SynthesisRequest): AsyncGenerator<SynthesizedAudio> {
    const text = request.text;
    if (text.trim() === '') throw new WhisperlineError('TTS_INVALID', 'nothing to say: the text is empty');
    if (text.length > MAX_TEXT_CHARS) throw new WhisperlineError('TTS_INVALID', `text of ${text.length} characters is longer than ${MAX_TEXT_CHARS}`);
    const voice = request.voice ?? request.language ?? this.options.defaultVoice ?? 'en';
    if (!/^[A-Za-z0-9_+-]{1,64}$/.test(voice) || !(await this.knownVoices()).has(voice.toLowerCase())) {
      throw new WhisperlineError('TTS_INVALID', `espeak-ng has no voice "${voice.slice(0, 64)}"`);
    }
    if (request.signal?.aborted) throw new WhisperlineError('TTS_ABORTED', 'synthesis aborted');
    const args = ['--stdout', '-v', voice, '-s', String(this.options.wordsPerMinute ?? 160), ...(request.ssml ? ['-m'] : [])];
    // Bound to the gateway: a long text is not spoken on after the gateway died.
    const child = spawnBoundToParent(this.options.binary ?? 'espeak-ng', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
      child.once('error', (error) => resolve({ code: null, error }));
      child.once('close', (code) => resolve({ code }));
    });
    const onAbort = (): void => void child.kill('SIGKILL');
    request.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdin!.on('error', () => undefined); // a voice error closes stdin early; the exit code says why
    child.stdin!.end(text);
    try {
      let header: Buffer | undefined = Buffer.alloc(0);
      let sampleRate = 0;
      let carry: Buffer = Buffer.alloc(0);
      for await (const data of child.stdout! as AsyncIterable<Buffer>) {
        let bytes = data;
        if (header !== undefined) {
          header = Buffer.concat([header, bytes]);
          if (header.length < WAV_HEADER_BYTES) continue;
          sampleRate = wavRate(header);
          bytes = header.subarray(WAV_HEADER_BYTES);
          header = undefined;
        }
        bytes = carry.length > 0 ? Buffer.concat([carry, bytes]) : bytes;
        for (let at = 0; at + 1 < bytes.length; at += MAX_CHUNK_BYTES) {
          const end = Math.min(bytes.length - ((bytes.length - at) % 2), at + MAX_CHUNK_BYTES);
          if (end <= at) break;
          yield { samples: le16(bytes.subarray(at, end)), sampleRate };
        }
        carry = bytes.length % 2 === 1 ? Buffer.from(bytes.subarray(bytes.length - 1)) : Buffer.alloc(0);
      }
      const { code, error } = await exited;
      if (request.signal?.aborted) throw new WhisperlineError('TTS_ABORTED', 'synthesis aborted');
      if (error) throw new WhisperlineError('TTS_FAILED', `espeak-ng could not run: ${error.message}`, { cause: error });
      if (code !== 0) throw new WhisperlineError('TTS_FAILED', `espeak-ng exited with ${code}: ${stderr.trim() || 'no message'}`);
      if (header !== undefined) throw new WhisperlineError('TTS_FAILED', 'espeak-ng produced no audio');
    } finally {
      request.signal?.removeEventListener('abort', onAbort);
      // Ended early (the consumer stopped iterating, an error): the process goes with it.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }

  /** espeak-ng's voices and languages, read once (`espeak-ng --voices`). */
  private knownVoices(): Promise<ReadonlySet<string>> {
    return (this.voices ??= new Promise((resolve, reject) => {
      const child = spawn(this.options.binary ?? 'espeak-ng', ['--voices'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.once('error', (err) => {
        this.voices = undefined;
        reject(new WhisperlineError('TTS_FAILED', `espeak-ng could not run: ${err.message}`, { cause: err }));
      });
      child.once('close', () => {
        const names = new Set<string>();
        for (const line of out.split('\n').slice(1)) {
          // Pty Language Age/Gender VoiceName File Other-languages
          const cols = line.trim().split(/\s+/);
          if (cols.length < 5) continue;
          names.add(cols[1]!.toLowerCase());
          names.add(cols[3]!.toLowerCase());
          // A base language of a regional voice (en-us → en) is spoken too.
          names.add(cols[1]!.toLowerCase().split('-')[0]!);
        }
        resolve(names);
      });
    }));
  }
}

/** The sample rate of a 44-byte canonical WAV header (what espeak-ng writes), checked. */
function wavRate(header: Buffer): number {
  const ok = header.toString('ascii', 0, 4) === 'RIFF' && header.toString('ascii', 8, 12) === 'WAVE' && header.readUInt16LE(20) === 1 && header.readUInt16LE(22) === 1 && header.readUInt16LE(34) === 16;
  if (!ok) throw new WhisperlineError('TTS_FAILED', 'espeak-ng wrote something other than 16-bit mono PCM WAV');
  return header.readUInt32LE(24);
}

function le16(bytes: Buffer): Int16Array {
  const out = new Int16Array(bytes.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readInt16LE(i * 2);
  return out;
}
