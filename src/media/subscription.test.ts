import { afterEach, describe, expect, it } from 'vitest';
import { MediaSubscriber, type SubscriptionControl } from './subscription.js';
import type { MediaSink } from './rtp/party-stream.js';
import { RtpReceiver } from './rtp/receiver.js';

/**
 * A fake rtpengine for the subscription handshake only (the real one is exercised in
 * test/integration): it answers `subscribe request` with a sendonly SDP in the codecs given.
 */
class FakeSubscriptions implements SubscriptionControl {
  readonly log: string[] = [];
  answers: { 'to-tag': string; sdp: string; flags?: string[] }[] = [];
  failAnswer = false;

  constructor(private readonly offer: (transcode: string[] | undefined) => string[]) {}

  async subscribeRequest(req: { 'from-tag': string; 'to-tag': string; codec?: { transcode?: string[] } }): Promise<{ sdp: string }> {
    this.log.push(`request ${req['from-tag']} ${req.codec?.transcode?.join(',') ?? '-'}`);
    const lines = this.offer(req.codec?.transcode);
    return { sdp: ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', ...lines, 'a=sendonly', ''].join('\r\n') };
  }

  async subscribeAnswer(req: { 'to-tag': string; sdp: string; flags?: string[] }): Promise<unknown> {
    this.log.push(`answer ${req.flags?.join(',') ?? '-'}`);
    if (this.failAnswer) throw new Error('Failed to process subscription answer');
    this.answers.push(req);
    return {};
  }

  async unsubscribe(): Promise<unknown> {
    this.log.push('unsubscribe');
    return {};
  }
}

const sink: MediaSink = { audio: () => undefined, advance: () => undefined, comfortNoise: () => undefined, streamChange: () => undefined, dtmf: () => undefined, end: () => undefined };
const receivers: RtpReceiver[] = [];
const receiver = (): RtpReceiver => {
  const r = new RtpReceiver({ bindAddress: '127.0.0.1', portMin: 47000 + Number(process.env.VITEST_POOL_ID ?? 0) * 20, portMax: 47019 + Number(process.env.VITEST_POOL_ID ?? 0) * 20, reorderWindowMs: 60 });
  receivers.push(r);
  return r;
};
afterEach(() => receivers.splice(0).forEach((r) => r.close()));

describe('MediaSubscriber', () => {
  it('answers recvonly with the offered codec, rtpengine payload numbers and the gateway socket', async () => {
    const rtpe = new FakeSubscriptions(() => ['m=audio 40000 RTP/AVP 96 97', 'a=rtpmap:96 opus/48000/2', 'a=fmtp:96 useinbandfec=1', 'a=rtpmap:97 telephone-event/48000']);
    const r = receiver();
    const fork = await new MediaSubscriber(rtpe, r, 'PCMU').subscribe({ callId: 'c1', fromTag: 'caller', label: 'caller' }, sink);
    expect(fork.codec).toBe('opus');
    expect(fork.transcoded).toBe(false);
    const answer = rtpe.answers[0]!;
    expect(answer['to-tag']).toBe(fork.toTag);
    expect(answer.sdp).toContain(`m=audio ${fork.port.port} RTP/AVP 96 97`);
    expect(answer.sdp).toContain('a=rtpmap:96 opus/48000/2');
    expect(answer.sdp).toContain('a=fmtp:96 useinbandfec=1');
    expect(answer.sdp).toContain('a=recvonly');
    expect(rtpe.log).toEqual(['request caller -', 'answer -']);
    await fork.close();
    await fork.close();
    expect(rtpe.log.filter((l) => l === 'unsubscribe')).toHaveLength(1);
    expect(r.openPorts).toBe(0);
  });

  it('asks again with codec.transcode when the call codec is not decodable (G.722)', async () => {
    const rtpe = new FakeSubscriptions((transcode) =>
      transcode ? ['m=audio 40002 RTP/AVP 0 9 101', 'a=rtpmap:101 telephone-event/8000'] : ['m=audio 40002 RTP/AVP 9 101', 'a=rtpmap:101 telephone-event/8000'],
    );
    const fork = await new MediaSubscriber(rtpe, receiver(), 'PCMU').subscribe({ callId: 'c1', fromTag: 'callee', label: 'callee' }, sink);
    expect(rtpe.log).toEqual(['request callee -', 'unsubscribe', 'request callee PCMU', 'answer allow transcoding']);
    expect(fork.codec).toBe('PCMU');
    expect(fork.transcoded).toBe(true);
    expect(rtpe.answers[0]!.sdp).toContain(`RTP/AVP 0 101`);
    await fork.close();
  });

  it('transcodes on request even when the codec is decodable', async () => {
    const rtpe = new FakeSubscriptions((t) => (t ? ['m=audio 40004 RTP/AVP 96 0', 'a=rtpmap:96 opus/48000/2'] : ['m=audio 40004 RTP/AVP 96', 'a=rtpmap:96 opus/48000/2']));
    const fork = await new MediaSubscriber(rtpe, receiver(), 'PCMU').subscribe({ callId: 'c1', fromTag: 'a', label: 'caller', transcodeTo: 'PCMU' }, sink);
    expect(fork.codec).toBe('PCMU');
    expect(rtpe.answers[0]!.sdp).toMatch(/RTP\/AVP 0\r\n/);
    await fork.close();
  });

  it('releases the socket and the subscription when the answer fails', async () => {
    const rtpe = new FakeSubscriptions(() => ['m=audio 40006 RTP/AVP 0']);
    rtpe.failAnswer = true;
    const r = receiver();
    await expect(new MediaSubscriber(rtpe, r, 'PCMU').subscribe({ callId: 'c1', fromTag: 'a', label: 'caller' }, sink)).rejects.toThrow(/subscription answer/);
    expect(rtpe.log).toEqual(['request a -', 'answer -', 'unsubscribe']);
    expect(r.openPorts).toBe(0);
  });

  it('fails clearly when even the transcoded offer has nothing decodable', async () => {
    const rtpe = new FakeSubscriptions(() => ['m=audio 40008 RTP/AVP 18']);
    const r = receiver();
    await expect(new MediaSubscriber(rtpe, r, 'PCMU').subscribe({ callId: 'c1', fromTag: 'a', label: 'caller' }, sink)).rejects.toMatchObject({ code: 'SDP_INVALID' });
    expect(r.openPorts).toBe(0);
  });
});
