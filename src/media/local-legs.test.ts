import { parse as parseSdp } from 'sdp-transform';
import { afterEach, describe, expect, it } from 'vitest';
import { RecorderLeg, SinkLeg } from './local-legs.js';
import { withOfferedLabels } from './sdp.js';
import type { MediaSink } from './rtp/party-stream.js';
import { RtpReceiver } from './rtp/receiver.js';

const base = 48500 + Number(process.env.VITEST_POOL_ID ?? 0) * 16;
const receivers: RtpReceiver[] = [];
function receiver(bindAddress = '127.0.0.1'): RtpReceiver {
  const r = new RtpReceiver({ bindAddress, portMin: base, portMax: base + 15, reorderWindowMs: 60 });
  receivers.push(r);
  return r;
}
afterEach(() => receivers.splice(0).forEach((r) => r.close()));

const sink: MediaSink = { audio: () => undefined, advance: () => undefined, comfortNoise: () => undefined, streamChange: () => undefined, dtmf: () => undefined, end: () => undefined };
const crlf = (lines: string[]): string => `${lines.join('\r\n')}\r\n`;

/** rtpengine's offer towards a recording server: two labelled audio streams with video between them. */
const RECORDING_OFFER = crlf([
  'v=0',
  'o=- 1 1 IN IP4 127.0.0.1',
  's=-',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'm=audio 20000 RTP/AVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=label:96',
  'a=sendonly',
  'm=video 20002 RTP/AVP 96',
  'a=rtpmap:96 H264/90000',
  'a=label:97',
  'a=sendonly',
  'm=audio 20004 RTP/AVP 0 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=label:98',
  'a=inactive',
]);

describe('RecorderLeg', () => {
  it('answers every m= line in order: audio recvonly (inactive kept) on its own socket, video declined; no labels towards rtpengine', async () => {
    const r = receiver();
    const leg = await RecorderLeg.open(r, RECORDING_OFFER, [{ mediaIndex: 0, party: 'Alice' }, { mediaIndex: 2, party: 'Bob' }], () => sink);
    expect(leg.parties).toEqual(['Alice', 'Bob']);
    expect(r.openPorts).toBe(2);
    const { sdp, held } = leg.answer(RECORDING_OFFER);
    expect(held).toBe(false);
    const answer = parseSdp(sdp);
    expect(answer.connection).toEqual({ version: 4, ip: '127.0.0.1' });
    expect(answer.media.map((m) => [m.type, m.port === 0 ? 0 : 'port', m.direction, m.label, String(m.payloads)])).toEqual([
      // rtpengine garbles the label of a second labelled stream it is given; the strategy puts the
      // recording client's labels back into the 200 OK (withOfferedLabels).
      ['audio', 'port', 'recvonly', undefined, '0 101'],
      ['video', 0, undefined, undefined, '96'],
      ['audio', 'port', 'inactive', undefined, '0 101'],
    ]);
    expect(answer.media[0]!.port).not.toBe(answer.media[2]!.port);
    // The offerer's first choice among what the gateway decodes (RFC 3264 §6.1): PCMU, offered first.
    expect(answer.media[0]!.rtp).toEqual([
      { payload: 0, codec: 'PCMU', rate: 8000 },
      { payload: 101, codec: 'telephone-event', rate: 8000 },
    ]);
    expect(answer.media[0]!.fmtp).toEqual([{ payload: 101, config: '0-16' }]);
    // Well-formed: one attribute per line, CRLF throughout.
    expect(sdp.endsWith('\r\n')).toBe(true);
    expect(sdp.split('\r\n').every((l) => l === '' || /^[a-z]=/.test(l))).toBe(true);
    leg.close();
    expect(r.openPorts).toBe(0);
  });

  it('keeps the o= session id across re-offers and raises its version; all streams inactive is a hold', async () => {
    const leg = await RecorderLeg.open(receiver(), RECORDING_OFFER, [], () => sink);
    expect(leg.parties).toEqual(['stream1', 'stream3']);
    const first = parseSdp(leg.answer(RECORDING_OFFER).sdp).origin!;
    const hold = leg.answer(RECORDING_OFFER.replaceAll('a=sendonly', 'a=inactive'));
    const second = parseSdp(hold.sdp).origin!;
    expect(hold.held).toBe(true);
    expect(second.sessionId).toBe(first.sessionId);
    expect(Number(second.sessionVersion)).toBe(Number(first.sessionVersion) + 1);
    leg.close();
  });

  it("answers in the offerer's order of preference: PCMA when it is offered first", async () => {
    const leg = await RecorderLeg.open(receiver(), RECORDING_OFFER, [], () => sink);
    const answer = parseSdp(leg.answer(RECORDING_OFFER.replace('m=audio 20000 RTP/AVP 0 8 101', 'm=audio 20000 RTP/AVP 8 0 101')).sdp);
    expect(answer.media[0]!.payloads).toBe('8 101');
    leg.close();
  });

  it('answers in the receiver address family', async () => {
    const leg = await RecorderLeg.open(receiver('::1'), RECORDING_OFFER, [], () => sink);
    const answer = parseSdp(leg.answer(RECORDING_OFFER).sdp);
    expect(answer.connection).toEqual({ version: 6, ip: '::1' });
    expect(answer.origin?.ipVer).toBe(6);
    leg.close();
  });

  it('refuses an offer with no audio, leaving nothing open', async () => {
    const r = receiver();
    await expect(RecorderLeg.open(r, crlf(['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=video 5 RTP/AVP 96']), [], () => sink)).rejects.toMatchObject({ code: 'SDP_INVALID' });
    expect(r.openPorts).toBe(0);
  });
});

