/**
 * Streaming polyphase FIR sample-rate converter for rational ratios (inRate·L/M = outRate).
 *
 * The prototype is a Kaiser-windowed sinc with its −6 dB point at min(inRate, outRate)/2 and a
 * transition band centred there: 15 % of the lower rate wide by default, so 8 kHz → 16 kHz keeps
 * 0–3.4 kHz flat and has images from 4.6 kHz on ≥ 60 dB down (65 dB designed, for margin).
 * Splitting the transition around Nyquist lets a sliver (the top 7.5 % of the band) alias when
 * decimating; that is the usual trade for speech and keeps the passband wide.
 *
 * Designs are cached per parameter set and shared by every stream: with 1000+ legs per core, each
 * leg pays only for its own few hundred bytes of history.
 *
 * 8 kHz → 16 kHz gets a dedicated kernel: the prototype is then a half-band filter, whose
 * zero-phase branch is a single unit tap (a pure delay, copied instead of convolved) and whose other
 * branch is symmetric (folded: one multiply per pair of taps). It runs four outputs at a time on
 * WebAssembly SIMD (halfband-simd.ts) where the engine has it, as the scalar loop otherwise.
 */
import { WhisperlineError } from '../errors.js';
import { designLowpass, kaiserLength } from './fir-design.js';
import { halfBandSimd } from './halfband-simd.js';

export interface ResamplerOptions {
  /** Stopband attenuation to design for, in dB (default 65). */
  readonly attenuationDb?: number;
  /** Transition band width as a fraction of min(inRate, outRate) (default 0.15). */
  readonly transitionFraction?: number;
  /** Run the 8 kHz → 16 kHz case on the WebAssembly SIMD kernel where there is one (default true). */
  readonly simd?: boolean;
}

const DEFAULT_ATTENUATION_DB = 65;
const DEFAULT_TRANSITION_FRACTION = 0.15;

/** A designed polyphase bank; immutable and shared between Resampler instances. */
interface PolyphaseBank {
  /** Interpolation factor. */
  readonly up: number;
  /** Decimation factor. */
  readonly down: number;
  /** Taps per branch. */
  readonly tapsPerBranch: number;
  /** Branch p's taps, time-reversed, at [p·tapsPerBranch, (p+1)·tapsPerBranch): dot product runs forward. */
  readonly coeffs: Float64Array;
  /** For each branch, the index of its only non-zero tap if it is a unit-gain delay, else −1. */
  readonly delayTap: Int32Array;
  /** For each branch, whether its (reversed) taps are symmetric, so pairs can be folded. */
  readonly symmetric: Uint8Array;
  /** Branch used by the output after one using branch p. */
  readonly nextBranch: Int32Array;
  /** Input samples to step forward after an output using branch p. */
  readonly advance: Int32Array;
  /** Group delay of the prototype in output samples. */
  readonly delaySamples: number;
  /** Set when the bank is the 2× half-band case (see the module comment). */
  readonly halfBand: HalfBandKernel | undefined;
}

interface HalfBandKernel {
  /** Which branch is convolved (0 or 1); the other is the delay. */
  readonly convolvedBranch: number;
  /** First half of the convolved branch's symmetric taps (reversed order). */
  readonly folded: Float64Array;
  /** The same, in single precision, for the SIMD kernel. */
  readonly folded32: Float32Array;
  /** Position of the delay branch's unit tap inside the history window. */
  readonly delayTap: number;
}

const bankCache = new Map<string, PolyphaseBank>();
const MAX_PROTOTYPE_TAPS = 1 << 20;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function getBank(inRate: number, outRate: number, attenuationDb: number, transitionFraction: number): PolyphaseBank {
  const key = `${inRate}:${outRate}:${attenuationDb}:${transitionFraction}`;
  let bank = bankCache.get(key);
  if (bank === undefined) {
    bank = designBank(inRate, outRate, attenuationDb, transitionFraction);
    bankCache.set(key, bank);
  }
  return bank;
}

