import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assembleHalfBand } from '../../scripts/wasm.js';
import { HALFBAND_WASM_BASE64 } from './halfband-wasm.js';
import { halfBandSimd } from './halfband-simd.js';
import { G711Decoder } from './decoder.js';
import { ALAW_TO_LINEAR, encodeUlawBuffer, ULAW_TO_LINEAR } from './g711.js';
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

  it('decodes G.711 packets in one call as the table and the scalar loop do, concealment between them included', () => {
    const x = testSignal(8000 * 2);
    const ulaw = encodeUlawBuffer(x);
    // The same bytes read as A-law are as good a test signal as any.
    for (const [codec, table] of [['PCMU', ULAW_TO_LINEAR], ['PCMA', ALAW_TO_LINEAR]] as const) {
      const decoder = new G711Decoder(codec);
      const scalar = new Resampler(8000, 16000, { simd: false });
      let maxDiff = 0;
      let compared = 0;
      for (let p = 0; p * 160 < ulaw.length; p++) {
        const payload = ulaw.subarray(p * 160, (p + 1) * 160);
        const expanded = Int16Array.from(payload, (b) => table[b]!);
        const expected = scalar.process(expanded);
        const got = decoder.decode(payload);
        expect(got.length).toBe(320);
        for (let k = 0; k < got.length; k++) maxDiff = Math.max(maxDiff, Math.abs(got[k]! - expected[k]!));
        compared += got.length;
        if (p % 7 === 3) {
          // A lost packet: both ring down from the same history.
          const a = decoder.conceal(320);
          const b = scalar.process(new Int16Array(160));
          for (let k = 0; k < a.length; k++) maxDiff = Math.max(maxDiff, Math.abs(a[k]! - b[k]!));
        }
      }
      expect(compared).toBe(ulaw.length * 2);
      expect(maxDiff, codec).toBeLessThanOrEqual(1);
    }
  });
});
