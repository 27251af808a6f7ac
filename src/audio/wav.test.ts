import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dominantFrequency } from '../../test/support/signal.js';
import { encodeWav, parseWav } from './wav.js';

const dir = mkdtempSync(join(tmpdir(), 'wl-wav-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Call-recording-like files made by sox: stereo with a different tone per channel. */
function soxWav(name: string, args: string[]): Uint8Array {
  const path = join(dir, name);
  execFileSync('sox', ['-n', ...args, path, 'synth', '0.5', 'sine', '440', 'sine', '1000']);
  return readFileSync(path);
}

describe('parseWav', () => {
  it('reads 16-bit PCM stereo, one channel per party', () => {
    const wav = parseWav(soxWav('pcm.wav', ['-r', '16000', '-c', '2', '-b', '16', '-e', 'signed-integer']));
    expect(wav.sampleRate).toBe(16000);
    expect(wav.channels.map((c) => c.length)).toEqual([8000, 8000]);
    expect(dominantFrequency(wav.channels[0]!, 16000, [440, 1000])).toBe(440);
    expect(dominantFrequency(wav.channels[1]!, 16000, [440, 1000])).toBe(1000);
  });

  it('reads µ-law and A-law recordings at 8 kHz', () => {
    for (const enc of ['u-law', 'a-law']) {
      const wav = parseWav(soxWav(`${enc}.wav`, ['-r', '8000', '-c', '2', '-e', enc]));
      expect(wav.sampleRate).toBe(8000);
      expect(dominantFrequency(wav.channels[1]!, 8000, [440, 1000])).toBe(1000);
    }
  });

  it('writes stereo with one channel per party, padding the shorter one', () => {
    const left = Int16Array.of(1, 2, 3);
    const right = Int16Array.of(-1, -2);
    const wav = parseWav(encodeWav([left, right], 8000));
    expect(wav.channels.map((c) => [...c])).toEqual([
      [1, 2, 3],
      [-1, -2, 0],
    ]);
  });

  it('round-trips what encodeWav writes', () => {
    const samples = Int16Array.from({ length: 100 }, (_, i) => i * 300 - 15000);
    const wav = parseWav(encodeWav(samples, 16000));
    expect(wav.sampleRate).toBe(16000);
    expect([...wav.channels[0]!]).toEqual([...samples]);
  });

  it('rejects what it cannot read, naming it', () => {
    expect(() => parseWav(Buffer.from('hello world, not a wav'))).toThrow(/not a RIFF\/WAVE file/);
    expect(() => parseWav(soxWav('float.wav', ['-r', '16000', '-c', '1', '-e', 'floating-point', '-b', '32']))).toThrow(/format 3 with 32 bits/);
    const noData = encodeWav(new Int16Array(10), 16000).subarray(0, 36);
    expect(() => parseWav(noData)).toThrow(/no data chunk/);
  });
});
