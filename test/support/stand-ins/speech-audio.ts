/**
 * Real speech for the TTS stand-in servers: espeak-ng speaks the requested text, sox converts the
 * rate, lame (or ffmpeg) encodes mp3. The stand-ins then send it in each protocol's own framing,
 * so a provider under test decodes audio a real server could have sent, not a synthetic tone.
 */
import { spawn, spawnSync } from 'node:child_process';

/** Runs `cmd` with `input` on stdin and returns its stdout; rejects on a non-zero exit. */
function pipe(cmd: string, args: readonly string[], input: Buffer | string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${cmd} exited with ${code}: ${err.trim()}`))));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

export interface SpeakOptions {
  /** An espeak-ng voice (default `en`). */
  readonly voice?: string;
  readonly ssml?: boolean;
  /** espeak-ng words per minute (default 175). */
  readonly wordsPerMinute?: number;
}

/** espeak-ng's WAV for `text` (22 050 Hz mono s16, its streamed header). */
export function espeakWav(text: string, options: SpeakOptions = {}): Promise<Buffer> {
  const args = ['--stdout', '-v', options.voice ?? 'en', '-s', String(Math.round(options.wordsPerMinute ?? 175)), ...(options.ssml ? ['-m'] : [])];
  return pipe('espeak-ng', args, text);
}

/** `text` spoken as raw s16 mono PCM at `rate`, little-endian unless `big` (sox converts). */
export async function speakPcm(text: string, rate: number, options: SpeakOptions & { readonly big?: boolean } = {}): Promise<Buffer> {
  const wav = await espeakWav(text, options);
  return pipe('sox', ['-t', 'wav', '-', '-t', 'raw', '-r', String(rate), '-e', 'signed-integer', '-b', '16', '-c', '1', options.big ? '-B' : '-L', '-'], wav);
}

export type WavDataSize = 'streamed' | 'zero' | 'exact';

/**
 * A WAV file around `pcm` (s16le mono) as servers write them: `streamed` puts 0xFFFFFFFF in the
 * RIFF and data sizes (what a server that streams must do), `zero` puts 0 there, `exact` the real
 * sizes. A LIST chunk precedes `data` (ffmpeg writes one), and `trailer` appends a chunk after the
 * data that must not be played.
 */
export function wavFile(pcm: Buffer, rate: number, size: WavDataSize = 'streamed', trailer = false): Buffer {
  const list = Buffer.concat([Buffer.from('LIST'), u32(12), Buffer.from('INFOISFT'), u32(0)]);
  const fmt = Buffer.alloc(24);
  fmt.write('fmt ', 0, 'ascii');
  fmt.writeUInt32LE(16, 4);
  fmt.writeUInt16LE(1, 8); // PCM
  fmt.writeUInt16LE(1, 10); // mono
  fmt.writeUInt32LE(rate, 12);
  fmt.writeUInt32LE(rate * 2, 16);
  fmt.writeUInt16LE(2, 20);
  fmt.writeUInt16LE(16, 22);
  const tail = trailer ? Buffer.concat([Buffer.from('junk'), u32(8), Buffer.from([0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f])]) : Buffer.alloc(0);
  const dataSize = size === 'streamed' ? 0xffffffff : size === 'zero' ? 0 : pcm.length;
  const riffSize = size === 'streamed' ? 0xffffffff : size === 'zero' ? 0 : 4 + fmt.length + list.length + 8 + pcm.length + tail.length;
  return Buffer.concat([Buffer.from('RIFF'), u32(riffSize), Buffer.from('WAVE'), fmt, list, Buffer.from('data'), u32(dataSize), pcm, tail]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** The mp3 encoder on this machine (lame or ffmpeg), if any: .ci/setup installs neither. */
export const mp3Encoder: 'lame' | 'ffmpeg' | undefined = has('lame') ? 'lame' : has('ffmpeg') ? 'ffmpeg' : undefined;

/** `wav` encoded as mp3 by the encoder found here. */
export function mp3Of(wav: Buffer): Promise<Buffer> {
  if (mp3Encoder === 'lame') return pipe('lame', ['--quiet', '-m', 'm', '-b', '64', '-', '-'], wav);
  if (mp3Encoder === 'ffmpeg') return pipe('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'wav', '-i', 'pipe:0', '-ac', '1', '-b:a', '64k', '-f', 'mp3', 'pipe:1'], wav);
  throw new Error('no mp3 encoder (lame or ffmpeg) on this machine');
}
