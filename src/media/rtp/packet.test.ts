import { describe, expect, it } from 'vitest';
import { buildRtp, isMalformed, parseRtp, type RtpPacket } from './packet.js';

const header = (b0: number, b1 = 0, extra: number[] = []): Buffer =>
  Buffer.from([b0, b1, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, ...extra]);

describe('parseRtp', () => {
  it('round-trips a packet built by buildRtp', () => {
    const pkt = buildRtp({ payloadType: 0, sequence: 65535, timestamp: 0xfffffff0, ssrc: 0x80000001, marker: true }, new Uint8Array([1, 2, 3]));
    const p = parseRtp(pkt) as RtpPacket;
    expect(p).toMatchObject({ marker: true, payloadType: 0, sequence: 65535, timestamp: 0xfffffff0, ssrc: 0x80000001, csrcCount: 0 });
    expect([...p.payload]).toEqual([1, 2, 3]);
  });

  it('skips CSRCs and the header extension, and strips padding', () => {
    // V=2, P=1, X=1, CC=2; two CSRCs, a one-word extension (profile 0xBEDE), payload AA BB, 2 bytes of padding
    const buf = header(0x80 | 0x20 | 0x10 | 2, 8, [0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0x00, 0x01, 9, 9, 9, 9, 0xaa, 0xbb, 0x00, 0x02]);
    const p = parseRtp(buf) as RtpPacket;
    expect(isMalformed(p)).toBe(false);
    expect(p.csrcCount).toBe(2);
    expect(p.extensionProfile).toBe(0xbede);
    expect(p.payloadType).toBe(8);
    expect(p.sequence).toBe(0x1234);
    expect(p.timestamp).toBe(0xdeadbeef);
    expect(p.ssrc).toBe(0x01020304);
    expect([...p.payload]).toEqual([0xaa, 0xbb]);
  });

  it.each([
    ['too-short', Buffer.from([0x80, 0, 0, 1])],
    ['bad-version', header(0x40)],
    ['truncated-csrc', header(0x80 | 3, 0, [0, 0, 0, 1])],
    ['truncated-extension', header(0x90, 0, [0xbe, 0xde, 0x00, 0x04, 1, 2])],
    ['bad-padding', header(0xa0, 0, [1, 2, 0x09])],
    ['bad-padding', header(0xa0, 0, [1, 2, 0x00])],
    ['rtcp', header(0x80, 200)],
    // An RTCP receiver report without report blocks (RFC 3550 6.4.2): 8 bytes, RC = 0, PT 201.
    ['rtcp', Buffer.from([0x80, 201, 0x00, 0x01, 0x12, 0x34, 0x56, 0x78])],
    // RTPFB (205), PSFB (206), XR (207) and the rest of RFC 5761's 192-223.
    ['rtcp', Buffer.from([0x81, 205, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2])],
    ['rtcp', Buffer.from([0x80, 192, 0x00, 0x00])],
  ])('reports %s instead of throwing', (reason, buf) => {
    expect(parseRtp(buf)).toEqual({ malformed: reason });
  });

  it('never throws on random bytes', () => {
    let seed = 1;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    for (let i = 0; i < 5000; i++) {
      const buf = Buffer.from(Array.from({ length: rand() % 40 }, rand));
      expect(() => parseRtp(buf)).not.toThrow();
    }
  });
});
