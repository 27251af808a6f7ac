/**
 * The 8 kHz → 16 kHz half-band interpolation of `Resampler` in WebAssembly SIMD (halfband.wat):
 * four outputs per step instead of one. Every G.711 leg runs it on every packet, and the scalar
 * loop was most of the media path's cost (≈ 7 µs of ≈ 10 µs per PCMU packet here).
 *
 * One module instance serves every stream: the gateway's JavaScript is single-threaded and each
 * call is synchronous, so the instance's memory is scratch between calls (the streams keep their
 * own history). Where WebAssembly SIMD is not available `halfBandSimd()` is undefined and the
 * resampler keeps its scalar loop; results agree within one least significant bit (the kernel
 * sums in single precision).
 */
import { ALAW_TO_LINEAR, ULAW_TO_LINEAR } from './g711.js';
import { HALFBAND_WASM_BASE64 } from './halfband-wasm.js';

/** Byte offsets of the regions (see halfband.wat). */
const COEFFS = 0;
const WORK = 256;
const OUT = 17408;
const ULAW_TABLE = 34816;
const ALAW_TABLE = 35840;
const BYTES = 36864;
const MAX_BYTES = 4096;
const MAX_COEFFS = 64;
const WORK_CAPACITY = 4160;
/** Input samples one call takes (the work region also holds `last` history samples and 3 of overrun). */
const MAX_PAIRS = 4096;

export interface HalfBandSimd {
  /** The most input samples one `run` takes, with `last` samples of history before them. */
  capacity(last: number): number;
  /**
   * Interpolates `work[start, start + n)` (history before `start` as the filter needs) into `2n`
   * Int16 outputs at `out[0, 2n)`: per input, the folded dot product and the delayed sample,
   * in the order `convFirst` says.
   */
  run(work: Float64Array, start: number, n: number, folded: Float32Array, last: number, delay: number, convFirst: boolean, out: Int16Array): void;
  /**
   * A G.711 payload straight to 16 kHz: its bytes are expanded after the `last` history samples
   * `history[0, last)` and interpolated as `run` does. Returns the `2 · payload.length` outputs as a
   * view of the kernel's memory, valid until its next call; the newest `last` input samples are
   * written back to `history[0, last)`. The payload must fit `capacity(last)`.
   */
  runG711(history: Float64Array, payload: Uint8Array, law: 'PCMU' | 'PCMA', folded: Float32Array, last: number, delay: number, convFirst: boolean): Int16Array;
}

let instance: HalfBandSimd | null | undefined;

/** The shared kernel, or undefined where WebAssembly SIMD is unavailable (or `WHISPERLINE_NO_SIMD` is set). */
export function halfBandSimd(): HalfBandSimd | undefined {
  if (instance === undefined) instance = process.env.WHISPERLINE_NO_SIMD ? null : load();
  return instance ?? undefined;
}

/** The part of the WebAssembly API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object) => { readonly exports: unknown };
}

interface HalfBandExports {
  readonly memory: { readonly buffer: ArrayBuffer };
  halfband(n: number, half: number, last: number, delay: number, convFirst: number): void;
  g711(n: number, half: number, last: number, delay: number, convFirst: number, table: number): void;
}

function load(): HalfBandSimd | null {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (!wasm) return null;
  let exports: HalfBandExports;
  try {
    exports = new wasm.Instance(new wasm.Module(Buffer.from(HALFBAND_WASM_BASE64, 'base64'))).exports as HalfBandExports;
  } catch {
    // No SIMD in this engine (the module does not validate): the scalar loop it is.
    return null;
  }
  const buffer = exports.memory.buffer;
  const coeffs = new Float32Array(buffer, COEFFS, MAX_COEFFS);
  const work = new Float32Array(buffer, WORK, WORK_CAPACITY);
  const out = new Int16Array(buffer, OUT, 2 * MAX_PAIRS);
  const bytes = new Uint8Array(buffer, BYTES, MAX_BYTES);
  new Float32Array(buffer, ULAW_TABLE, 256).set(ULAW_TO_LINEAR);
  new Float32Array(buffer, ALAW_TABLE, 256).set(ALAW_TO_LINEAR);
  let loaded: Float32Array | undefined;
  // The output view of the last payload length: a stream keeps its packet time, and a view per
  // packet is an allocation per packet.
  let outView = out.subarray(0, 0);
  return {
    capacity: (last) => Math.min(MAX_PAIRS, MAX_BYTES, WORK_CAPACITY - last - 3),
    run(source, start, n, folded, last, delay, convFirst, target) {
      if (folded !== loaded) {
        coeffs.set(folded);
        loaded = folded;
      }
      // The window of the first output starts at `start`: history (last samples) then the input.
      work.set(source.subarray(start, start + last + n));
      exports.halfband(n, folded.length, last, delay, convFirst ? 1 : 0);
      target.set(out.subarray(0, 2 * n));
    },
    runG711(history, payload, law, folded, last, delay, convFirst) {
      if (folded !== loaded) {
        coeffs.set(folded);
        loaded = folded;
      }
      const n = payload.length;
      for (let i = 0; i < last; i++) work[i] = history[i]!;
      bytes.set(payload);
      exports.g711(n, folded.length, last, delay, convFirst ? 1 : 0, law === 'PCMU' ? ULAW_TABLE : ALAW_TABLE);
      for (let i = 0; i < last; i++) history[i] = work[n + i]!;
      if (outView.length !== 2 * n) outView = out.subarray(0, 2 * n);
      return outView;
    },
  };
}
