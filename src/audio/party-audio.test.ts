import { describe, expect, it } from 'vitest';
import { concatSamples, dominantFrequency, sine } from '../../test/support/signal.js';
import type { AudioFrame } from './frame.js';
import { encodeUlawBuffer } from './g711.js';
import { PartyAudio, type AudioFormat } from './party-audio.js';

const PCMU: AudioFormat = { codec: 'PCMU', clockRate: 8000, channels: 1 };
const tone = sine(1000, 8000, 2000, 0.3);
/** Packet i of a 1 kHz PCMU stream (20 ms, 160 samples). */
const payload = (i: number): Uint8Array => encodeUlawBuffer(tone.subarray((i % 100) * 160, ((i % 100) + 1) * 160));

function party(maxGapFillMs?: number): { audio: PartyAudio; frames: AudioFrame[] } {
  const frames: AudioFrame[] = [];
  const audio = new PartyAudio('caller', (f) => frames.push(f), { callClock: (ms) => ms, ...(maxGapFillMs ? { maxGapFillMs } : {}) });
  return { audio, frames };
}

const starts = (frames: AudioFrame[]): number[] => frames.map((f) => f.startMs);
const contiguous = (frames: AudioFrame[]): boolean => frames.every((f, i) => i === 0 || f.startMs === frames[i - 1]!.startMs + 20);

