/**
 * Opus encoding for synthetic far ends (test RTP endpoints, benches): 20 ms mono PCM frames in,
 * one Opus packet per frame out, like a phone or WebRTC peer would send.
 */
import opus, { type OpusEncoder } from '@discordjs/opus';

/** Opus' native rates. */
export type OpusEncodeRate = 8000 | 12000 | 16000 | 24000 | 48000;

export class OpusPacketEncoder {
  /** Samples (per channel) in a 20 ms frame at `sampleRate`. */
  readonly frameSamples: number;
  private readonly native: OpusEncoder;

  /** `channels` 2 takes interleaved stereo PCM, like a WebRTC peer sending opus/48000/2. */
  constructor(
    readonly sampleRate: OpusEncodeRate = 48000,
    bitrate?: number,
    readonly channels: 1 | 2 = 1,
  ) {
    this.frameSamples = sampleRate / 50;
    this.native = new opus.OpusEncoder(sampleRate, channels);
    if (bitrate !== undefined) this.native.setBitrate(bitrate);
  }

  /** Encodes one frame (2.5–60 ms worth of samples; normally `frameSamples`) to a packet. */
  encode(pcm: Int16Array): Uint8Array {
    const packet = this.native.encode(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
    return new Uint8Array(packet.buffer, packet.byteOffset, packet.byteLength);
  }

  /** Cuts `pcm` into 20 ms frames (a short last frame is zero-padded) and encodes each. */
  encodeAll(pcm: Int16Array): Uint8Array[] {
    const packets: Uint8Array[] = [];
    const frameLength = this.frameSamples * this.channels;
    for (let offset = 0; offset < pcm.length; offset += frameLength) {
      let frame = pcm.subarray(offset, offset + frameLength);
      if (frame.length < frameLength) {
        const padded = new Int16Array(frameLength);
        padded.set(frame);
        frame = padded;
      }
      packets.push(this.encode(frame));
    }
    return packets;
  }
}
