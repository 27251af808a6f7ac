/** Codecs the gateway decodes itself; anything else is asked of rtpengine as one of these. */
export type CodecName = 'PCMU' | 'PCMA' | 'opus';

const ENCODING_NAMES: Readonly<Record<string, CodecName>> = { pcmu: 'PCMU', pcma: 'PCMA', opus: 'opus' };

/** Maps an SDP rtpmap encoding name (any case) to a codec we decode; undefined for the rest. */
export function codecFromEncodingName(name: string): CodecName | undefined {
  return ENCODING_NAMES[name.toLowerCase()];
}

/**
 * A streaming decoder for one RTP stream: payloads in, 16 kHz mono Int16 out.
 * One instance per stream (it keeps codec and resampler state); not shared between parties.
 */
export interface AudioDecoder {
  readonly codec: CodecName;
  /** The RTP clock rate of the stream (8000 for G.711, 48000 for Opus). */
  readonly clockRate: number;
  /**
   * Decodes one RTP payload; returns 16 kHz samples (length depends on the packet's duration).
   * The returned array may be a buffer reused on the next call of this or any other decoder
   * (G.711 returns the shared SIMD kernel's memory): copy what you keep before decoding again.
   */
  decode(payload: Uint8Array): Int16Array;
  /**
   * Produces `samples16k` samples standing in for a lost packet: codec PLC where the codec has
   * it (Opus), silence otherwise. Keeps the decoder's state continuous.
   */
  conceal(samples16k: number): Int16Array;
  /** Releases native resources; idempotent. */
  close(): void;
}
