import { describe, expect, it } from 'vitest';
import { besselI0, designLowpass, kaiserBeta, responseDb } from './fir-design.js';

describe('Kaiser low-pass design', () => {
  it('computes I0 and β like the textbook', () => {
    expect(besselI0(0)).toBe(1);
    expect(besselI0(1)).toBeCloseTo(1.2660658777520082, 14);
    expect(kaiserBeta(60)).toBeCloseTo(5.65326, 5);
    expect(kaiserBeta(30)).toBeCloseTo(2.11662, 4);
  });

  // The 8 kHz → 16 kHz interpolator's prototype, as the resampler designs it.
  const halfBand = designLowpass({ cutoff: 0.25, transitionWidth: 1200 / 16000, attenuationDb: 65, gain: 2 });

  it('gives a half-band filter exact zeros at every other tap and a unit centre', () => {
    const centre = (halfBand.length - 1) / 2;
    expect(halfBand[centre]).toBe(1);
    for (let n = 0; n < halfBand.length; n++) {
      if (n !== centre && (n - centre) % 2 === 0) expect(halfBand[n]).toBe(0);
      if ((n - centre) % 2 !== 0) expect(halfBand[n]).not.toBe(0);
    }
    // Symmetric (linear phase), with no zero taps wasted at the ends.
    for (let n = 0; n < halfBand.length; n++) expect(halfBand[n]).toBe(halfBand[halfBand.length - 1 - n]);
    expect(halfBand[0]).not.toBe(0);
  });

  it('meets the 8 kHz → 16 kHz mask: flat to 3.4 kHz, ≥ 60 dB down from 4.6 kHz', () => {
    for (let f = 0; f <= 3400; f += 25) expect(Math.abs(responseDb(halfBand, f / 16000, 2))).toBeLessThan(0.5);
    for (let f = 4600; f <= 8000; f += 10) expect(responseDb(halfBand, f / 16000, 2)).toBeLessThan(-60);
  });

  it('rejects nonsense specs', () => {
    expect(() => designLowpass({ cutoff: 0.6, transitionWidth: 0.1, attenuationDb: 60 })).toThrow(RangeError);
    expect(() => designLowpass({ cutoff: 0.2, transitionWidth: 0, attenuationDb: 60 })).toThrow(RangeError);
  });
});