function designBank(inRate: number, outRate: number, attenuationDb: number, transitionFraction: number): PolyphaseBank {
  const g = gcd(inRate, outRate);
  const up = outRate / g;
  const down = inRate / g;
  const filterRate = inRate * up;
  const lowerRate = Math.min(inRate, outRate);
  // cutoff = lowerRate/2 normalised; for pure interpolation this is exactly 1/(2·up), which makes
  // every up-th tap an exact zero and branch (centre mod up) a pure delay.
  const cutoff = up >= down ? 0.5 / up : lowerRate / 2 / filterRate;
  const transitionWidth = (transitionFraction * lowerRate) / filterRate;
  // Co-prime rates such as 44100 → 16001 would need millions of taps: refuse instead of stalling.
  if (kaiserLength(attenuationDb, transitionWidth) > MAX_PROTOTYPE_TAPS) {
    throw new WhisperlineError('AUDIO_INVALID', `resampling ${inRate} → ${outRate} Hz needs too long a filter (ratio ${up}/${down})`);
  }
  const prototype = designLowpass({ cutoff, transitionWidth, attenuationDb, gain: up });

  const tapsPerBranch = Math.ceil(prototype.length / up);
  const coeffs = new Float64Array(up * tapsPerBranch);
  const delayTap = new Int32Array(up).fill(-1);
  const symmetric = new Uint8Array(up);
  const nextBranch = new Int32Array(up);
  const advance = new Int32Array(up);
  for (let p = 0; p < up; p++) {
    let nonZero = 0;
    let lastNonZero = -1;
    for (let j = 0; j < tapsPerBranch; j++) {
      const n = p + j * up;
      const tap = n < prototype.length ? prototype[n]! : 0;
      const i = p * tapsPerBranch + (tapsPerBranch - 1 - j);
      coeffs[i] = tap;
      if (tap !== 0) {
        nonZero++;
        lastNonZero = tapsPerBranch - 1 - j;
      }
    }
    if (nonZero === 1 && Math.abs(coeffs[p * tapsPerBranch + lastNonZero]! - 1) < 1e-6) delayTap[p] = lastNonZero;
    let isSymmetric = 1;
    for (let i = 0; i < tapsPerBranch >> 1; i++) {
      if (coeffs[p * tapsPerBranch + i] !== coeffs[p * tapsPerBranch + tapsPerBranch - 1 - i]) isSymmetric = 0;
    }
    symmetric[p] = isSymmetric;
    nextBranch[p] = (p + down) % up;
    advance[p] = Math.floor((p + down) / up);
  }

  let halfBand: HalfBandKernel | undefined;
  if (up === 2 && down === 1 && tapsPerBranch % 2 === 0) {
    const convolvedBranch = delayTap[0]! >= 0 ? 1 : delayTap[1]! >= 0 ? 0 : -1;
    if (convolvedBranch >= 0 && symmetric[convolvedBranch] === 1) {
      const start = convolvedBranch * tapsPerBranch;
      const folded = coeffs.slice(start, start + tapsPerBranch / 2);
      halfBand = {
        convolvedBranch,
        folded,
        folded32: Float32Array.from(folded),
        delayTap: delayTap[1 - convolvedBranch]!,
      };
    }
  }

  return {
    up,
    down,
    tapsPerBranch,
    coeffs,
    delayTap,
    symmetric,
    nextBranch,
    advance,
    delaySamples: (prototype.length - 1) / 2 / down,
    halfBand,
  };
}

const SUPPORTED_RATE_LIMIT = 384_000;

/**
 * Converts one stream of Int16 samples from `inRate` to `outRate`. Keeps the filter history between
 * calls, so any chunking of the input gives the same output as one call with all of it.
 */
export class Resampler {
  readonly inRate: number;
  readonly outRate: number;
  /** Group delay added by the filter, in output samples (0 for identity). */
  readonly delaySamples: number;

  private readonly bank: PolyphaseBank | undefined;
  private readonly simd: boolean;
  /**
   * History (tapsPerBranch − 1 samples) followed by the current chunk. Float64 rather than
   * Float32: V8 computes in doubles, so loads skip a conversion (measured ~10 % faster on the 8 kHz
   * path) for ~1.5 KB per 8 kHz leg.
   */
  private work: Float64Array;
  /** Branch for the next output. */
  private branch = 0;
  /** Index in the current chunk of the newest input the next output needs (≥ 0 between calls). */
  private nextBase = 0;