describe('PartyAudio', () => {
  it('turns 20 ms PCMU packets into 20 ms 16 kHz frames on the call clock, carrying the tone', () => {
    const { audio, frames } = party();
    audio.streamChange(1, 1000);
    for (let i = 0; i < 50; i++) audio.audio(PCMU, i * 160, payload(i), 0, 1000 + i * 20);
    expect(frames).toHaveLength(50);
    expect(frames[0]!.startMs).toBe(1000);
    expect(contiguous(frames)).toBe(true);
    expect(frames.every((f) => f.samples.length === 320 && f.party === 'caller')).toBe(true);
    const pcm = concatSamples(frames.slice(2).map((f) => f.samples));
    expect(dominantFrequency(pcm, 16000, [440, 1000, 3000, 7000])).toBe(1000);
  });

  it('conceals lost packets so the clock does not jump', () => {
    const { audio, frames } = party();
    audio.streamChange(1, 0);
    for (const i of [0, 1, 2, 5, 6]) audio.audio(PCMU, i * 160, payload(i), i === 5 ? 2 : 0, i * 20);
    expect(frames).toHaveLength(7);
    expect(contiguous(frames)).toBe(true);
    expect(audio.concealedSamples).toBe(640);
  });

  it('fills a silence-suppression gap with comfort noise at the signalled level', () => {
    const { audio, frames } = party();
    audio.streamChange(1, 0);
    audio.audio(PCMU, 0, payload(0), 0, 0);
    audio.comfortNoise(40); // -40 dBov
    audio.audio(PCMU, 160 * 10, payload(10), 0, 200);
    expect(starts(frames)).toEqual([0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200]);
    const noise = concatSamples(frames.slice(2, 9).map((f) => f.samples));
    const rms = Math.sqrt(noise.reduce((s, v) => s + v * v, 0) / noise.length);
    expect(20 * Math.log10(rms / 32768)).toBeGreaterThan(-42);
    expect(20 * Math.log10(rms / 32768)).toBeLessThan(-38);
  });

  it('moves the clock instead of filling a gap longer than maxGapFillMs', () => {
    const { audio, frames } = party(500);
    audio.streamChange(1, 0);
    audio.audio(PCMU, 0, payload(0), 0, 0);
    audio.audio(PCMU, 8000 * 3, payload(1), 0, 3000); // 3 s later in RTP time
    expect(starts(frames)).toEqual([0, 3000]);
    expect(audio.clockJumps).toBe(1);
  });

  it('continues the clock across an SSRC change, with fresh timestamps', () => {
    const { audio, frames } = party();
    audio.streamChange(1, 0);
    audio.audio(PCMU, 0, payload(0), 0, 0);
    audio.audio(PCMU, 160, payload(1), 0, 20);
    audio.streamChange(2, 40);
    audio.audio(PCMU, 987654, payload(2), 0, 40);
    audio.audio(PCMU, 987654 + 160, payload(3), 0, 60);
    expect(starts(frames)).toEqual([0, 20, 40, 60]);
  });

  it('fills with silence when a new SSRC starts well after the old one stopped (hold)', () => {
    const { audio, frames } = party();
    audio.streamChange(1, 0);
    audio.audio(PCMU, 0, payload(0), 0, 0);
    audio.streamChange(2, 400);
    audio.audio(PCMU, 5, payload(1), 0, 400);
    expect(contiguous(frames)).toBe(true);
    expect(frames[frames.length - 1]!.startMs).toBe(400);
  });

  it('emits the partial last frame padded with silence when the party ends', () => {
    const { audio, frames } = party();
    audio.streamChange(1, 0);
    audio.audio(PCMU, 0, payload(0).subarray(0, 80), 0, 0); // 10 ms
    expect(frames).toHaveLength(0);
    audio.end();
    expect(frames).toHaveLength(1);
    expect(frames[0]!.samples.subarray(200).every((s) => s === 0)).toBe(true);
  });

  it('decodes Opus straight to 16 kHz frames', async () => {
    const { OpusPacketEncoder } = await import('../../test/support/opus-encoder.js');
    const enc = new OpusPacketEncoder(48000);
    const packets = enc.encodeAll(sine(440, 48000, 600, 0.3));
    const { audio, frames } = party();
    audio.streamChange(1, 0);
    packets.forEach((p, i) => audio.audio({ codec: 'opus', clockRate: 48000, channels: 2 }, i * 960, p, 0, i * 20));
    expect(frames).toHaveLength(packets.length);
    expect(dominantFrequency(concatSamples(frames.slice(5).map((f) => f.samples)), 16000, [440, 1000])).toBe(440);
  });

  describe('the playout clock (advance)', () => {
    it('keeps frames coming while the party sends nothing: a 5 s pause is 5 s of frames, on time', () => {
      const { audio, frames } = party();
      audio.streamChange(1, 0);
      for (let i = 0; i < 10; i++) audio.audio(PCMU, i * 160, payload(i), 0, i * 20);
      // The shared tick, every 20 ms of wall clock, with no packets at all.
      for (let t = 220; t <= 5200; t += 20) audio.advance(t);
      expect(contiguous(frames)).toBe(true);
      expect(frames.at(-1)!.startMs).toBe(5180);
      expect(frames).toHaveLength(260);
      // Right after speech a lost packet is concealed; then it is silence.
      expect(audio.concealedSamples).toBe(60 * 16);
      expect(frames.slice(20).every((f) => f.samples.every((v) => v === 0))).toBe(true);
    });

    it('a talkspurt after a pause continues at the right time: nothing is invented twice', () => {
      const { audio, frames } = party();
      audio.streamChange(1, 0);
      audio.audio(PCMU, 0, payload(0), 0, 0);
      for (let t = 20; t <= 1000; t += 20) audio.advance(t - 200);
      // The sender resumes 1 s after its first packet (DTX): timestamps jumped by 1 s too.
      for (let i = 0; i < 5; i++) audio.audio(PCMU, 8000 + i * 160, payload(50 + i), 0, 1000 + i * 20);
      expect(contiguous(frames)).toBe(true);
      expect(frames.find((f) => f.samples.some((v) => Math.abs(v) > 1000) && f.startMs > 100)!.startMs).toBe(1000);
      expect(frames.at(-1)!.startMs).toBe(1080);
      expect(audio.lateSamples).toBe(0);
    });

    it('after a 1 s stall released as one burst: audio still within the fill delay is kept, the older is late, the clock is continuous', () => {
      const { audio, frames } = party();
      audio.streamChange(1, 0);
      for (let i = 0; i < 5; i++) audio.audio(PCMU, i * 160, payload(i), 0, i * 20);
      // The network stalls for 1 s; the clock fills what is 200 ms overdue.
      for (let t = 100; t <= 1100; t += 20) audio.advance(t - 200);
      const filledTo = frames.at(-1)!.startMs + 20;
      expect(filledTo).toBe(900);
      // Then the 50 packets of that second arrive at once.
      const results = Array.from({ length: 50 }, (_, k) => audio.audio(PCMU, (5 + k) * 160, payload(5 + k), 0, 1100));
      expect(results.filter((r) => !r)).toHaveLength((filledTo - 100) / 20);
      expect(results.slice(-10).every(Boolean)).toBe(true);
      expect(audio.lateSamples).toBe(((filledTo - 100) / 20) * 320);
      expect(contiguous(frames)).toBe(true);
      expect(frames.at(-1)!.startMs).toBe(1080);
    });

    it('a late packet that partly overlaps what was filled keeps only its new part', () => {
      const { audio, frames } = party();
      audio.streamChange(1, 0);
      audio.audio(PCMU, 0, payload(0), 0, 0);
      audio.advance(30); // filled up to 30 ms
      expect(audio.audio(PCMU, 160, payload(1), 0, 235)).toBe(true);
      expect(audio.lateSamples).toBe(10 * 16);
      audio.audio(PCMU, 320, payload(2), 0, 240);
      expect(contiguous(frames)).toBe(true);
      expect(frames.at(-1)!.startMs).toBe(40);
    });

    it('a codec switch with another clock rate (PCMU to Opus) continues where the audio ended, without invented silence', async () => {
      const { OpusPacketEncoder } = await import('../../test/support/opus-encoder.js');
      const opus = new OpusPacketEncoder(48000).encodeAll(sine(440, 48000, 200, 0.3));
      const { audio, frames } = party();
      audio.streamChange(1, 0);
      for (let i = 0; i < 5; i++) audio.audio(PCMU, 80000 + i * 160, payload(i), 0, i * 20);
      // The same SSRC goes on in Opus, its timestamps in a 48 kHz clock (rtpengine passes some packets, transcodes others).
      opus.forEach((p, k) => audio.audio({ codec: 'opus', clockRate: 48000, channels: 2 }, 1_234_567 + k * 960, p, 0, 100 + k * 20));
      expect(contiguous(frames)).toBe(true);
      expect(frames).toHaveLength(5 + opus.length);
      expect(audio.filledSamples).toBe(0);
    });
  });

  it('advance says when it can next fill: nothing is due before that time, and the fill comes at it', () => {
    const { audio, frames } = party();
    audio.audio(PCMU, 0, payload(0), 0, 1000);
    // Before the first packet's end nothing is missing: the answer is 1 ms past the audio written.
    expect(audio.advance(1010)).toBe(1021);
    expect(frames.length).toBe(1);
    audio.audio(PCMU, 160, payload(1), 0, 1020);
    // Audio moved the clock on: the bound given earlier is now too early, never too late.
    expect(audio.advance(1021)).toBe(1041);
    expect(frames.length).toBe(2);
    // At the bound and beyond, the silence is filled, and the next answer follows the filled audio.
    expect(audio.advance(1100)).toBe(1101);
    expect(frames.length).toBe(5);
  });
});
