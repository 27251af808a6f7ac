import { describe, expect, it } from 'vitest';
import { WhisperlineError } from '../errors.js';
import { codecFromEncodingName } from './codec.js';
import { createDecoder, OpusDecoder } from './decoder.js';
import { FRAME_SAMPLES } from './frame.js';
import { encodeAlawBuffer, encodeUlawBuffer } from './g711.js';
import { OpusPacketEncoder } from '../../test/support/opus-encoder.js';
import { concatSamples, dominantFrequency, maxStep, rmsDb, sine } from '../../test/support/signal.js';

/** 20 ms G.711 payloads of `pcm8k`. */
function g711Packets(pcm8k: Int16Array, encode: (pcm: Int16Array) => Uint8Array): Uint8Array[] {
  const packets: Uint8Array[] = [];
  for (let i = 0; i + 160 <= pcm8k.length; i += 160) packets.push(encode(pcm8k.subarray(i, i + 160)));
  return packets;
}

describe('codecFromEncodingName', () => {
  it('maps SDP encoding names case-insensitively', () => {
    expect(codecFromEncodingName('PCMU')).toBe('PCMU');
    expect(codecFromEncodingName('pcma')).toBe('PCMA');
    expect(codecFromEncodingName('OPUS')).toBe('opus');
    expect(codecFromEncodingName('opus')).toBe('opus');
    expect(codecFromEncodingName('G722')).toBeUndefined();
    expect(codecFromEncodingName('telephone-event')).toBeUndefined();
    expect(codecFromEncodingName('toString')).toBeUndefined();
  });
});

describe('createDecoder', () => {
  it.each([
    ['PCMU', 16000, 1],
    ['PCMA', 8000, 2],
    ['opus', 16000, 1],
    ['opus', 48000, 3],
  ] as const)('rejects %s/%i/%i with CODEC_UNSUPPORTED', (codec, rate, channels) => {
    try {
      createDecoder(codec, rate, channels);
      expect.fail('should have thrown');
    } catch (err) {
      expect(err).toBeInstanceOf(WhisperlineError);
      expect((err as WhisperlineError).code).toBe('CODEC_UNSUPPORTED');
    }
  });

  it('reports codec and RTP clock rate', () => {
    const pcmu = createDecoder('PCMU', 8000);
    const opus = createDecoder('opus', 48000, 2);
    expect([pcmu.codec, pcmu.clockRate, opus.codec, opus.clockRate]).toEqual(['PCMU', 8000, 'opus', 48000]);
    pcmu.close();
    opus.close();
  });
});

describe.each([
  ['PCMU', encodeUlawBuffer],
  ['PCMA', encodeAlawBuffer],
] as const)('%s decoder', (codec, encode) => {
  it('turns 20 ms packets into 320 samples at 16 kHz carrying the tone', () => {
    const decoder = createDecoder(codec, 8000);
    const frames = g711Packets(sine(1000, 8000, 400, 0.5), encode).map((p) => decoder.decode(p).slice());
    for (const f of frames) expect(f.length).toBe(FRAME_SAMPLES);
    const steady = concatSamples(frames.slice(2));
    expect(dominantFrequency(steady, 16000, [1000, 7000, 3000, 500])).toBe(1000);
    // G.711 quantisation costs a little level; well within 0.5 dB of the −9 dB input.
    expect(Math.abs(rmsDb(steady) - rmsDb(sine(1000, 16000, 100, 0.5)))).toBeLessThan(0.5);
  });

  it('keeps one resampler state across packets: decoding in packets equals decoding all at once', () => {
    const pcm = sine(700, 8000, 200, 0.4);
    const packets = g711Packets(pcm, encode);
    const decoder = createDecoder(codec, 8000);
    const streamed = concatSamples(packets.map((p) => decoder.decode(p).slice()));
    const all = createDecoder(codec, 8000).decode(concatBytes(packets));
    expect(streamed).toEqual(all);
  });

  it('conceals with silence that rings down smoothly through the resampler', () => {
    const decoder = createDecoder(codec, 8000);
    const packets = g711Packets(sine(1000, 8000, 200, 0.5), encode);
    const before = concatSamples(packets.map((p) => decoder.decode(p).slice()));
    const concealed = decoder.conceal(320);
    expect(concealed.length).toBe(320);
    // The filter's tail continues the waveform for ~delaySamples, then it is silence.
    expect(Math.abs(concealed[0]! - before[before.length - 1]!)).toBeLessThanOrEqual(maxStep(before) + 1);
    expect(concealed.subarray(64).every((s) => s === 0)).toBe(true);
    expect(decoder.conceal(0).length).toBe(0);
    expect(decoder.conceal(161).length).toBe(161);
    expect(decoder.decode(packets[0]!).length).toBe(320);
  });

  it('handles odd packet sizes (10 ms, 30 ms) and empty payloads', () => {
    const decoder = createDecoder(codec, 8000);
    expect(decoder.decode(new Uint8Array(80).fill(0xd5)).length).toBe(160);
    expect(decoder.decode(new Uint8Array(240).fill(0xd5)).length).toBe(480);
    expect(decoder.decode(new Uint8Array(0)).length).toBe(0);
  });

  it('refuses use after close()', () => {
    const decoder = createDecoder(codec, 8000);
    decoder.close();
    decoder.close();
    expect(() => decoder.decode(new Uint8Array(160))).toThrow(WhisperlineError);
  });
});

function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(chunks.flatMap((c) => Array.from(c)));
}

describe('opus decoder', () => {
  it('decodes opus/48000/2 (a stereo-signalled WebRTC peer) to 16 kHz mono, 320 samples per packet', () => {
    const decoder = createDecoder('opus', 48000, 2);
    const packets = new OpusPacketEncoder(48000).encodeAll(sine(1000, 48000, 300, 0.3));
    const frames = packets.map((p) => decoder.decode(p).slice());
    for (const f of frames) expect(f.length).toBe(FRAME_SAMPLES);
    expect(dominantFrequency(concatSamples(frames.slice(3)), 16000, [500, 1000, 2000])).toBe(1000);
    expect(decoder.conceal(320).length).toBe(320);
    decoder.close();
  });

  it('counts malformed packets and conceals them', () => {
    const decoder = createDecoder('opus', 48000);
    for (const p of new OpusPacketEncoder(48000).encodeAll(sine(1000, 48000, 100))) decoder.decode(p);
    expect(decoder.decode(Uint8Array.of(0x7b)).length).toBe(320);
    expect(decoder).toBeInstanceOf(OpusDecoder);
    expect((decoder as OpusDecoder).malformedPackets).toBe(1);
    decoder.close();
    expect(() => decoder.conceal(320)).toThrow(WhisperlineError);
  });
});
