import { describe, expect, it } from 'vitest';
import { WhisperlineError } from '../errors.js';
import { Resampler } from './resampler.js';
import { concatSamples, dominantFrequency, goertzelDb, rmsDb, sine } from '../../test/support/signal.js';

/** Resamples `input` in one call. */
function whole(inRate: number, outRate: number, input: Int16Array): Int16Array {
  return new Resampler(inRate, outRate).process(input);
}

/** Drops the filter's start-up transient (and as much at the end) before measuring. */
function steady(samples: Int16Array, rate: number): Int16Array {
  const skip = Math.round(rate * 0.02);
  return samples.subarray(skip, samples.length - skip);
}

describe('Resampler 8 kHz → 16 kHz', () => {
  it.each([300, 1000, 3000, 3400])('passes %i Hz flat (±0.5 dB) at the right frequency', (freq) => {
    const input = sine(freq, 8000, 500);
    const output = steady(whole(8000, 16000, input), 16000);
    expect(output.length).toBeGreaterThan(7000);
    expect(Math.abs(rmsDb(output) - rmsDb(steady(input, 8000)))).toBeLessThan(0.5);
    expect(dominantFrequency(output, 16000, [freq, 8000 - freq, 8000 + freq, 250, 5000])).toBe(freq);
  });

  it('puts the 7 kHz image of a 1 kHz tone at least 60 dB down', () => {
    const output = steady(whole(8000, 16000, sine(1000, 8000, 500)), 16000);
    expect(goertzelDb(output, 7000, 16000) - goertzelDb(output, 1000, 16000)).toBeLessThan(-60);
  });

  it.each([300, 1000, 2000, 3000, 3400])('puts the image of %i Hz (≥ 4.6 kHz) at least 60 dB down', (freq) => {
    const output = steady(whole(8000, 16000, sine(freq, 8000, 500)), 16000);
    expect(goertzelDb(output, 8000 - freq, 16000) - goertzelDb(output, freq, 16000)).toBeLessThan(-60);
  });

  it('produces exactly two output samples per input sample', () => {
    const resampler = new Resampler(8000, 16000);
    for (const n of [160, 1, 7, 0, 333]) expect(resampler.process(new Int16Array(n)).length).toBe(2 * n);
  });

  it('delays by delaySamples: an impulse peaks there', () => {
    const resampler = new Resampler(8000, 16000);
    const impulse = new Int16Array(100);
    impulse[0] = 16384;
    const out = resampler.process(impulse);
    const peak = out.indexOf(Math.max(...out));
    expect(resampler.delaySamples).toBe(peak);
    expect(out[peak]).toBe(16384);
  });
});

describe('Resampler 48 kHz → 16 kHz', () => {
  it('passes 1 kHz flat', () => {
    const input = sine(1000, 48000, 500);
    const output = steady(whole(48000, 16000, input), 16000);
    expect(Math.abs(rmsDb(output) - rmsDb(steady(input, 48000)))).toBeLessThan(0.5);
    expect(dominantFrequency(output, 16000, [1000, 2000, 500])).toBe(1000);
  });

  it.each([10_000, 12_000])('attenuates %i Hz (which would alias into the band) by at least 60 dB', (freq) => {
    const input = sine(freq, 48000, 500);
    const output = steady(whole(48000, 16000, input), 16000);
    expect(output.length).toBeGreaterThan(7000);
    expect(rmsDb(output) - rmsDb(steady(input, 48000))).toBeLessThan(-60);
  });
});

