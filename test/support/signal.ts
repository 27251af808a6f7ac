/**
 * Test signals and measurements: tone generation, single-bin spectral power (Goertzel) and levels.
 * Levels are in dB relative to a full-scale sine unless said otherwise.
 */

const FULL_SCALE = 32767;

/** A sine tone, `amplitude` as a fraction of full scale (0.5 ≈ −6 dBFS), starting at phase 0. */
export function sine(freqHz: number, sampleRate: number, durationMs: number, amplitude = 0.5): Int16Array {
  const length = Math.round((sampleRate * durationMs) / 1000);
  const out = new Int16Array(length);
  const w = (2 * Math.PI * freqHz) / sampleRate;
  for (let n = 0; n < length; n++) out[n] = Math.round(amplitude * FULL_SCALE * Math.sin(w * n));
  return out;
}

/**
 * Power of `samples` at `freqHz`, normalised so a sine of amplitude A (fraction of full scale) at that
 * frequency gives A²/2 regardless of length: a full-scale sine gives 0.5, the same as its mean
 * square. A Hann window keeps leakage from other tones out of the bin (its gain is compensated).
 */
export function goertzelPower(samples: ArrayLike<number>, freqHz: number, sampleRate: number): number {
  const n = samples.length;
  if (n === 0) return 0;
  const w = (2 * Math.PI * freqHz) / sampleRate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  let windowSum = 0;
  for (let i = 0; i < n; i++) {
    const hann = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1 || 1));
    windowSum += hann;
    const s0 = (samples[i]! / FULL_SCALE) * hann + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const magnitudeSquared = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  // |X(f)| of a windowed sine of amplitude A is A·Σw/2, so A²/2 = 2·|X|²/(Σw)².
  return (2 * magnitudeSquared) / (windowSum * windowSum);
}

/** `goertzelPower` in dB (a full-scale sine reads −3 dB, one at amplitude 0.5 about −9 dB). */
export function goertzelDb(samples: ArrayLike<number>, freqHz: number, sampleRate: number): number {
  return 10 * Math.log10(goertzelPower(samples, freqHz, sampleRate) + 1e-30);
}

/** Level of the tone at `freqHz` relative to the strongest of `otherFreqsHz`, in dB (positive: it dominates). */
export function toneRatioDb(samples: ArrayLike<number>, sampleRate: number, freqHz: number, otherFreqsHz: readonly number[]): number {
  const other = Math.max(...otherFreqsHz.map((f) => goertzelPower(samples, f, sampleRate)));
  return 10 * Math.log10((goertzelPower(samples, freqHz, sampleRate) + 1e-30) / (other + 1e-30));
}

/** The candidate frequency with the most power. */
export function dominantFrequency(samples: ArrayLike<number>, sampleRate: number, candidates: readonly number[]): number {
  let best = candidates[0];
  if (best === undefined) throw new RangeError('no candidate frequencies');
  let bestPower = -1;
  for (const f of candidates) {
    const p = goertzelPower(samples, f, sampleRate);
    if (p > bestPower) {
      bestPower = p;
      best = f;
    }
  }
  return best;
}

/** Mean-square level in dB relative to full scale squared (a full-scale sine reads −3 dB). */
export function rmsDb(samples: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i]! / FULL_SCALE;
    sum += x * x;
  }
  return 10 * Math.log10(sum / Math.max(1, samples.length) + 1e-30);
}

/** Concatenates chunks of samples into one array. */
export function concatSamples(chunks: readonly Int16Array[]): Int16Array {
  const out = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/** Largest absolute difference between consecutive samples: spots clicks and discontinuities. */
export function maxStep(samples: ArrayLike<number>): number {
  let max = 0;
  for (let i = 1; i < samples.length; i++) max = Math.max(max, Math.abs(samples[i]! - samples[i - 1]!));
  return max;
}
