import { describe, expect, it } from 'vitest';
import { DtmfDetector } from './dtmf.js';

/** An RFC 4733 payload: event, E bit, volume 10, duration in timestamp units. */
const ev = (code: number, duration: number, end = false): Uint8Array => new Uint8Array([code, (end ? 0x80 : 0) | 10, duration >> 8, duration & 0xff]);

describe('DtmfDetector', () => {
  it('reports one event per key press despite the repeated end packets', () => {
    const d = new DtmfDetector(8000);
    const out = [
      ...d.push(1000, ev(5, 160)),
      ...d.push(1000, ev(5, 320)),
      ...d.push(1000, ev(5, 480)),
      ...d.push(1000, ev(5, 800, true)),
      ...d.push(1000, ev(5, 800, true)),
      ...d.push(1000, ev(5, 800, true)),
    ];
    expect(out).toEqual([{ digit: '5', durationMs: 100, timestamp: 1000, endLost: false }]);
  });

  it('maps *, #, A-D and flash', () => {
    const d = new DtmfDetector(8000);
    const digits = [10, 11, 12, 15, 16].flatMap((code, i) => d.push(i * 2000, ev(code, 400, true)).map((e) => e.digit));
    expect(digits).toEqual(['*', '#', 'A', 'D', 'flash']);
  });

  it('closes an event whose end packets were lost when the next one starts, and keeps both', () => {
    const d = new DtmfDetector(8000);
    expect(d.push(1000, ev(1, 160))).toEqual([]);
    expect(d.push(1000, ev(1, 320))).toEqual([]);
    const out = d.push(5000, ev(2, 400, true));
    expect(out.map((e) => [e.digit, e.durationMs, e.endLost])).toEqual([
      ['1', 40, true],
      ['2', 50, false],
    ]);
  });

  it('reports an open event on flush, once', () => {
    const d = new DtmfDetector(8000);
    d.push(1000, ev(9, 240));
    expect(d.flush().map((e) => e.digit)).toEqual(['9']);
    expect(d.flush()).toEqual([]);
    expect(d.push(1000, ev(9, 400, true))).toEqual([]);
  });

  it('uses the clock rate of the negotiated telephone-event (48 kHz with Opus)', () => {
    const d = new DtmfDetector(48000);
    expect(d.push(0, ev(0, 4800, true))[0]!.durationMs).toBe(100);
  });

  it('ignores truncated payloads and non-DTMF events', () => {
    const d = new DtmfDetector(8000);
    expect(d.push(1, new Uint8Array([1, 2]))).toEqual([]);
    expect(d.push(2, ev(40, 100, true))).toEqual([]);
  });
});
