import { describe, expect, it } from 'vitest';
import type { AudioFrame } from './frame.js';
import { PartyFeed, PcmReader, resampleClip } from './pcm.js';

function s16le(samples: readonly number[]): Buffer {
  const b = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => b.writeInt16LE(s, i * 2));
  return b;
}

/** Splits `buf` into chunks of the given sizes (cycled). */
function chunks(buf: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < buf.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

describe('PcmReader', () => {
  it('reads mono s16le, carrying an odd byte to the next message', () => {
    const samples = [0, 1, -1, 32767, -32768, 1234, -4321];
    const reader = new PcmReader(1);
    const got: number[] = [];
    for (const c of chunks(s16le(samples), [3, 1, 5, 2, 3])) got.push(...reader.read(c)[0]!);
    expect(got).toEqual(samples);
    expect(reader.pendingBytes).toBe(0);
  });

  it('keeps stereo channels apart however the messages split the sample pairs', () => {
    const left = Array.from({ length: 50 }, (_, i) => i * 100 - 2500);
    const right = Array.from({ length: 50 }, (_, i) => 3 - i * 7);
    const interleaved = s16le(left.flatMap((l, i) => [l, right[i]!]));
    for (const sizes of [[1], [3], [5, 2], [7, 1, 2], [4], [200], [399, 1]]) {
      const reader = new PcmReader(2);
      const l: number[] = [];
      const r: number[] = [];
      for (const c of chunks(interleaved, sizes)) {
        const [a, b] = reader.read(c);
        expect(a!.length).toBe(b!.length);
        l.push(...a!);
        r.push(...b!);
      }
      expect(l).toEqual(left);
      expect(r).toEqual(right);
      expect(reader.pendingBytes).toBe(0);
    }
  });

  it('holds an incomplete pair and does not alias the caller buffer', () => {
    const reader = new PcmReader(2);
    const first = Buffer.from([1, 0, 2]);
    expect(reader.read(first).map((c) => c.length)).toEqual([0, 0]);
    expect(reader.pendingBytes).toBe(3);
    first.fill(0xff); // ws may reuse its buffer
    const [l, r] = reader.read(Buffer.from([0]));
    expect([...l!]).toEqual([1]);
    expect([...r!]).toEqual([2]);
  });

  it('reads an empty message as no samples', () => {
    expect(new PcmReader(1).read(Buffer.alloc(0))[0]!.length).toBe(0);
  });
});

describe('PartyFeed', () => {
  it('cuts 16 kHz input into 20 ms frames timed by the samples received', () => {
    const frames: AudioFrame[] = [];
    const feed = new PartyFeed('caller', 16000, (f) => frames.push({ ...f, samples: f.samples.slice() }));
    const input = Int16Array.from({ length: 1000 }, (_, i) => i);
    feed.write(input.subarray(0, 333));
    feed.write(input.subarray(333));
    expect(frames.map((f) => f.startMs)).toEqual([0, 20, 40]);
    feed.end();
    expect(frames.map((f) => f.startMs)).toEqual([0, 20, 40, 60]);
    expect(frames.every((f) => f.samples.length === 320 && f.party === 'caller')).toBe(true);
    expect([...frames[1]!.samples.subarray(0, 3)]).toEqual([320, 321, 322]);
    // The last frame: 40 real samples, then silence.
    expect(frames[3]!.samples[39]).toBe(999);
    expect(frames[3]!.samples[40]).toBe(0);
    expect(feed.receivedMs).toBe(62.5);
  });

  it('resamples 8 kHz to 16 kHz: one second in, 50 frames out, on a continuous clock', () => {
    const frames: AudioFrame[] = [];
    const feed = new PartyFeed('callee', 8000, (f) => frames.push(f));
    // Odd-sized writes, as a platform's messages may be.
    for (let sent = 0; sent < 8000; ) {
      const n = Math.min(137, 8000 - sent);
      feed.write(new Int16Array(n).fill(1000));
      sent += n;
    }
    expect(frames).toHaveLength(50);
    expect(frames.map((f) => f.startMs)).toEqual(frames.map((_, i) => i * 20));
    expect(feed.receivedMs).toBe(1000);
  });

  it('takes every supported rate', () => {
    for (const rate of [8000, 11025, 22050, 24000, 32000, 44100, 48000, 64000]) {
      const frames: AudioFrame[] = [];
      const feed = new PartyFeed('caller', rate, (f) => frames.push(f));
      feed.write(new Int16Array(rate / 5 | 0));
      feed.end();
      expect(frames.length, `rate ${rate}`).toBe(10);
    }
  });
});

describe('resampleClip', () => {
  it('keeps the duration and the level of a clip', () => {
    const clip = new Int16Array(16000).fill(8000);
    const out = resampleClip(clip, 16000, 8000);
    expect(out.length).toBe(8000);
    expect(Math.abs(out[4000]! - 8000)).toBeLessThan(50);
    expect(resampleClip(new Int16Array(441), 44100, 8000).length).toBe(80);
  });
});
