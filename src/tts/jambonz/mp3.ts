/**
 * mp3 to PCM as the bytes arrive: mpg123 compiled to WebAssembly (`mpg123-decoder`), so nothing
 * native is built or downloaded at install. Pieces of any size go in; whole frames come out as
 * s16 mono (stereo is mixed down).
 */
import { MPEGDecoder } from 'mpg123-decoder';
import { WhisperlineError } from '../../errors.js';

export class Mp3Decoder {
  private rate: number | undefined;

  private constructor(
    private readonly decoder: MPEGDecoder,
    private readonly what: string,
  ) {}

  static async create(what: string): Promise<Mp3Decoder> {
    const decoder = new MPEGDecoder();
    await decoder.ready;
    return new Mp3Decoder(decoder, what);
  }

  get sampleRate(): number | undefined {
    return this.rate;
  }

  /** The samples of the frames completed by `piece` (none while a frame is incomplete). */
  push(piece: Uint8Array): Int16Array {
    const { channelData, samplesDecoded, sampleRate } = this.decoder.decode(piece);
    if (samplesDecoded === 0 || channelData.length === 0) return new Int16Array(0);
    // One rate per request (the contract); an mp3 that changes it mid-stream is not speech we can play.
    if (this.rate !== undefined && sampleRate !== this.rate) throw new WhisperlineError('TTS_FAILED', `${this.what} sent mp3 whose sample rate changes from ${this.rate} to ${sampleRate} Hz`);
    this.rate = sampleRate;
    const out = new Int16Array(samplesDecoded);
    for (let i = 0; i < samplesDecoded; i++) {
      let sum = 0;
      for (const channel of channelData) sum += channel[i]!;
      const v = sum / channelData.length;
      out[i] = Math.max(-32768, Math.min(32767, Math.round(v * 32767)));
    }
    return out;
  }

  free(): void {
    this.decoder.free();
  }
}
