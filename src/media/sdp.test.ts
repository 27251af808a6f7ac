import { parse as parseSdp } from 'sdp-transform';
import { describe, expect, it } from 'vitest';
import { checkOffer, delayedOfferStandIn, sameSessionVersion } from './sdp.js';

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
