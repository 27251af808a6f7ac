/**
 * Kaiser-window FIR low-pass design, used by the resampler to build its polyphase prototype.
 * Frequencies are normalised to the sample rate the filter runs at (0.5 = Nyquist).
 */

export interface LowpassSpec {
  /** −6 dB point of the windowed sinc, as a fraction of the sample rate (0 < cutoff < 0.5). */
  readonly cutoff: number;
  /** Full width of the transition band (passband edge to stopband edge), same units. */
  readonly transitionWidth: number;
  /** Stopband attenuation in dB (positive). */
  readonly attenuationDb: number;
  /** DC gain of the filter: an L-fold interpolator needs L to make up for the zero stuffing. */
  readonly gain?: number;
  /** Forces an odd length ≥ this (used to give half-band filters their 4K−1 structure). */
  readonly minTaps?: number;
}

/** Kaiser's β for a stopband attenuation (Kaiser 1974, as in Oppenheim & Schafer 7.6). */
export function kaiserBeta(attenuationDb: number): number {
  if (attenuationDb > 50) return 0.1102 * (attenuationDb - 8.7);
  if (attenuationDb >= 21) return 0.5842 * (attenuationDb - 21) ** 0.4 + 0.07886 * (attenuationDb - 21);
  return 0;
}

/** Kaiser's length estimate, rounded up to an odd count so the filter has a centre tap. */
export function kaiserLength(attenuationDb: number, transitionWidth: number): number {
  const n = Math.ceil((attenuationDb - 7.95) / (2.285 * 2 * Math.PI * transitionWidth)) + 1;
  return n % 2 === 0 ? n + 1 : n;
}

/** Zeroth-order modified Bessel function of the first kind, by its power series. */
export function besselI0(x: number): number {
  const halfX = x / 2;
  let term = 1;
  let sum = 1;
  for (let k = 1; k < 64; k++) {
    term *= halfX / k;
    const t2 = term * term;
    sum += t2;
    if (t2 < sum * 1e-17) break;
  }
  return sum;
}

/**
 * Designs a linear-phase (odd length, symmetric) low-pass. Taps are computed in double precision;
 * the caller decides the storage type.
 */
export function designLowpass(spec: LowpassSpec): Float64Array {
  const { cutoff, transitionWidth, attenuationDb } = spec;
  if (!(cutoff > 0 && cutoff < 0.5) || !(transitionWidth > 0)) {
    throw new RangeError(`invalid low-pass spec: cutoff ${cutoff}, transition ${transitionWidth}`);
  }
  let length = Math.max(kaiserLength(attenuationDb, transitionWidth), spec.minTaps ?? 1);
  if (length % 2 === 0) length++;
  const beta = kaiserBeta(attenuationDb);
  const centre = (length - 1) / 2;
  const i0Beta = besselI0(beta);
  const gain = spec.gain ?? 1;
  const taps = new Float64Array(length);
  for (let n = 0; n < length; n++) {
    const offset = n - centre;
    const sinc = offset === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * offset) / (Math.PI * offset);
    const r = offset / centre;
    const window = besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / i0Beta;
    taps[n] = gain * sinc * window;
  }
  // Where 2·cutoff·offset is an integer the ideal sinc is exactly zero (for an L-fold
  // interpolator with cutoff 1/(2L): every L-th tap, the half-band case when L = 2). sin(kπ) in
  // floating point leaves ~1e-17 there; make those zeros exact so the resampler can recognise a
  // polyphase branch that is a pure delay.
  for (let n = 0; n < length; n++) {
    const cycles = 2 * cutoff * (n - centre);
    if (n !== centre && Math.abs(cycles - Math.round(cycles)) < 1e-9) taps[n] = 0;
  }
  return trimZeroEnds(taps);
}

/** Drops zero taps at both ends in pairs, keeping the filter symmetric about its centre. */
function trimZeroEnds(taps: Float64Array): Float64Array {
  let trim = 0;
  while (trim < (taps.length - 1) / 2 && taps[trim] === 0 && taps[taps.length - 1 - trim] === 0) trim++;
  return trim === 0 ? taps : taps.slice(trim, taps.length - trim);
}

/** Magnitude response in dB at `frequency` (fraction of the sample rate), normalised by `gain`. */
export function responseDb(taps: ArrayLike<number>, frequency: number, gain = 1): number {
  let re = 0;
  let im = 0;
  for (let n = 0; n < taps.length; n++) {
    const phi = 2 * Math.PI * frequency * n;
    re += taps[n]! * Math.cos(phi);
    im -= taps[n]! * Math.sin(phi);
  }
  return 20 * Math.log10(Math.hypot(re, im) / gain);
}