  constructor(inRate: number, outRate: number, opts: ResamplerOptions = {}) {
    for (const rate of [inRate, outRate]) {
      if (!Number.isInteger(rate) || rate <= 0 || rate > SUPPORTED_RATE_LIMIT) {
        throw new WhisperlineError('AUDIO_INVALID', `unsupported sample rate ${rate}`);
      }
    }
    this.inRate = inRate;
    this.outRate = outRate;
    this.simd = opts.simd ?? true;
    if (inRate === outRate) {
      this.bank = undefined;
      this.delaySamples = 0;
      this.work = new Float64Array(0);
      return;
    }
    this.bank = getBank(
      inRate,
      outRate,
      opts.attenuationDb ?? DEFAULT_ATTENUATION_DB,
      opts.transitionFraction ?? DEFAULT_TRANSITION_FRACTION,
    );
    this.delaySamples = this.bank.delaySamples;
    // Sized for a 20 ms chunk at the input rate up front; grows if a caller sends more.
    this.work = new Float64Array(this.bank.tapsPerBranch - 1 + Math.ceil(inRate / 50));
  }

  /** Output samples the next `process` call will return for `inputLength` input samples. */
  outputLength(inputLength: number): number {
    const bank = this.bank;
    if (bank === undefined) return inputLength;
    // Output k sits at position t = base·up + branch on the interpolated grid and can be produced
    // once input `base` exists: count the t's, stepping by `down`, that fall below inputLength·up.
    const span = inputLength * bank.up - (this.nextBase * bank.up + this.branch);
    return span <= 0 ? 0 : Math.ceil(span / bank.down);
  }

  /** Resamples a chunk; returns a new array of `outputLength(input.length)` samples. */
  process(input: Int16Array): Int16Array {
    const out = new Int16Array(this.outputLength(input.length));
    this.processInto(input, out);
    return out;
  }

  /**
   * Resamples a chunk into `out` (which must hold `outputLength(input.length)` samples) and returns
   * the count written: the allocation-free variant of {@link process}.
   */
  processInto(input: Int16Array, out: Int16Array): number {
    const bank = this.bank;
    if (bank === undefined) {
      if (out.length < input.length) throw new RangeError('output buffer too small');
      out.set(input);
      return input.length;
    }
    const count = this.outputLength(input.length);
    if (out.length < count) throw new RangeError(`output buffer holds ${out.length}, needs ${count}`);

    const history = bank.tapsPerBranch - 1;
    const needed = history + input.length;
    if (this.work.length < needed) {
      const grown = new Float64Array(needed);
      grown.set(this.work.subarray(0, history));
      this.work = grown;
    }
    const work = this.work;
    for (let i = 0; i < input.length; i++) work[history + i] = input[i]!;

    if (bank.halfBand !== undefined) {
      this.runHalfBand(bank.halfBand, bank.tapsPerBranch, input.length, out);
    } else {
      this.runGeneric(bank, out, count);
    }

    work.copyWithin(0, input.length, input.length + history);
    this.nextBase -= input.length;
    return count;
  }

  /**
   * A G.711 payload (8 kHz) straight to 16 kHz on the SIMD kernel, the expansion included: one
   * call instead of a table loop, two conversions and two copies. Returns a view of the kernel's
   * memory, valid until the next call of any stream's resampler; undefined where this resampler
   * is not 8 → 16 kHz on the SIMD kernel (the caller then expands and calls `processInto`).
   */
  processG711(payload: Uint8Array, law: 'PCMU' | 'PCMA'): Int16Array | undefined {
    const kernel = this.bank?.halfBand;
    if (!kernel || !this.simd || this.nextBase !== 0 || this.branch !== 0) return undefined;
    const simd = halfBandSimd();
    const last = this.bank!.tapsPerBranch - 1;
    if (!simd || payload.length > simd.capacity(last)) return undefined;
    return simd.runG711(this.work, payload, law, kernel.folded32, last, kernel.delayTap, kernel.convolvedBranch === 0);
  }

