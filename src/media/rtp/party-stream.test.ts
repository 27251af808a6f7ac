import { describe, expect, it } from 'vitest';
import type { DtmfEvent } from './dtmf.js';
import { buildRtp } from './packet.js';
import { RtpPartyStream, type AudioPayloadFormat, type MediaSink } from './party-stream.js';
import { payloadMapFromSdp } from './payload-map.js';

const SDP = [
  'v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
  'm=audio 30000 RTP/AVP 8 101 13', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000', 'a=recvonly', '',
].join('\r\n');

type Call =
  | ['audio', string, number, number, number]
  | ['cn', number]
  | ['ssrc', number]
  | ['dtmf', string, number]
  | ['end'];

function recorder(): { sink: MediaSink; calls: Call[] } {
  const calls: Call[] = [];
  const sink: MediaSink = {
    audio: (f: AudioPayloadFormat, ts, payload, lost) => void calls.push(['audio', f.codec, ts, payload[0]!, lost]),
    advance: () => undefined,
    comfortNoise: (level) => calls.push(['cn', level]),
    streamChange: (ssrc) => calls.push(['ssrc', ssrc]),
    dtmf: (e: DtmfEvent) => calls.push(['dtmf', e.digit, e.durationMs]),
    end: () => calls.push(['end']),
  };
  return { sink, calls };
}

/** A PCMA packet of 20 ms whose first payload byte tags it with its sequence number. */
const pkt = (seq: number, opts: { pt?: number; ssrc?: number; ts?: number; payload?: number[] } = {}): Buffer =>
  buildRtp(
    { payloadType: opts.pt ?? 8, sequence: seq, timestamp: opts.ts ?? seq * 160, ssrc: opts.ssrc ?? 0xabc },
    new Uint8Array(opts.payload ?? [seq & 0xff, ...new Array<number>(159).fill(0xd5)]),
  );

function stream(windowMs = 60): { s: RtpPartyStream; calls: Call[] } {
  const { sink, calls } = recorder();
  return { s: new RtpPartyStream(payloadMapFromSdp(SDP), sink, windowMs), calls };
}

const audioSeqs = (calls: Call[]): number[] => calls.filter((c) => c[0] === 'audio').map((c) => c[3] as number);

