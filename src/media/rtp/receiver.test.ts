import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { buildRtp } from './packet.js';
import type { MediaSink } from './party-stream.js';
import { payloadMapFromSdp } from './payload-map.js';
import { RtpReceiver } from './receiver.js';

const MAP = payloadMapFromSdp('v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n');
const base = 46000 + Number(process.env.VITEST_POOL_ID ?? 0) * 16;
const receivers: RtpReceiver[] = [];
const make = (portMax = base + 7, reorderWindowMs = 60): RtpReceiver => {
  const r = new RtpReceiver({ bindAddress: '127.0.0.1', portMin: base, portMax, reorderWindowMs });
  receivers.push(r);
  return r;
};
afterEach(() => receivers.splice(0).forEach((r) => r.close()));

function countingSink(): MediaSink & { seqs: number[]; ended: number } {
  const s = {
    seqs: [] as number[],
    ended: 0,
    audio: (_f: unknown, ts: number) => void s.seqs.push(ts / 160),
    advance: () => undefined,
    comfortNoise: () => undefined,
    streamChange: () => undefined,
    dtmf: () => undefined,
    end: () => void s.ended++,
  };
  return s;
}

describe('RtpReceiver', () => {
  it('binds one even port per party from the range and fails clearly when it runs out', async () => {
    const r = make(base + 5); // even ports base, base+2, base+4
    const ports = [await r.openParty(MAP, countingSink()), await r.openParty(MAP, countingSink()), await r.openParty(MAP, countingSink())];
    expect(ports.map((p) => p.port)).toEqual([base, base + 2, base + 4]);
    await expect(r.openParty(MAP, countingSink())).rejects.toMatchObject({ code: 'PORTS_EXHAUSTED', retryable: true });
    ports[1]!.close();
    expect((await r.openParty(MAP, countingSink())).port).toBe(base + 2);
  });

  it('skips a port something else holds', async () => {
    const squatter = createSocket('udp4');
    await new Promise<void>((resolve) => squatter.bind(base, '127.0.0.1', resolve));
    try {
      const p = await make().openParty(MAP, countingSink());
      expect(p.port).toBe(base + 2);
    } finally {
      squatter.close();
    }
  });

  it('receives real UDP, and releases packets held behind a gap once the stream stalls', async () => {
    const r = make(base + 7, 60);
    const sink = countingSink();
    const party = await r.openParty(MAP, sink);
    const tx = createSocket('udp4');
    const send = (seq: number): void => tx.send(buildRtp({ payloadType: 0, sequence: seq, timestamp: seq * 160, ssrc: 7 }, new Uint8Array(160).fill(0xff)), party.port, '127.0.0.1');
    [1, 2, 4].forEach(send); // 3 never comes, and nothing follows 4
    await new Promise((res) => setTimeout(res, 40));
    expect(sink.seqs).toEqual([1, 2]);
    await new Promise((res) => setTimeout(res, 120));
    expect(sink.seqs).toEqual([1, 2, 4]);
    expect(party.stats()).toMatchObject({ packets: 3, lost: 1 });
    tx.close();
    party.close();
    party.close();
    expect(sink.ended).toBe(1);
    expect(r.openPorts).toBe(0);
  });
});