  /** Clears the history, as if the stream started again. */
  reset(): void {
    this.work.fill(0);
    this.branch = 0;
    this.nextBase = 0;
  }

  /** Any ratio: one output per iteration, walking the branches. */
  private runGeneric(bank: PolyphaseBank, out: Int16Array, count: number): void {
    const { coeffs, tapsPerBranch, delayTap, symmetric, nextBranch, advance } = bank;
    const work = this.work;
    const half = tapsPerBranch >> 1;
    const odd = tapsPerBranch & 1;
    let branch = this.branch;
    let base = this.nextBase;
    for (let k = 0; k < count; k++) {
      // Window of inputs for this output: work[base .. base + tapsPerBranch).
      const c0 = branch * tapsPerBranch;
      const unit = delayTap[branch]!;
      let acc: number;
      if (unit >= 0) {
        acc = work[base + unit]!;
      } else if (symmetric[branch] === 1) {
        acc = odd === 1 ? coeffs[c0 + half]! * work[base + half]! : 0;
        const last = base + tapsPerBranch - 1;
        for (let i = 0; i < half; i++) acc += coeffs[c0 + i]! * (work[base + i]! + work[last - i]!);
      } else {
        acc = 0;
        for (let i = 0; i < tapsPerBranch; i++) acc += coeffs[c0 + i]! * work[base + i]!;
      }
      out[k] = toInt16(acc);
      base += advance[branch]!;
      branch = nextBranch[branch]!;
    }
    this.branch = branch;
    this.nextBase = base;
  }

  /** 8 kHz → 16 kHz: per input sample, one folded dot product and one copy. */
  private runHalfBand(kernel: HalfBandKernel, tapsPerBranch: number, inputLength: number, out: Int16Array): void {
    const work = this.work;
    const folded = kernel.folded;
    const half = folded.length;
    const last = tapsPerBranch - 1;
    const delayTap = kernel.delayTap;
    const convolvedFirst = kernel.convolvedBranch === 0;
    // Both outputs of an input sample share its window, so calls always end on a pair boundary
    // (outputLength counts whole pairs) and the branch between calls is always 0.
    let k = 0;
    let base = this.nextBase;
    const simd = this.simd ? halfBandSimd() : undefined;
    if (simd !== undefined && inputLength - base <= simd.capacity(last)) {
      if (inputLength > base) simd.run(work, base, inputLength - base, kernel.folded32, last, delayTap, convolvedFirst, out);
      this.branch = 0;
      this.nextBase = inputLength;
      return;
    }
    for (; base < inputLength; base++) {
      const convolved = foldedDot(work, folded, base, base + last, half);
      const delayed = work[base + delayTap]!;
      if (convolvedFirst) {
        out[k] = convolved;
        out[k + 1] = toInt16(delayed);
      } else {
        out[k] = toInt16(delayed);
        out[k + 1] = convolved;
      }
      k += 2;
    }
    this.branch = 0;
    this.nextBase = base;
  }
}

/**
 * Σ folded[i]·(x[lo+i] + x[hi−i]), rounded to Int16. Two accumulators break the add dependency
 * chain (V8 does not vectorise): ~15 % faster than one; four gained nothing more.
 */
function foldedDot(work: Float64Array, folded: Float64Array, lo: number, hi: number, half: number): number {
  let acc0 = 0;
  let acc1 = 0;
  let i = 0;
  for (; i + 1 < half; i += 2) {
    acc0 += folded[i]! * (work[lo + i]! + work[hi - i]!);
    acc1 += folded[i + 1]! * (work[lo + i + 1]! + work[hi - i - 1]!);
  }
  if (i < half) acc0 += folded[i]! * (work[lo + i]! + work[hi - i]!);
  return toInt16(acc0 + acc1);
}

function toInt16(x: number): number {
  // Int16Array stores modulo 2^16, so clip before rounding.
  return x >= 32767 ? 32767 : x <= -32768 ? -32768 : Math.round(x);
}