describe('RtpPartyStream', () => {
  it('an empty or padding-only payload adds nothing: no audio, no time; the stream goes on', async () => {
    const { s, calls } = stream();
    s.receive(pkt(1), 0);
    // A keepalive with the next packet's timestamp and no payload, then one with padding only.
    s.receive(buildRtp({ payloadType: 8, sequence: 2, timestamp: 320, ssrc: 0xabc }, new Uint8Array(0)), 20);
    const padded = buildRtp({ payloadType: 8, sequence: 3, timestamp: 320, ssrc: 0xabc }, new Uint8Array([0, 0, 0, 4]));
    padded[0] = padded[0]! | 0x20;
    s.receive(padded, 30);
    s.receive(pkt(4, { ts: 320 }), 40);
    s.end();
    expect(calls.filter((c) => c[0] === 'audio').map((c) => [c[2], c[3]])).toEqual([[160, 1], [320, 4]]);
    expect(s.snapshot()).toMatchObject({ packets: 4, empty: 2, lost: 0, malformed: 0 });
  });

  it('counts an 8-byte RTCP receiver report as RTCP, not malformed', () => {
    const { s, calls } = stream();
    s.receive(Buffer.from([0x80, 201, 0x00, 0x01, 0x12, 0x34, 0x56, 0x78]), 0);
    expect(s.snapshot()).toMatchObject({ rtcp: 1, malformed: 0, packets: 0 });
    expect(calls).toEqual([]);
  });

  it('delivers reordered packets in order and counts nothing lost', () => {
    const { s, calls } = stream();
    [1, 2, 4, 3, 5, 6].forEach((q, i) => s.receive(pkt(q), i * 20));
    expect(audioSeqs(calls)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(s.snapshot()).toMatchObject({ packets: 6, lost: 0, late: 0, duplicate: 0 });
  });

  it('conceals a lost packet (lostBefore on the next one) and counts it; a straggler counts as late', () => {
    const { s, calls } = stream();
    [1, 2, 4, 5, 6, 7, 3].forEach((q, i) => s.receive(pkt(q), i * 20));
    expect(calls.filter((c) => c[0] === 'audio').map((c) => [c[3], c[4]])).toEqual([[1, 0], [2, 0], [4, 1], [5, 0], [6, 0], [7, 0]]);
    expect(s.snapshot()).toMatchObject({ lost: 1, late: 1 });
  });

  it('drops duplicates', () => {
    const { s, calls } = stream();
    [1, 2, 2, 3, 1].forEach((q, i) => s.receive(pkt(q), i * 20));
    expect(audioSeqs(calls)).toEqual([1, 2, 3]);
    expect(s.snapshot().duplicate).toBe(2);
  });

  it('counts malformed packets and RTCP without disturbing the stream', () => {
    const { s, calls } = stream();
    s.receive(pkt(1), 0);
    s.receive(Buffer.from([0x80, 0x00, 0x00]), 1);
    s.receive(Buffer.from([0x40, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1]), 2);
    s.receive(Buffer.from([0x81, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0]), 3);
    s.receive(pkt(2), 20);
    expect(audioSeqs(calls)).toEqual([1, 2]);
    expect(s.snapshot()).toMatchObject({ malformed: 2, rtcp: 1, lost: 0 });
    expect(s.malformedByReason).toEqual({ 'too-short': 1, 'bad-version': 1 });
  });

  it('a real SSRC change takes over after its probation: held packets flushed first, then the new stream from its first packet', () => {
    const { s, calls } = stream();
    s.receive(pkt(10), 0);
    s.receive(pkt(12), 20); // held behind the missing 11
    // The old stream stops; the new one sends in sequence, 20 ms apart.
    [500, 501, 502, 503].forEach((q, i) => s.receive(pkt(q, { ssrc: 0xdef }), 40 + 20 * i));
    const shown = calls.map((c) => (c[0] === 'audio' ? c[3] : c[0] === 'ssrc' ? `ssrc:${c[1].toString(16)}` : c[0]));
    expect(shown).toEqual(['ssrc:abc', 10, 12, 'ssrc:def', 500 & 0xff, 501 & 0xff, 502 & 0xff, 503 & 0xff]);
    expect(s.snapshot()).toMatchObject({ ssrcChanges: 1, lost: 1, ssrcRejected: 0, packets: 6 });
  });

  it('stray packets of another SSRC, in a burst or interleaved with the party\'s stream, never take it over', () => {
    const { s, calls } = stream();
    let seq = 100;
    let t = 0;
    const own = (): void => void s.receive(pkt(seq++), (t += 20));
    own();
    own();
    // A burst of 10 in sequence, all at once: in sequence, but not spread in time.
    for (let k = 0; k < 10; k++) s.receive(pkt(9000 + k, { ssrc: 0x5757 }), t + 0.1 * k);
    own();
    // Ten more interleaved with the party's own packets, 20 ms apart.
    for (let k = 0; k < 10; k++) {
      s.receive(pkt(7000 + k, { ssrc: 0x6868 }), t + 5);
      own();
    }
    expect(calls.filter((c) => c[0] === 'ssrc')).toEqual([['ssrc', 0xabc]]);
    expect(audioSeqs(calls)).toEqual(Array.from({ length: 13 }, (_, i) => (100 + i) & 0xff));
    expect(s.snapshot()).toMatchObject({ ssrcChanges: 0, ssrcRejected: 20, lost: 0, packets: 13 });
  });

  it('once latched, takes datagrams only from the latched source', () => {
    const { s, calls } = stream();
    s.latch('127.0.0.1', 20000);
    s.receive(pkt(1), 0, { address: '127.0.0.1', port: 20000 });
    for (let k = 0; k < 10; k++) s.receive(pkt(2 + k, { ssrc: 0x9999 }), 10 + k, { address: '127.0.0.1', port: 40404 });
    s.receive(pkt(2), 20, { address: '127.0.0.2', port: 20000 });
    s.receive(pkt(2), 20, { address: '127.0.0.1', port: 20000 });
    expect(audioSeqs(calls)).toEqual([1, 2]);
    expect(s.snapshot()).toMatchObject({ foreign: 11, packets: 2, ssrcChanges: 0 });
  });

  it('decodes static payload types that were not negotiated, and drops unknown dynamic ones', () => {
    const { s, calls } = stream();
    s.receive(pkt(1), 0);
    s.receive(pkt(2, { pt: 0 }), 20); // PCMU on a PCMA answer: RFC 3551 says what it is
    s.receive(pkt(3, { pt: 111 }), 40); // dynamic, never negotiated
    s.receive(pkt(4), 60);
    expect(calls.filter((c) => c[0] === 'audio').map((c) => [c[1], c[3]])).toEqual([['PCMA', 1], ['PCMU', 2], ['PCMA', 4]]);
    expect(s.snapshot()).toMatchObject({ unknownPayloadType: 1, lost: 0 });
  });

  it('reports DTMF from RFC 4733 packets once per key press, in sequence with the audio', () => {
    const { s, calls } = stream();
    const ev = (dur: number, end: boolean): number[] => [7, (end ? 0x80 : 0) | 10, dur >> 8, dur & 0xff];
    s.receive(pkt(1), 0);
    [
      [2, ev(160, false)], [3, ev(320, false)], [4, ev(640, true)], [5, ev(640, true)], [6, ev(640, true)],
    ].forEach(([q, payload], i) => s.receive(pkt(q as number, { pt: 101, ts: 320, payload: payload as number[] }), 20 + i * 20));
    s.receive(pkt(7), 140);
    expect(calls.filter((c) => c[0] !== 'ssrc')).toEqual([
      ['audio', 'PCMA', 160, 1, 0], ['dtmf', '7', 80], ['audio', 'PCMA', 7 * 160, 7, 0],
    ]);
    expect(s.snapshot().dtmfEvents).toBe(1);
  });

  it('a key whose end packets are all lost is reported once, three packet times after its last packet, with the duration seen', () => {
    const { s, calls } = stream();
    const ev = (dur: number): number[] => [9, 10, dur >> 8, dur & 0xff];
    s.receive(pkt(1), 0);
    s.receive(pkt(2), 20);
    [160, 320, 480].forEach((dur, i) => s.receive(pkt(3 + i, { pt: 101, ts: 480, payload: ev(dur) }), 40 + i * 20));
    // The clock ticks on; nothing more arrives (the end packets, and the audio after, are lost).
    s.tick(120, 200);
    expect(calls.filter((c) => c[0] === 'dtmf')).toEqual([]);
    s.tick(160, 200);
    s.tick(180, 200);
    s.tick(400, 200);
    expect(calls.filter((c) => c[0] === 'dtmf')).toEqual([['dtmf', '9', 60]]);
    // A late end packet of the same key does not report it again.
    s.receive(pkt(6, { pt: 101, ts: 480, payload: [9, 0x80 | 10, 0, 160] }), 420);
    s.end();
    expect(calls.filter((c) => c[0] === 'dtmf')).toHaveLength(1);
  });

  it('passes comfort noise levels and releases a stalled gap when the window expires', () => {
    const { s, calls } = stream(60);
    s.receive(pkt(1), 0);
    s.receive(pkt(3, { pt: 13, payload: [40] }), 20);
    expect(calls.some((c) => c[0] === 'cn')).toBe(false);
    s.expire(50);
    expect(calls.some((c) => c[0] === 'cn')).toBe(false);
    s.expire(80);
    expect(calls.filter((c) => c[0] === 'cn')).toEqual([['cn', 40]]);
    expect(s.holdsPackets).toBe(false);
  });

  it('measures interarrival jitter (RFC 3550) from arrival times', () => {
    const steady = stream();
    for (let q = 0; q < 50; q++) steady.s.receive(pkt(q), q * 20);
    expect(steady.s.snapshot().jitterMs).toBeCloseTo(0, 5);
    const jittery = stream(200);
    for (let q = 0; q < 200; q++) jittery.s.receive(pkt(q), q * 20 + (q % 2) * 10);
    expect(jittery.s.snapshot().jitterMs).toBeGreaterThan(8);
    expect(jittery.s.snapshot().jitterMs).toBeLessThan(11);
  });

  it('closes once: flushes, then tells the sink; later datagrams are ignored', () => {
    const { s, calls } = stream();
    s.receive(pkt(1), 0);
    s.receive(pkt(3), 20);
    s.close();
    s.close();
    s.receive(pkt(4), 40);
    expect(calls.map((c) => c[0])).toEqual(['ssrc', 'audio', 'audio', 'end']);
  });
});