describe('SinkLeg', () => {
  it('keeps its o= session id across re-offers and raises the version; answers the offerer\'s first decodable codec', async () => {
    const leg = await SinkLeg.open(receiver());
    const offer = crlf(['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 20000 RTP/AVP 18 8 0 101', 'a=rtpmap:18 G729/8000', 'a=rtpmap:101 telephone-event/8000']);
    const first = parseSdp(leg.answer(offer));
    const second = parseSdp(leg.answer(offer));
    expect(second.origin!.sessionId).toBe(first.origin!.sessionId);
    expect(Number(second.origin!.sessionVersion)).toBe(Number(first.origin!.sessionVersion) + 1);
    expect(first.media[0]!.payloads).toBe('8 101');
    leg.close();
  });

  it('answers with its socket, mirroring the direction and keeping DTMF', async () => {
    const r = receiver();
    const leg = await SinkLeg.open(r);
    const offer = crlf(['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 20000 RTP/AVP 0 101', 'a=rtpmap:101 telephone-event/8000', 'a=sendonly']);
    const answer = parseSdp(leg.answer(offer));
    expect(answer.media[0]).toMatchObject({ direction: 'recvonly', payloads: '0 101' });
    expect(r.openSinks).toBe(1);
    leg.close();
    expect(r.openSinks).toBe(0);
  });
});

describe('withOfferedLabels', () => {
  const offer = ['v=0', 'o=SRC 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'm=audio 4000 RTP/AVP 0', 'a=label:1', 'a=sendonly', 'm=video 4002 RTP/AVP 96', 'a=label:v', 'm=audio 4004 RTP/AVP 0', 'a=label:2', 'a=sendonly', ''].join('\r\n');
  // rtpengine 10.5's answer as it comes when it was given labels: the second one runs into the next attribute.
  const garbled = ['v=0', 'o=whisperline 7 1 IN IP4 127.0.0.1', 's=whisperline', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 20000 RTP/AVP 0', 'a=label:1', 'a=rtpmap:0 PCMU/8000', 'a=recvonly', 'm=video 0 RTP/AVP 96', 'm=audio 20002 RTP/AVP 0', 'a=label:2a=rtpmap:0 PCMU/8000', 'a=rtpmap:0 PCMU/8000', 'a=recvonly', ''].join('\r\n');

  it("labels each answered stream as the offer did, declined ones not, one attribute per line", () => {
    const sdp = withOfferedLabels(garbled, offer);
    expect(sdp.split('\r\n').filter((l) => l.startsWith('a=label'))).toEqual(['a=label:1', 'a=label:2']);
    const media = parseSdp(sdp).media;
    expect(media.map((m) => [m.port, m.label === undefined ? undefined : String(m.label), m.direction])).toEqual([
      [20000, '1', 'recvonly'],
      [0, undefined, undefined],
      [20002, '2', 'recvonly'],
    ]);
    expect(sdp).not.toMatch(/a=label:[^\r\n]*a=/);
    expect(sdp.endsWith('\r\n')).toBe(true);
  });

  it('leaves an answer alone when the offer had no labels', () => {
    const unlabelled = offer.replace(/a=label:[^\r]*\r\n/g, '');
    const answer = garbled.replace('a=label:2a=rtpmap:0 PCMU/8000\r\n', '').replace('a=label:1\r\n', '');
    expect(withOfferedLabels(answer, unlabelled)).toBe(answer);
  });
});
