import { SAMPLE_RATE, type AudioFrame } from './frame.js';
import { Framer } from './framer.js';
import { Resampler } from './resampler.js';

/**
 * PCM helpers: 16-bit little-endian byte order (the wire format of L16 streams), whole-clip
 * resampling, and raw PCM of any rate turned into the pipeline's 20 ms 16 kHz frames.
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** `samples` as little-endian bytes (a copy). */
export function pcmToLe(samples: Int16Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(samples.buffer.slice(samples.byteOffset, samples.byteOffset + samples.byteLength));
  const out = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i]!, i * 2);
  return out;
}

/** Little-endian L16 bytes as samples (an odd trailing byte is ignored). */
export function leToPcm(bytes: Uint8Array): Int16Array {
  const n = bytes.length >> 1;
  const out = new Int16Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
  for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true);
  return out;
}

/** A whole clip resampled, the filter's delay removed and its tail flushed: same duration out. */
export function resampleClip(pcm: Int16Array, from: number, to: number): Int16Array {
  if (from === to || pcm.length === 0) return pcm;
  const r = new Resampler(from, to);
  const body = r.process(pcm);
  const tail = r.process(new Int16Array(Math.ceil((r.delaySamples * from) / to) + 32));
  const all = new Int16Array(body.length + tail.length);
  all.set(body);
  all.set(tail, body.length);
  const want = Math.round((pcm.length * to) / from);
  return all.slice(r.delaySamples, r.delaySamples + want);
}

/**
 * Raw little-endian signed 16-bit PCM arriving in messages of any length: interleaved channels
 * (stereo = left, right, left, right...). A message may end inside a sample or between the
 * channels of one sample pair; those bytes are carried to the next message, so the split never
 * shifts or swaps the channels.
 */
export class PcmReader {
  private readonly frameBytes: number;
  private carry: Buffer = Buffer.alloc(0);

  constructor(readonly channels: number) {
    if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`bad channel count ${channels}`);
    this.frameBytes = 2 * channels;
  }

  /** Bytes of an incomplete sample (pair) held for the next message. */
  get pendingBytes(): number {
    return this.carry.length;
  }

  /** The whole samples of `chunk` (and what was carried), one array per channel. */
  read(chunk: Uint8Array): Int16Array[] {
    const data = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const frames = Math.floor(data.length / this.frameBytes);
    const used = frames * this.frameBytes;
    // Copy: the carried bytes must not alias the caller's buffer, which ws may reuse.
    this.carry = used < data.length ? Buffer.from(data.subarray(used)) : Buffer.alloc(0);
    const out: Int16Array[] = [];
    for (let c = 0; c < this.channels; c++) out.push(new Int16Array(frames));
    if (this.channels === 1) {
      const mono = out[0]!;
      for (let i = 0; i < frames; i++) mono[i] = data.readInt16LE(i * 2);
    } else {
      for (let i = 0; i < frames; i++) {
        const base = i * this.frameBytes;
        for (let c = 0; c < this.channels; c++) out[c]![i] = data.readInt16LE(base + 2 * c);
      }
    }
    return out;
  }
}

/**
 * One party's audio at its platform's rate → 16 kHz → 20 ms frames. The frame clock is the count of
 * samples received (not the wall clock): `startMs` of a frame is where it sits in the party's audio.
 */
export class PartyFeed {
  private readonly resampler: Resampler | undefined;
  private readonly framer: Framer;
  private inputSamples = 0;

  constructor(
    readonly party: string,
    readonly sampleRate: number,
    emit: (frame: AudioFrame) => void,
  ) {
    this.resampler = sampleRate === SAMPLE_RATE ? undefined : new Resampler(sampleRate, SAMPLE_RATE);
    this.framer = new Framer(party, 0, emit);
  }

  /** Audio received so far (ms at the input rate). */
  get receivedMs(): number {
    return (this.inputSamples * 1000) / this.sampleRate;
  }

  write(samples: Int16Array): void {
    if (samples.length === 0) return;
    this.inputSamples += samples.length;
    this.framer.write(this.resampler ? this.resampler.process(samples) : samples);
  }

  /** The party's audio ended: the last partial frame goes out padded with silence. */
  end(): void {
    this.framer.end();
  }
}
