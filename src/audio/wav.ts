import { WhisperlineError } from '../errors.js';
import { ALAW_TO_LINEAR, ULAW_TO_LINEAR } from './g711.js';

/** A decoded WAV file: one Int16Array per channel at the file's own rate. */
export interface WavAudio {
  readonly sampleRate: number;
  readonly channels: readonly Int16Array[];
}

const FORMAT_PCM = 1;
const FORMAT_ALAW = 6;
const FORMAT_ULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;

/**
 * Parses a RIFF/WAVE file as call recorders write them: 16-bit PCM, or G.711 µ-law / A-law
 * (formats 7 / 6), mono or stereo (one party per channel). Anything else is rejected with a
 * message naming what was found.
 */
export function parseWav(buf: Uint8Array): WavAudio {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const tag = (at: number): string => String.fromCharCode(buf[at]!, buf[at + 1]!, buf[at + 2]!, buf[at + 3]!);
  if (buf.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw invalid('not a RIFF/WAVE file');
  let format = -1;
  let channels = 0;
  let sampleRate = 0;
  let bits = 0;
  let data: Uint8Array | undefined;
  for (let at = 12; at + 8 <= buf.length; ) {
    const id = tag(at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > buf.length) throw invalid('truncated fmt chunk');
      format = view.getUint16(body, true);
      channels = view.getUint16(body + 2, true);
      sampleRate = view.getUint32(body + 4, true);
      bits = view.getUint16(body + 14, true);
      if (format === FORMAT_EXTENSIBLE && size >= 40) format = view.getUint16(body + 24, true);
    } else if (id === 'data') {
      // Recorders that never finalised the header leave size 0 or too large: take what is there.
      const end = size === 0 || body + size > buf.length ? buf.length : body + size;
      data = buf.subarray(body, end);
    }
    at = body + size + (size & 1);
  }
  if (format < 0) throw invalid('no fmt chunk');
  if (!data) throw invalid('no data chunk');
  if (channels < 1 || channels > 2) throw invalid(`${channels} channels (1 or 2 supported)`);
  if (sampleRate < 8000 || sampleRate > 192_000) throw invalid(`sample rate ${sampleRate}`);
  const frames = format === FORMAT_PCM && bits === 16 ? Math.floor(data.length / (2 * channels)) : Math.floor(data.length / channels);
  const out = Array.from({ length: channels }, () => new Int16Array(frames));
  if (format === FORMAT_PCM && bits === 16) {
    const pcm = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i < frames; i++) for (let c = 0; c < channels; c++) out[c]![i] = pcm.getInt16((i * channels + c) * 2, true);
  } else if ((format === FORMAT_ULAW || format === FORMAT_ALAW) && bits === 8) {
    const table = format === FORMAT_ULAW ? ULAW_TO_LINEAR : ALAW_TO_LINEAR;
    for (let i = 0; i < frames; i++) for (let c = 0; c < channels; c++) out[c]![i] = table[data[i * channels + c]!]!;
  } else {
    throw invalid(`format ${format} with ${bits} bits per sample (16-bit PCM, µ-law or A-law supported)`);
  }
  return { sampleRate, channels: out };
}

/**
 * A 16-bit PCM WAV file: mono from one array, or one channel per array (interleaved; shorter
 * channels are padded with silence).
 */
export function encodeWav(audio: Int16Array | readonly Int16Array[], sampleRate: number): Buffer {
  const channels = audio instanceof Int16Array ? [audio] : audio;
  const frames = Math.max(0, ...channels.map((c) => c.length));
  const data = frames * 2 * channels.length;
  const out = Buffer.alloc(44 + data);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + data, 4);
  out.write('WAVEfmt ', 8, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(FORMAT_PCM, 20);
  out.writeUInt16LE(channels.length, 22);
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * 2 * channels.length, 28);
  out.writeUInt16LE(2 * channels.length, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(data, 40);
  if (channels.length === 1 && ENDIAN_LITTLE) {
    // The common case (every request to whisper-server): one copy of the samples' bytes.
    Buffer.from(channels[0]!.buffer, channels[0]!.byteOffset, data).copy(out, 44);
    return out;
  }
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < channels.length; c++) out.writeInt16LE(channels[c]![i] ?? 0, 44 + (i * channels.length + c) * 2);
  }
  return out;
}

const ENDIAN_LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function invalid(what: string): WhisperlineError {
  return new WhisperlineError('AUDIO_INVALID', `unsupported WAV: ${what}`);
}
