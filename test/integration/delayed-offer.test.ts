/**
 * Delayed offers and session refreshes below SIP, through the real rtpengine and the real speech
 * path (fake SIP legs): an INVITE without SDP is offered in the 200 OK and its ACK's answer takes
 * effect (answer and bridge rules); a re-INVITE without SDP is offered the session as it is, and
 * an answer that moves the media is followed; an ACK without SDP ends the call with a BYE.
 */
import { parse as parseSdp } from 'sdp-transform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallRule } from '../../src/call/rule.js';
import type { CallEvent } from '../../src/transcripts/events.js';
import { newTestCall, startCallHarness, type CallHarness } from '../support/calls.js';
import { FakeDialer } from '../support/fake-sip.js';
import { RtpEndpoint } from '../support/rtp-endpoint.js';
import { waitFor } from '../support/net.js';
import { speechPcmuPackets } from '../support/speech.js';

let h: CallHarness;
let speechPcmu: Uint8Array[];

beforeAll(async () => {
  h = await startCallHarness();
  speechPcmu = await speechPcmuPackets();
}, 300_000);

afterAll(async () => {
  await h?.close();
});

const answerRule: CallRule = { name: 'line', action: 'answer', labels: [] };
const bridgeRule: CallRule = { name: 'agents', action: 'bridge', target: 'sip:agents@127.0.0.1', labels: [] };
const finalsOf = (events: CallEvent[], party: string): CallEvent[] => events.filter((e) => e.kind === 'final' && 'party' in e && e.party === party);
const tone = Array.from({ length: 50 }, () => new Uint8Array(160).fill(0x55));

async function expectReleased(): Promise<void> {
  expect(await h.rtpe.numSessions()).toBe(0);
  expect(h.receiver.openPorts).toBe(0);
  expect(h.receiver.openSinks).toBe(0);
}

/** The gateway's offer in a 200 OK: rtpengine's address, sendrecv, the codecs every trunk takes. */
function expectTrunkOffer(sdp: string): void {
  const audio = parseSdp(sdp).media.find((m) => m.type === 'audio')!;
  expect(audio.port).toBeGreaterThan(9);
  expect(audio.protocol).toBe('RTP/AVP');
  expect(audio.direction ?? 'sendrecv').toBe('sendrecv');
  const codecs = audio.rtp.map((r) => r.codec);
  expect(codecs).toEqual(expect.arrayContaining(['PCMU', 'PCMA', 'telephone-event']));
  expect(sdp).not.toMatch(/^c=IN IP4 0\.0\.0\.0/m);
}

describe('a delayed offer (an INVITE without SDP)', () => {
  it('answer rule: the 200 OK carries the offer, the ACK the answer; the caller is transcribed', async () => {
    const { session, leg, events, caller } = await newTestCall(h, answerRule, { offer: null });
    expect(leg.offer).toBeUndefined();
    await session.start();
    expect(session.state.name).toBe('active');
    expect(leg.answered).toBeUndefined();
    expectTrunkOffer(leg.offered!);
    await caller.send(leg.offered!, speechPcmu);
    await session.remoteBye('caller');
    caller.close();
    const all = events();
    expect(all[0]).toMatchObject({ kind: 'call.started' });
    // The ACK's answer is the set-up, not a renegotiation.
    expect(all.filter((e) => e.kind === 'call.updated')).toEqual([]);
    expect(finalsOf(all, 'caller').length).toBeGreaterThanOrEqual(1);
    expect(all.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
    await expectReleased();
  }, 60_000);

  it("bridge rule: the callee is offered rtpengine's SDP; the caller's 200 OK offers what the callee took; media flows both ways to the ACK's address", async () => {
    const dialer = new FakeDialer();
    const { session, leg, events, caller } = await newTestCall(h, bridgeRule, { dialer, offer: null });
    await session.start();
    expect(session.state.name).toBe('active');
    // The callee got an early offer as always, rtpengine's own.
    expect(dialer.offer).toMatch(/^m=audio \d+ RTP\/AVP /m);
    expect(parseSdp(dialer.offer!).media[0]!.port).not.toBe(9);
    expect(leg.offered).toMatch(/^m=audio \d+ RTP\/AVP /m);
    // The callee speaks first: only the ACK's answer tells rtpengine where the caller is (not the stand-in).
    await dialer.callee!.send(dialer.offer!, tone);
    await waitFor('the caller heard the callee', () => caller.received.length > 30);
    await Promise.all([caller.send(leg.offered!, speechPcmu), dialer.callee!.send(dialer.offer!, speechPcmu, undefined, 0, { sequence: 1050, timestamp: 5000 + 50 * 160 })]);
    // Each endpoint heard the other.
    expect(caller.received.length).toBeGreaterThan(50);
    expect(dialer.callee!.received.length).toBeGreaterThan(50);
    await session.remoteBye('caller');
    caller.close();
    dialer.callee!.close();
    expect(finalsOf(events(), 'caller').length).toBeGreaterThanOrEqual(1);
    expect(finalsOf(events(), 'callee').length).toBeGreaterThanOrEqual(1);
    expect(dialer.byes).toBe(1);
    await expectReleased();
  }, 60_000);

  it('an ACK without SDP: the call fails (SDP_INVALID), the caller gets a BYE, nothing is left behind', async () => {
    const { session, leg, events, caller } = await newTestCall(h, answerRule, { offer: null });
    leg.ackAnswer = '';
    await expect(session.start()).rejects.toMatchObject({ code: 'SDP_INVALID', message: expect.stringMatching(/ACK carried no SDP/) });
    caller.close();
    expect(leg.byes).toBe(1);
    expect(events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'failed', error: { code: 'SDP_INVALID' } });
    await expectReleased();
  }, 30_000);
});

describe('a re-INVITE without SDP (a session refresh)', () => {
  it('is offered the session as it is (same o= version); an unchanged answer changes nothing', async () => {
    const { session, leg, events, caller } = await newTestCall(h, answerRule);
    await session.start();
    const offer = session.refreshOffer('caller');
    expect(offer).toBe(leg.answered);
    await session.adoptAnswer('caller', leg.offer!);
    expect(events().filter((e) => e.kind === 'call.updated')).toEqual([]);
    await session.remoteBye('caller');
    caller.close();
    await expectReleased();
  }, 30_000);

  it("an answer that moves the caller's media is followed: the callee's audio reaches the caller's new address, the callee is not re-INVITEd", async () => {
    const dialer = new FakeDialer();
    const { session, leg, events, caller } = await newTestCall(h, bridgeRule, { dialer });
    await session.start();
    const offer = session.refreshOffer('caller');
    expect(offer).toBe(leg.answered);
    expect(session.refreshOffer('callee')).toBe(dialer.offer);
    // The caller answers from another port, its session version raised.
    const moved = await new RtpEndpoint('PCMU').open();
    await session.adoptAnswer('caller', moved.sdp(1).replace(/^o=- 1 1 /m, 'o=- 1 2 '));
    expect(events().filter((e) => e.kind === 'call.updated')).toEqual([expect.objectContaining({ by: 'caller', hold: false })]);
    // Only the callee sends: nothing but the adopted SDP tells rtpengine where the caller is now.
    await dialer.callee!.send(dialer.offer!, tone);
    await waitFor('the callee heard at the new port', () => moved.received.length > 30);
    expect(caller.received.length).toBe(0);
    expect(dialer.modifies).toBe(0);
    await session.remoteBye('caller');
    caller.close();
    moved.close();
    dialer.callee!.close();
    await expectReleased();
  }, 30_000);
});
