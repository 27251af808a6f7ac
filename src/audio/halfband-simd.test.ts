import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assembleHalfBand } from '../../scripts/wasm.js';
import { HALFBAND_WASM_BASE64 } from './halfband-wasm.js';
import { halfBandSimd } from './halfband-simd.js';
import { Resampler } from './resampler.js';

/** Noise with full-scale bursts (saturation), a chirp and silence: what phones send. */
function testSignal(length: number): Int16Array {
  const x = new Int16Array(length);
  let seed = 12345;
  for (let i = 0; i < length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const noise = ((seed >>> 16) / 65536 - 0.5) * 20000;
    const chirp = 12000 * Math.sin((2 * Math.PI * (100 + i / 4) * i) / 8000);
    const burst = i % 4000 < 200 ? (i % 2 === 0 ? 32767 : -32768) : 0;
    x[i] = Math.max(-32768, Math.min(32767, Math.round(i % 8000 < 1000 ? 0 : burst || noise + chirp)));
  }
  return x;
}

describe('the half-band SIMD kernel', () => {
  it('is the committed build of halfband.wat', async () => {
    const wat = readFileSync(new URL('./halfband.wat', import.meta.url), 'utf8');
    expect(Buffer.from(await assembleHalfBand(wat)).toString('base64')).toBe(HALFBAND_WASM_BASE64);
  });

  it('loads in this Node (WebAssembly SIMD)', () => {
    expect(halfBandSimd()).toBeDefined();
  });

  it('gives what the scalar loop gives, within one LSB, in 20 ms packets and in odd chunks', () => {
    const x = testSignal(8000 * 3);
    for (const chunk of [160, 7, 1234]) {
      const simd = new Resampler(8000, 16000);
      const scalar = new Resampler(8000, 16000, { simd: false });
      let maxDiff = 0;
      let differing = 0;
      let total = 0;
      for (let i = 0; i < x.length; i += chunk) {
        const part = x.subarray(i, Math.min(x.length, i + chunk));
        const a = simd.process(part);
        const b = scalar.process(part);
        expect(a.length).toBe(b.length);
        for (let k = 0; k < a.length; k++) {
          const d = Math.abs(a[k]! - b[k]!);
          maxDiff = Math.max(maxDiff, d);
          if (d !== 0) differing++;
        }
        total += a.length;
      }
      expect(total).toBe(x.length * 2);
      expect(maxDiff, `chunk ${chunk}`).toBeLessThanOrEqual(1);
      expect(differing / total).toBeLessThan(0.01);
    }
  });

  it('saturates instead of wrapping at full scale', () => {
    const x = new Int16Array(320);
    for (let i = 0; i < x.length; i++) x[i] = i % 2 === 0 ? 32767 : -32768;
    const y = new Resampler(8000, 16000).process(x);
    const z = new Resampler(8000, 16000, { simd: false }).process(x);
    expect(Array.from(y)).toEqual(Array.from(z).map((v, k) => (Math.abs(v - y[k]!) <= 1 ? y[k] : v)));
    expect(Math.max(...y)).toBeLessThanOrEqual(32767);
    expect(Math.min(...y)).toBeGreaterThanOrEqual(-32768);
  });
});
