import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ALAW_SILENCE,
  ALAW_TO_LINEAR,
  ULAW_SILENCE,
  ULAW_TO_LINEAR,
  decodeAlaw,
  decodeUlaw,
  encodeAlaw,
  encodeAlawBuffer,
  encodeUlaw,
  encodeUlawBuffer,
} from './g711.js';

function soxAvailable(): boolean {
  try {
    execFileSync('sox', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const HAVE_SOX = soxAvailable();

const ALL_CODES = Uint8Array.from({ length: 256 }, (_, i) => i);

describe('G.711 decode tables', () => {
  it('match the G.191 reference at known points', () => {
    expect(ULAW_TO_LINEAR[0xff]).toBe(0);
    expect(ULAW_TO_LINEAR[0x7f]).toBe(0);
    expect(ULAW_TO_LINEAR[0x00]).toBe(-32124);
    expect(ULAW_TO_LINEAR[0x80]).toBe(32124);
    expect(ULAW_TO_LINEAR[0xfe]).toBe(8);
    expect(ULAW_TO_LINEAR[0x7e]).toBe(-8);
    expect(ALAW_TO_LINEAR[0xd5]).toBe(8);
    expect(ALAW_TO_LINEAR[0x55]).toBe(-8);
    expect(ALAW_TO_LINEAR[0xaa]).toBe(32256);
    expect(ALAW_TO_LINEAR[0x2a]).toBe(-32256);
  });

  it('are odd-symmetric: the sign bit only flips the sign', () => {
    for (let code = 0; code < 128; code++) {
      expect(ULAW_TO_LINEAR[code]! + ULAW_TO_LINEAR[code | 0x80]!).toBe(0);
      expect(ALAW_TO_LINEAR[code]! + ALAW_TO_LINEAR[code | 0x80]!).toBe(0);
    }
  });

  // Skipped, saying why in its title, where sox is not installed.
  describe.skipIf(!HAVE_SOX)(`equal what sox decodes, for all 256 codes${HAVE_SOX ? '' : ' (SKIPPED: sox not found on PATH)'}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'whisperline-g711-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it.each([
      ['ul', ULAW_TO_LINEAR],
      ['al', ALAW_TO_LINEAR],
    ] as const)('sox -t %s', (type, table) => {
      const input = join(dir, `codes.${type}`);
      const output = join(dir, `decoded-${type}.raw`);
      writeFileSync(input, ALL_CODES);
      execFileSync('sox', ['-t', type, '-r', '8000', '-c', '1', input, '-t', 's16', '-e', 'signed-integer', '-L', output]);
      const bytes = readFileSync(output);
      const decoded = Array.from({ length: bytes.length / 2 }, (_, i) => bytes.readInt16LE(2 * i));
      expect(decoded).toEqual(Array.from(table));
    });
  });
});

describe('G.711 buffer decode', () => {
  it('expands each byte through the table', () => {
    const payload = Uint8Array.of(0x00, 0x80, 0xff, 0x7f, 0x55, 0xd5);
    expect(Array.from(decodeUlaw(payload))).toEqual([-32124, 32124, 0, 0, ULAW_TO_LINEAR[0x55], ULAW_TO_LINEAR[0xd5]]);
    expect(Array.from(decodeAlaw(payload))).toEqual(Array.from(payload, (b) => ALAW_TO_LINEAR[b]));
  });

  it('writes into a caller buffer and returns a view of the written part', () => {
    const scratch = new Int16Array(8);
    const out = decodeUlaw(Uint8Array.of(0x00, 0x80), scratch);
    expect(out.buffer).toBe(scratch.buffer);
    expect(Array.from(out)).toEqual([-32124, 32124]);
    expect(() => decodeAlaw(new Uint8Array(9), scratch)).toThrow(RangeError);
  });
});

describe('G.711 encoders', () => {
  it('round-trip every code (µ-law 0x7F, negative zero, encodes as the canonical 0xFF)', () => {
    for (let code = 0; code < 256; code++) {
      expect(encodeUlaw(ULAW_TO_LINEAR[code]!)).toBe(code === 0x7f ? 0xff : code);
      expect(encodeAlaw(ALAW_TO_LINEAR[code]!)).toBe(code);
    }
    expect(encodeUlaw(0)).toBe(ULAW_SILENCE);
    expect(encodeAlaw(0)).toBe(ALAW_SILENCE);
  });

  it.each([
    ['µ-law', encodeUlaw, ULAW_TO_LINEAR],
    ['A-law', encodeAlaw, ALAW_TO_LINEAR],
  ] as const)('%s quantises every 16-bit value monotonically to an adjacent level', (_name, encode, table) => {
    const levels = Array.from(new Set(table)).sort((a, b) => a - b);
    const failures: string[] = [];
    let previous = -Infinity;
    let next = 0; // index of the lowest level ≥ x
    for (let x = -32768; x <= 32767; x++) {
      while (next < levels.length && levels[next]! < x) next++;
      const above = levels[Math.min(next, levels.length - 1)]!;
      const below = levels[Math.max(0, levels[next] === x ? next : next - 1)]!;
      const y = table[encode(x)]!;
      // y is one of the two levels bracketing x (or the extreme level outside their range).
      if (y < previous || (y !== above && y !== below)) failures.push(`${x} → ${y} (levels ${below}, ${above})`);
      previous = y;
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it('clip out-of-range input instead of wrapping', () => {
    expect(encodeUlaw(40000)).toBe(0x80);
    expect(encodeUlaw(-40000)).toBe(0x00);
    expect(encodeAlaw(40000)).toBe(0xaa);
    expect(encodeAlaw(-40000)).toBe(0x2a);
  });

  it('encode buffers sample by sample', () => {
    const pcm = Int16Array.of(0, 1000, -1000, 32767, -32768);
    expect(Array.from(encodeUlawBuffer(pcm))).toEqual(Array.from(pcm, encodeUlaw));
    expect(Array.from(encodeAlawBuffer(pcm))).toEqual(Array.from(pcm, encodeAlaw));
  });
});
