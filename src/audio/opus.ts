/**
 * Opus decoding through the @discordjs/opus binding, straight to 16 kHz mono: libopus decodes at any
 * of its rates natively (and downmixes stereo packets), so there is no resampling step.
 *
 * What the binding does and does not give us, and how this module works around it:
 * - It always calls opus_decode with frame_size = 5760 and decode_fec = 0. An empty payload
 *   therefore asks libopus to conceal 5760 samples (360 ms at 16 kHz), not one packet. Instead we
 *   conceal with a one-byte, TOC-only packet: libopus treats it as a DTX/lost frame and conceals
 *   exactly the duration that TOC announces, continuing from the last real packet's state.
 * - In-band FEC (LBRR) cannot be used: decode_fec is hard-wired to 0 and there is no way to ask
 *   for the previous frame's redundancy from the next packet. Loss is always plain PLC.
 * - A payload libopus rejects makes the binding throw; we catch it and conceal instead, so one bad
 *   packet never breaks the stream. `malformedPackets` counts them for the caller.
 * - The native decoder is freed by the binding's finaliser; `close()` drops our reference.
 */
import { endianness } from 'node:os';
// The binding is CommonJS whose exports are a native addon's: ESM can only take it whole (default
// import); the type is erased, so importing it by name is fine.
import opus, { type OpusEncoder } from '@discordjs/opus';
import { WhisperlineError } from '../errors.js';

/** libopus' native rates; the gateway uses 16000. */
export type OpusDecodeRate = 8000 | 12000 | 16000 | 24000 | 48000;

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** The TOC configs (RFC 6716 §3.1) grouped by mode/bandwidth, with their frame durations in µs. */
type ModeFamily = { readonly firstConfig: number; readonly durationsUs: readonly number[] };
const SILK_DURATIONS_US = [10_000, 20_000, 40_000, 60_000];
const HYBRID_DURATIONS_US = [10_000, 20_000];
const CELT_DURATIONS_US = [2_500, 5_000, 10_000, 20_000];

function modeFamily(config: number): ModeFamily {
  if (config < 12) return { firstConfig: config & ~3, durationsUs: SILK_DURATIONS_US };
  if (config < 16) return { firstConfig: config & ~1, durationsUs: HYBRID_DURATIONS_US };
  return { firstConfig: config & ~3, durationsUs: CELT_DURATIONS_US };
}

export class OpusStreamDecoder {
  readonly sampleRate: OpusDecodeRate;
  /** Payloads libopus rejected (each was replaced by concealment). */
  malformedPackets = 0;

  private native: OpusEncoder | undefined;
  /** TOC byte of the last packet decoded successfully; undefined until the first one. */
  private lastToc: number | undefined;
  /** Samples (at sampleRate) the last good packet produced: the size of a lost packet. */
  private lastPacketSamples: number;
  /** Scratch one-byte packets, one per TOC value, so concealment does not allocate Buffers. */
  private readonly tocPackets = new Map<number, Buffer>();

  constructor(sampleRate: OpusDecodeRate = 16000) {
    this.sampleRate = sampleRate;
    this.lastPacketSamples = sampleRate / 50;
    // The binding's object holds both an encoder and a decoder, created lazily; we only decode.
    this.native = new opus.OpusEncoder(sampleRate, 1);
  }

  /**
   * Decodes one RTP payload. A payload libopus rejects, or an empty one, yields concealment of the
   * last packet's duration; this never throws for bad input.
   */
  decode(payload: Uint8Array): Int16Array {
    const native = this.open();
    if (payload.length === 0) return this.conceal(this.lastPacketSamples);
    let pcm: Buffer;
    try {
      pcm = native.decode(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
    } catch {
      this.malformedPackets++;
      return this.conceal(this.lastPacketSamples);
    }
    const samples = toInt16(pcm);
    // A TOC-only payload is the sender's DTX: libopus already concealed; keep the real packet's TOC.
    if (payload.length > 1) this.lastToc = payload[0]!;
    if (samples.length > 0) this.lastPacketSamples = samples.length;
    return samples;
  }

  /**
   * Produces exactly `samples` samples of packet-loss concealment continuing the stream. libopus
   * conceals in whole frames of the durations its mode allows, so the request is split greedily
   * into the largest such frames; a remainder smaller than the shortest frame (2.5 ms for CELT,
   * 10 ms otherwise) is concealed as one short frame and trimmed.
   */
  conceal(samples: number): Int16Array {
    const native = this.open();
    const out = new Int16Array(Math.max(0, Math.floor(samples)));
    // Before any packet libopus has nothing to extrapolate from and would return zeros itself.
    if (this.lastToc === undefined || out.length === 0) return out;
    const family = modeFamily(this.lastToc >> 3);
    const stereoFlag = this.lastToc & 0x04;
    const frameSamples = family.durationsUs.map((us) => (us * this.sampleRate) / 1_000_000);
    let filled = 0;
    while (filled < out.length) {
      const remaining = out.length - filled;
      let index = frameSamples.length - 1;
      while (index > 0 && frameSamples[index]! > remaining) index--;
      // Code 0 (one frame per packet): a code 1 TOC would conceal two frames, 2/3 need more bytes.
      const toc = ((family.firstConfig + index) << 3) | stereoFlag;
      let pcm: Int16Array;
      try {
        pcm = toInt16(native.decode(this.tocPacket(toc)));
      } catch (cause) {
        // A TOC-only packet is always valid; failing here means the native decoder is broken.
        throw new WhisperlineError('AUDIO_INVALID', 'opus concealment failed', { cause });
      }
      if (pcm.length === 0) break;
      const take = Math.min(pcm.length, remaining);
      out.set(take === pcm.length ? pcm : pcm.subarray(0, take), filled);
      filled += take;
    }
    return out;
  }

  close(): void {
    this.native = undefined;
  }

  private open(): OpusEncoder {
    if (this.native === undefined) throw new WhisperlineError('AUDIO_INVALID', 'opus decoder used after close()');
    return this.native;
  }

  private tocPacket(toc: number): Buffer {
    let packet = this.tocPackets.get(toc);
    if (packet === undefined) {
      packet = Buffer.from([toc]);
      this.tocPackets.set(toc, packet);
    }
    return packet;
  }
}

/** The binding returns little-endian s16 in a fresh Buffer: view it in place when we can. */
function toInt16(pcm: Buffer): Int16Array {
  const length = pcm.length >> 1;
  if (LITTLE_ENDIAN_HOST && pcm.byteOffset % 2 === 0) return new Int16Array(pcm.buffer, pcm.byteOffset, length);
  const out = new Int16Array(length);
  for (let i = 0; i < length; i++) out[i] = pcm.readInt16LE(2 * i);
  return out;
}
