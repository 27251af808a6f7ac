import { describe, expect, it } from 'vitest';
import { ReorderBuffer } from './reorder.js';

/** 20 ms packets whose media time follows their sequence number; `window` in packets (× 20 ms). */
function run(window: number, seqs: number[], flush = false): { out: [number, number][]; rb: ReorderBuffer<number> } {
  const out: [number, number][] = [];
  const rb = new ReorderBuffer<number>(window * 20, (item, lost) => out.push([item, lost]));
  seqs.forEach((s, i) => rb.push(s & 0xffff, s * 20, s, i));
  if (flush) rb.flush();
  return { out, rb };
}

describe('ReorderBuffer', () => {
  it('passes an in-order stream straight through', () => {
    const { out, rb } = run(3, [10, 11, 12, 13]);
    expect(out).toEqual([[10, 0], [11, 0], [12, 0], [13, 0]]);
    expect(rb.heldCount).toBe(0);
  });

  it('puts packets reordered within the window back in order', () => {
    const { out, rb } = run(3, [1, 3, 2, 5, 4, 6]);
    expect(out.map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(rb.stats).toEqual({ late: 0, duplicate: 0, lost: 0 });
  });

  it('declares a packet lost once the window has passed it, and counts it late when it comes', () => {
    const { out, rb } = run(3, [1, 3, 4, 5, 2, 6]);
    expect(out).toEqual([[1, 0], [3, 1], [4, 0], [5, 0], [6, 0]]);
    expect(rb.stats).toEqual({ late: 1, duplicate: 0, lost: 1 });
  });

  it('counts duplicates, whether still held or already released', () => {
    const { out, rb } = run(3, [1, 1, 3, 3, 2, 2]);
    expect(out.map(([s]) => s)).toEqual([1, 2, 3]);
    expect(rb.stats.duplicate).toBe(3);
    expect(rb.stats.late).toBe(0);
  });

  it('survives the 16-bit sequence wrap', () => {
    const { out } = run(3, [65534, 65535, 65537, 65536, 65538]);
    expect(out.map(([s]) => s)).toEqual([65534, 65535, 65536, 65537, 65538]);
  });

  it('with a zero window conceals every gap at once', () => {
    const { out } = run(0, [1, 2, 4, 3, 5]);
    expect(out).toEqual([[1, 0], [2, 0], [4, 1], [5, 0]]);
  });

  it('releases held packets on flush, with the gap counted', () => {
    const { out, rb } = run(5, [1, 4, 5], true);
    expect(out).toEqual([[1, 0], [4, 2], [5, 0]]);
    expect(rb.heldCount).toBe(0);
  });

  it('counts a long burst of loss and resynchronises after a sender restart', () => {
    const { out, rb } = run(3, [1, 2, 500, 501, 20000, 20001]);
    expect(out).toEqual([[1, 0], [2, 0], [500, 497], [501, 0], [20000, 0], [20001, 0]]);
    expect(rb.stats.lost).toBe(497);
  });

  it('reports the arrival time of the oldest held packet', () => {
    const rb = new ReorderBuffer<number>(100, () => undefined);
    rb.push(1, 20, 1, 100);
    expect(rb.oldestHeldArrival()).toBeUndefined();
    rb.push(3, 60, 3, 120);
    rb.push(4, 80, 4, 140);
    expect(rb.oldestHeldArrival()).toBe(120);
  });

  it('starts over on reset (new SSRC): held packets go first, old sequence numbers mean nothing, counters add up', () => {
    const out: [number, number][] = [];
    const rb = new ReorderBuffer<number>(60, (item, lost) => out.push([item, lost]));
    [1, 3].forEach((s) => rb.push(s, s * 20, s, 0));
    rb.reset();
    [2, 3, 4].forEach((s) => rb.push(s, s * 20, 100 + s, 0));
    expect(out).toEqual([[1, 0], [3, 1], [102, 0], [103, 0], [104, 0]]);
    expect(rb.stats).toEqual({ late: 0, duplicate: 0, lost: 1 });
  });

  it('holds by media time, not by count: 10 ms packets are held six deep in a 60 ms window, a packet 4 places late is kept', () => {
    const out: [number, number][] = [];
    const rb = new ReorderBuffer<number>(60, (item, lost) => out.push([item, lost]));
    rb.setPacketMs(10);
    // 10 ms packets: 2 comes after 3, 4, 5, 6 (four places late, 40 ms of audio behind it).
    [1, 3, 4, 5, 6, 2, 7].forEach((s, i) => rb.push(s, s * 10, s, i));
    expect(out).toEqual([[1, 0], [2, 0], [3, 0], [4, 0], [5, 0], [6, 0], [7, 0]]);
    expect(rb.stats).toEqual({ late: 0, duplicate: 0, lost: 0 });
  });

  it('after silence suppression, a loss at the start of a talkspurt is measured from where the talkspurt starts', () => {
    const out: [number, number][] = [];
    const rb = new ReorderBuffer<number>(60, (item, lost) => out.push([item, lost]));
    // 1 at 0 ms; 2 s of DTX; the talkspurt's first packet (2, at 2000 ms) comes after 3 and 4.
    [[1, 0], [3, 2020], [4, 2040], [2, 2000], [5, 2060]].forEach(([s, ms], i) => rb.push(s!, ms!, s!, i));
    expect(out.map(([s]) => s)).toEqual([1, 2, 3, 4, 5]);
    expect(rb.stats.lost).toBe(0);
  });
});
