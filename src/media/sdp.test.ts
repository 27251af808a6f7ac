import { parse as parseSdp } from 'sdp-transform';
import { describe, expect, it } from 'vitest';
import { checkOffer, delayedOfferStandIn, narrowedToAnswered, sameSessionVersion } from './sdp.js';

const sdp = (origin: string, port = 4000): string => ['v=0', `o=${origin}`, 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, ''].join('\r\n');

describe('sameSessionVersion', () => {
  it('the same o= line is the same version of the session, whatever else changed', () => {
    expect(sameSessionVersion(sdp('pbx 42 1 IN IP4 10.0.0.1'), sdp('pbx 42 1 IN IP4 10.0.0.1', 5000))).toBe(true);
    expect(sameSessionVersion(sdp('pbx 42 1 IN IP4 10.0.0.1'), sdp('pbx  42 1 IN IP4 10.0.0.1 '))).toBe(true);
  });

  it('a raised version, another session or no o= line is not', () => {
    expect(sameSessionVersion(sdp('pbx 42 1 IN IP4 10.0.0.1'), sdp('pbx 42 2 IN IP4 10.0.0.1'))).toBe(false);
    expect(sameSessionVersion(sdp('pbx 42 1 IN IP4 10.0.0.1'), sdp('pbx 43 1 IN IP4 10.0.0.1'))).toBe(false);
    expect(sameSessionVersion('', sdp('pbx 42 1 IN IP4 10.0.0.1'))).toBe(false);
  });
});

describe('delayedOfferStandIn', () => {
  it('is a usable initial offer: sendrecv audio on the discard port of the given address, PCMU, PCMA, telephone-event', () => {
    const standIn = delayedOfferStandIn('192.0.2.7');
    expect(() => checkOffer(standIn, { initial: true })).not.toThrow();
    const parsed = parseSdp(standIn);
    expect(parsed.connection).toEqual({ version: 4, ip: '192.0.2.7' });
    expect(parsed.media[0]).toMatchObject({ type: 'audio', port: 9, protocol: 'RTP/AVP', direction: 'sendrecv' });
    expect(parsed.media[0]!.rtp.map((r) => r.codec)).toEqual(['PCMU', 'PCMA', 'telephone-event']);
  });

  it('is in the address family of an IPv6 address', () => {
    expect(parseSdp(delayedOfferStandIn('::1')).connection).toEqual({ version: 6, ip: '::1' });
  });
});

describe('narrowedToAnswered', () => {
  const offer = [
    'v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0',
    'm=audio 4000 RTP/AVP 111 0 8 101', 'a=rtpmap:111 opus/48000/2', 'a=fmtp:111 useinbandfec=1', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16', 'a=sendrecv', '',
  ].join('\r\n');
  const answer = (pts: string, maps: string[]): string => ['v=0', 'o=- 2 1 IN IP4 192.0.2.9', 's=-', 'c=IN IP4 192.0.2.9', 't=0 0', `m=audio 5000 RTP/AVP ${pts}`, ...maps, 'a=sendrecv', ''].join('\r\n');

  it('keeps the codec the answer chose, with telephone-event, in the offer\'s own payload types', () => {
    const narrowed = parseSdp(narrowedToAnswered(offer, answer('8 101', ['a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000'])));
    const audio = narrowed.media[0]!;
    expect(audio.payloads).toBe('8 101');
    expect(audio.rtp.map((r) => r.codec)).toEqual(['PCMA', 'telephone-event']);
    expect(audio.fmtp.map((f) => f.payload)).toEqual([101]);
    expect(audio.port).toBe(4000);
  });

  it('matches by encoding, not by number (a dynamic opus type renumbered in the answer)', () => {
    const narrowed = parseSdp(narrowedToAnswered(offer, answer('96 101', ['a=rtpmap:96 opus/48000/2', 'a=rtpmap:101 telephone-event/8000'])));
    expect(narrowed.media[0]!.payloads).toBe('111 101');
  });

  it('leaves the offer as it was when the answer names nothing it offered', () => {
    expect(narrowedToAnswered(offer, answer('9', ['a=rtpmap:9 G722/8000']))).toBe(offer);
  });
});