describe('Resampler, any supported rate to 16 kHz', () => {
  it.each([8000, 12000, 24000, 32000, 44100, 48000])('%i Hz: 1 kHz passes flat', (rate) => {
    const input = sine(1000, rate, 300);
    const output = steady(whole(rate, 16000, input), 16000);
    expect(Math.abs(rmsDb(output) - rmsDb(steady(input, rate)))).toBeLessThan(0.5);
    expect(dominantFrequency(output, 16000, [1000, 3000, 5000, 7000])).toBe(1000);
  });

  it.each([
    [24000, 11000],
    [32000, 12000],
    [44100, 10000],
    [44100, 20000],
  ])('%i Hz: a %i Hz tone is at least 60 dB down', (rate, freq) => {
    const input = sine(freq, rate, 300);
    const output = steady(whole(rate, 16000, input), 16000);
    expect(rmsDb(output) - rmsDb(steady(input, rate))).toBeLessThan(-60);
  });

  it('also converts up from 16 kHz and between other rates', () => {
    const input = sine(1000, 16000, 300);
    const output = steady(whole(16000, 48000, input), 48000);
    expect(Math.abs(rmsDb(output) - rmsDb(steady(input, 16000)))).toBeLessThan(0.5);
    expect(whole(44100, 48000, sine(440, 44100, 100)).length).toBe(4800);
  });

  it('passes audio through unchanged (as a copy) when the rates are equal', () => {
    const resampler = new Resampler(16000, 16000);
    const input = sine(1000, 16000, 20);
    const output = resampler.process(input);
    expect(output).toEqual(input);
    expect(output).not.toBe(input);
    expect(resampler.delaySamples).toBe(0);
  });

  it('clips overshoot instead of wrapping around', () => {
    const square = Int16Array.from({ length: 800 }, (_, i) => (Math.floor(i / 20) % 2 === 0 ? 32767 : -32768));
    const output = whole(8000, 16000, square);
    // Gibbs overshoot clips at the rails; a wrap would show as a full-scale jump between neighbours.
    for (let i = 1; i < output.length; i++) expect(Math.abs(output[i]! - output[i - 1]!)).toBeLessThan(40000);
    expect(Math.max(...output)).toBe(32767);
    expect(Math.min(...output)).toBe(-32768);
  });

  it('rejects unusable rates with AUDIO_INVALID', () => {
    for (const rate of [0, -8000, 8000.5, Number.NaN]) {
      expect(() => new Resampler(rate, 16000)).toThrow(WhisperlineError);
    }
    expect(() => new Resampler(8000, 0)).toThrow(expect.objectContaining({ code: 'AUDIO_INVALID' }));
    // Co-prime rates would need a multi-million-tap prototype.
    expect(() => new Resampler(44100, 16001)).toThrow(expect.objectContaining({ code: 'AUDIO_INVALID' }));
  });
});

describe('Resampler streaming', () => {
  /** Deterministic pseudo-random chunk sizes in [0, max]. */
  function chunkSizes(total: number, max: number, seed: number): number[] {
    const sizes: number[] = [];
    let left = total;
    let s = seed;
    while (left > 0) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const n = Math.min(left, (s >>> 8) % (max + 1));
      sizes.push(n);
      left -= n;
    }
    return sizes;
  }

  it.each([8000, 12000, 24000, 32000, 44100, 48000])('%i Hz: arbitrary chunking gives exactly the one-call output', (rate) => {
    const input = concatSamples([sine(700, rate, 150, 0.4), sine(2900, rate, 150, 0.3), sine(150, rate, 150, 0.9)]);
    const expected = whole(rate, 16000, input);
    for (const [max, seed] of [
      [3, 1],
      [97, 2],
      [2000, 3],
    ] as const) {
      const resampler = new Resampler(rate, 16000);
      const chunks: Int16Array[] = [];
      let offset = 0;
      for (const n of chunkSizes(input.length, max, seed)) {
        chunks.push(resampler.process(input.subarray(offset, offset + n)));
        offset += n;
      }
      expect(concatSamples(chunks)).toEqual(expected);
    }
  });

  it.each([8000, 12000, 44100, 48000])('%i Hz: 10 minutes of 20 ms chunks come out to the exact sample count', (rate) => {
    const resampler = new Resampler(rate, 16000);
    const chunk = sine(440, rate, 20);
    const out = new Int16Array(resampler.outputLength(chunk.length) + 1);
    const chunks = 10 * 60 * 50;
    let total = 0;
    for (let i = 0; i < chunks; i++) {
      const expected = resampler.outputLength(chunk.length);
      const written = resampler.processInto(chunk, out);
      expect(written).toBe(expected);
      total += written;
    }
    const ideal = (chunks * chunk.length * 16000) / rate;
    expect(total).toBeGreaterThanOrEqual(Math.floor(ideal) - 1);
    expect(total).toBeLessThanOrEqual(Math.ceil(ideal) + 1);
    // Per 20 ms chunk the count stays within one sample of 320 (no drift accumulates).
    expect(Math.abs(resampler.outputLength(chunk.length) - 320)).toBeLessThanOrEqual(1);
  });

  it('reset() forgets the history', () => {
    const resampler = new Resampler(44100, 16000);
    const input = sine(1000, 44100, 40);
    const first = resampler.process(input);
    resampler.process(sine(3000, 44100, 13));
    resampler.reset();
    expect(resampler.process(input)).toEqual(first);
  });

  it('grows its work buffer for large chunks and keeps going', () => {
    const input = sine(1000, 8000, 2000);
    const resampler = new Resampler(8000, 16000);
    const out = concatSamples([resampler.process(input.subarray(0, 160)), resampler.process(input.subarray(160)), resampler.process(new Int16Array(0))]);
    expect(out).toEqual(whole(8000, 16000, input));
  });
});
