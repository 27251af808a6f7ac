import { describe, expect, it } from 'vitest';
import { OpusStreamDecoder } from './opus.js';
import { OpusPacketEncoder, type OpusEncodeRate } from '../../test/support/opus-encoder.js';
import { concatSamples, dominantFrequency, goertzelDb, maxStep, sine } from '../../test/support/signal.js';

/** 20 ms packets of a tone, as a far end at `rate` would send them. */
function tonePackets(freq: number, rate: OpusEncodeRate, durationMs: number, bitrate?: number): Uint8Array[] {
  return new OpusPacketEncoder(rate, bitrate).encodeAll(sine(freq, rate, durationMs, 0.3));
}

// TOC configs of the streams used below (RFC 6716 §3.1), checked so each mode really is covered.
const MODES = [
  { name: 'hybrid (48 kHz default)', rate: 48000, bitrate: undefined, config: 15 },
  { name: 'CELT (48 kHz, 128 kb/s)', rate: 48000, bitrate: 128_000, config: 31 },
  { name: 'SILK (16 kHz, 12 kb/s)', rate: 16000, bitrate: 12_000, config: 9 },
] as const;

describe('OpusStreamDecoder', () => {
  it('decodes 20 ms packets from a 48 kHz far end to 320 samples of 16 kHz audio', () => {
    const decoder = new OpusStreamDecoder(16000);
    const frames = tonePackets(1000, 48000, 500).map((p) => decoder.decode(p));
    for (const f of frames) expect(f.length).toBe(320);
    const steady = concatSamples(frames.slice(3));
    expect(dominantFrequency(steady, 16000, [250, 500, 1000, 2000, 3000, 5000])).toBe(1000);
    // A 0.3 full-scale sine reads ≈ −13.5 dB; the codec keeps it within a few dB.
    expect(goertzelDb(steady, 1000, 16000)).toBeGreaterThan(-17);
    expect(decoder.malformedPackets).toBe(0);
  });

  it('decodes stereo packets to mono', () => {
    const mono = sine(1000, 48000, 300, 0.3);
    const stereo = Int16Array.from({ length: mono.length * 2 }, (_, i) => mono[i >> 1]!);
    const packets = new OpusPacketEncoder(48000, 64_000, 2).encodeAll(stereo);
    const decoder = new OpusStreamDecoder(16000);
    const frames = packets.map((p) => decoder.decode(p));
    for (const f of frames) expect(f.length).toBe(320);
    expect(dominantFrequency(concatSamples(frames.slice(3)), 16000, [500, 1000, 2000])).toBe(1000);
  });

  it.each(MODES)('$name: conceal(320) gives one 20 ms frame that continues the tone', ({ rate, bitrate, config }) => {
    const packets = tonePackets(1000, rate, 400, bitrate);
    expect(packets[5]![0]! >> 3).toBe(config);
    const decoder = new OpusStreamDecoder(16000);
    const before = concatSamples(packets.slice(0, 10).map((p) => decoder.decode(p)));
    const concealed = decoder.conceal(320);
    expect(concealed.length).toBe(320);
    // PLC extrapolates the tone: same frequency, no collapse to silence, no click at the seam.
    const level = goertzelDb(before.subarray(before.length - 1600), 1000, 16000);
    expect(dominantFrequency(concealed, 16000, [250, 500, 1000, 2000, 3000])).toBe(1000);
    expect(goertzelDb(concealed, 1000, 16000)).toBeGreaterThan(level - 10);
    const steps = maxStep(before.subarray(before.length - 1600));
    expect(Math.abs(concealed[0]! - before[before.length - 1]!)).toBeLessThan(2 * steps);
    // The stream carries on normally after the loss.
    const after = decoder.decode(packets[11]!);
    expect(after.length).toBe(320);
    expect(Math.abs(after[0]! - concealed[319]!)).toBeLessThan(3 * steps);
  });

  it.each(MODES)('$name: concealment returns exactly the requested count', ({ rate, bitrate }) => {
    const packets = tonePackets(1000, rate, 200, bitrate);
    const decoder = new OpusStreamDecoder(16000);
    for (const p of packets.slice(0, 5)) decoder.decode(p);
    for (const n of [320, 640, 160, 100, 40, 1, 480, 1000, 7, 0]) expect(decoder.conceal(n).length).toBe(n);
    expect(decoder.decode(packets[5]!).length).toBe(320);
  });

  it('conceals silence before the first packet', () => {
    const decoder = new OpusStreamDecoder(16000);
    const out = decoder.conceal(320);
    expect(out.length).toBe(320);
    expect(out.every((s) => s === 0)).toBe(true);
  });

  it('treats an empty payload as one lost packet, not the binding’s 360 ms', () => {
    const decoder = new OpusStreamDecoder(16000);
    for (const p of tonePackets(1000, 48000, 100)) decoder.decode(p);
    expect(decoder.decode(new Uint8Array(0)).length).toBe(320);
  });

  it('passes a sender’s TOC-only DTX frame to libopus (one frame of comfort continuation)', () => {
    const decoder = new OpusStreamDecoder(16000);
    const packets = tonePackets(1000, 48000, 100);
    for (const p of packets) decoder.decode(p);
    expect(decoder.decode(Uint8Array.of(packets[0]![0]! & 0xfc)).length).toBe(320);
  });

  it('never throws on garbage: it conceals and counts', () => {
    const decoder = new OpusStreamDecoder(16000);
    const packets = tonePackets(1000, 48000, 100);
    for (const p of packets) decoder.decode(p);
    // Code 3 without its frame-count byte, and code 2 with an impossible frame length.
    const bad = [Uint8Array.of(0x7b), Uint8Array.of(0x7a, 0xff, 0xff)];
    for (const payload of bad) expect(decoder.decode(payload).length).toBe(320);
    expect(decoder.malformedPackets).toBe(bad.length);
    let seed = 7;
    for (let i = 0; i < 200; i++) {
      const junk = Uint8Array.from({ length: 1 + (i % 60) }, () => (seed = (seed * 1103515245 + 12345) % 2147483648) & 0xff);
      expect(() => decoder.decode(junk)).not.toThrow();
    }
    expect(decoder.decode(packets[0]!).length).toBe(320);
  });

  it('decodes from a view into a larger buffer (RTP payload subarray)', () => {
    const packet = tonePackets(1000, 48000, 20)[0]!;
    const datagram = new Uint8Array(12 + packet.length + 5);
    datagram.set(packet, 12);
    const decoder = new OpusStreamDecoder(16000);
    expect(decoder.decode(datagram.subarray(12, 12 + packet.length)).length).toBe(320);
  });

  it('refuses use after close()', () => {
    const decoder = new OpusStreamDecoder(16000);
    decoder.close();
    decoder.close();
    expect(() => decoder.decode(Uint8Array.of(0x78))).toThrow(/after close/);
  });
});
