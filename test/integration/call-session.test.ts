/**
 * CallSession against a real rtpengine, real VAD and real whisper.cpp (tiny model), with
 * synthetic RTP endpoints standing in for both SIP parties and fake SIP legs driving the session
 * through its signalling port (the drachtio suite covers the real SIP stack). Every ending path
 * must leave rtpengine with no session and the gateway with no socket, and every call, the ones
 * that fail during set-up included, publishes call.started … call.ended.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallRegistry } from '../../src/call/registry.js';
import type { CallRule } from '../../src/call/rule.js';
import type { OutboundDialer } from '../../src/call/signalling.js';
import { RtpReceiver } from '../../src/media/rtp/receiver.js';
import { RtpengineClient } from '../../src/media/rtpengine/client.js';
import { MediaSubscriber } from '../../src/media/subscription.js';
import { toRecordingOffer } from '../../src/sip/siprec.js';
import type { CallEvent } from '../../src/transcripts/events.js';
import { pino } from 'pino';
import { newTestCall, startCallHarness, type CallHarness } from '../support/calls.js';
import { FakeDialer, RejectingDialer } from '../support/fake-sip.js';
import { RtpEndpoint } from '../support/rtp-endpoint.js';
import { TWO_PARTY_METADATA, twoPartySiprecOffer } from '../support/siprec.js';
import { rtpPortRange, startTestRtpengine } from '../support/rtpengine.js';
import { waitFor } from '../support/net.js';
import { speechPcmuPackets } from '../support/speech.js';

const log = pino({ level: 'silent' });
let h: CallHarness;
let speechPcmu: Uint8Array[];

beforeAll(async () => {
  h = await startCallHarness();
  speechPcmu = await speechPcmuPackets();
}, 300_000);

afterAll(async () => {
  await h?.close();
});

const answerRule: CallRule = { name: 'line', action: 'answer', labels: ['test'], parties: { caller: { label: 'customer', transcribe: true } } };
const bridgeRule: CallRule = { name: 'agents', action: 'bridge', target: 'sip:agents@127.0.0.1', labels: [] };

async function expectReleased(receiver: RtpReceiver = h.receiver): Promise<void> {
  expect(await h.rtpe.numSessions()).toBe(0);
  expect(receiver.openPorts).toBe(0);
  expect(receiver.openSinks).toBe(0);
}

const finalsOf = (events: CallEvent[], party: string): CallEvent[] => events.filter((e) => e.kind === 'final' && 'party' in e && e.party === party);

describe('CallSession against a real rtpengine', () => {
  it("answers a call, transcribes the caller, and ends cleanly on the caller's BYE", async () => {
    const { session, leg, events, caller } = await newTestCall(h, answerRule);
    await session.start();
    expect(session.state.name).toBe('active');
    expect(leg.answered).toContain('m=audio');
    await caller.send(leg.answered!, speechPcmu);
    await session.remoteBye('caller');
    caller.close();
    const all = events();
    const kinds = all.map((e) => e.kind);
    expect(kinds[0]).toBe('call.started');
    expect(all[0]).toMatchObject({ rule: 'line', labels: ['test'], parties: [{ name: 'caller', label: 'customer' }] });
    expect(finalsOf(all, 'caller').length).toBeGreaterThanOrEqual(1);
    expect(kinds.slice(-2)).toEqual(['ended', 'call.ended']);
    const ended = all.at(-1)!;
    expect(ended).toMatchObject({ reason: 'bye-caller' });
    expect(ended).not.toHaveProperty('sipStatus');
    expect((ended as { parties: Record<string, { packets: number }> }).parties.caller!.packets).toBeGreaterThan(50);
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
    expect(leg.byes).toBe(0);
    expect(session.state).toMatchObject({ name: 'closed', reason: 'bye-caller' });
    await expectReleased();
  }, 60_000);

  it('speech followed by no packets at all (silence suppression): its final comes while the call is up, without another packet', async () => {
    const { session, leg, events, caller } = await newTestCall(h, answerRule);
    await session.start();
    // The sentence without its trailing silence: the phone stops sending when the caller stops talking.
    await caller.send(leg.answered!, speechPcmu.slice(0, speechPcmu.length - 60));
    await waitFor('a final without more packets', () => finalsOf(events(), 'caller').length >= 1, 15_000);
    expect(session.state.name).toBe('active');
    await session.remoteBye('caller');
    caller.close();
    await expectReleased();
  }, 60_000);

  it('bridges to a callee, transcribes both parties, and hangs up the caller when the callee says BYE', async () => {
    const dialer = new FakeDialer();
    const { session, leg, events, caller } = await newTestCall(h, bridgeRule, { dialer });
    await session.start();
    await Promise.all([caller.send(leg.answered!, speechPcmu), dialer.callee!.send(dialer.offer!, speechPcmu)]);
    // Each endpoint heard the other through rtpengine.
    expect(caller.received.length).toBeGreaterThan(50);
    expect(dialer.callee!.received.length).toBeGreaterThan(50);
    await session.remoteBye('callee');
    caller.close();
    dialer.callee!.close();
    expect(finalsOf(events(), 'caller').length).toBeGreaterThanOrEqual(1);
    expect(finalsOf(events(), 'callee').length).toBeGreaterThanOrEqual(1);
    expect(leg.byes).toBe(1);
    expect(dialer.byes).toBe(0);
    expect(events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-callee' });
    await expectReleased();
  }, 60_000);

  it('passes hold and resume re-INVITEs through rtpengine and keeps transcribing after resume', async () => {
    const { session, leg, events, caller } = await newTestCall(h, answerRule);
    await session.start();
    const holdAnswer = await session.reinvite('caller', caller.sdp(5).replace('a=sendrecv', 'a=sendonly'));
    expect(holdAnswer).toMatch(/a=recvonly/);
    const resumeAnswer = await session.reinvite('caller', caller.sdp(6));
    expect(resumeAnswer).toMatch(/a=sendrecv/);
    // RFC 3264 §8: the caller sees one session, its version raised by each answer.
    const origin = (sdp: string): [string, number] => {
      const [, id, version] = /^o=\S+ (\d+) (\d+) /m.exec(sdp)!;
      return [id!, Number(version)];
    };
    expect(origin(holdAnswer)[0]).toBe(origin(leg.answered!)[0]);
    expect(origin(resumeAnswer)[0]).toBe(origin(leg.answered!)[0]);
    expect(origin(holdAnswer)[1]).toBeGreaterThan(origin(leg.answered!)[1]);
    expect(origin(resumeAnswer)[1]).toBeGreaterThan(origin(holdAnswer)[1]);
    await caller.send(resumeAnswer, speechPcmu);
    await session.remoteBye('caller');
    caller.close();
    const updates = events().filter((e) => e.kind === 'call.updated');
    expect(updates).toMatchObject([
      { by: 'caller', hold: true },
      { by: 'caller', hold: false },
    ]);
    // The subscription was renewed and the caller's speech after the resume was transcribed.
    expect(finalsOf(events(), 'caller').length).toBeGreaterThanOrEqual(1);
    expect(leg.answered).toBeDefined();
    await expectReleased();
  }, 60_000);

  it("a party's RTP statistics span the whole call, across the re-INVITEs that renew its subscription", async () => {
    const { session, leg, events, caller } = await newTestCall(h, answerRule);
    await session.start();
    await caller.send(leg.answered!, speechPcmu.slice(0, 60));
    const answer = await session.reinvite('caller', caller.sdp(7));
    await caller.send(answer, speechPcmu.slice(0, 60));
    await session.remoteBye('caller');
    caller.close();
    const ended = events().at(-1) as { parties: Record<string, { packets: number; ssrcChanges: number }> };
    // 120 packets were sent, 60 before and 60 after the renegotiation.
    expect(ended.parties.caller!.packets).toBeGreaterThan(110);
    await expectReleased();
  }, 60_000);

  it('an SRTP caller (RTP/SAVP with SDES keys) is answered in RTP/SAVP with its own crypto, decrypted by rtpengine and transcribed', async () => {
    // The SRTP phone: a plain endpoint behind a second rtpengine call that encrypts towards the gateway.
    const phone = await new RtpEndpoint('PCMU').open();
    const front = `srtp-front-${Math.random().toString(36).slice(2)}`;
    const offered = (await h.client.offer({ 'call-id': front, 'from-tag': 'phone', sdp: phone.sdp(), replace: ['origin', 'session-connection'], ICE: 'remove', 'transport-protocol': 'RTP/SAVP', DTLS: 'off' })).sdp!;
    // As a desk phone offers SDES: one suite, AES_CM_128_HMAC_SHA1_80.
    const srtpOffer = offered
      .split('\r\n')
      .filter((l) => !l.startsWith('a=crypto:') || l.includes(' AES_CM_128_HMAC_SHA1_80 '))
      .join('\r\n');
    expect(srtpOffer).toMatch(/^m=audio \d+ RTP\/SAVP /m);
    expect(srtpOffer).toMatch(/^a=crypto:/m);
    expect(srtpOffer).not.toMatch(/^a=fingerprint:/m);
    const { session, leg, events } = await newTestCall(h, answerRule, { caller: phone, offer: srtpOffer });
    await session.start();
    expect(leg.answered).toMatch(/^m=audio \d+ RTP\/SAVP /m);
    // A phone's usual SDES offer (one suite), answered with that suite and rtpengine's own key.
    expect(srtpOffer.match(/^a=crypto:/gm)).toHaveLength(1);
    expect(leg.answered).toMatch(/^a=crypto:\d+ AES_CM_128_HMAC_SHA1_80 inline:/m);
    expect(leg.answered).not.toContain(/inline:(\S+)/.exec(srtpOffer)![1]);
    const plainAnswer = (await h.client.answer({ 'call-id': front, 'from-tag': 'phone', 'to-tag': 'gateway', sdp: leg.answered! })).sdp!;
    await phone.send(plainAnswer, speechPcmu);
    await session.remoteBye('caller');
    phone.close();
    await h.client.delete({ 'call-id': front });
    const ended = events().at(-1) as { parties: Record<string, { packets: number }> };
    expect(ended.parties.caller!.packets).toBeGreaterThan(100);
    expect(finalsOf(events(), 'caller').length).toBeGreaterThanOrEqual(1);
    await expectReleased();
  }, 60_000);

  it('a bridge keeps each leg in its own transport: the SRTP caller answered SRTP, the callee offered plain RTP', async () => {
    const phone = await new RtpEndpoint('PCMU').open();
    const front = `srtp-front-${Math.random().toString(36).slice(2)}`;
    const srtpOffer = (await h.client.offer({ 'call-id': front, 'from-tag': 'phone', sdp: phone.sdp(), replace: ['origin', 'session-connection'], ICE: 'remove', 'transport-protocol': 'RTP/SAVP', DTLS: 'off' })).sdp!;
    const dialer = new FakeDialer();
    const { session, leg } = await newTestCall(h, bridgeRule, { caller: phone, offer: srtpOffer, dialer });
    await session.start();
    expect(dialer.offer).toMatch(/^m=audio \d+ RTP\/AVP /m);
    expect(dialer.offer).not.toMatch(/^a=crypto:/m);
    expect(leg.answered).toMatch(/^m=audio \d+ RTP\/SAVP /m);
    expect(leg.answered).toMatch(/^a=crypto:/m);
    // The callee's re-INVITE reaches the caller in SRTP; the callee's answer stays plain.
    const toCallee = await session.reinvite('callee', dialer.callee!.sdp(9));
    expect(leg.reoffers.at(-1)).toMatch(/^m=audio \d+ RTP\/SAVP /m);
    expect(leg.reoffers.at(-1)).toMatch(/^a=crypto:/m);
    expect(toCallee).toMatch(/^m=audio \d+ RTP\/AVP /m);
    await session.remoteBye('caller');
    phone.close();
    dialer.callee!.close();
    await h.client.delete({ 'call-id': front });
    await expectReleased();
  }, 30_000);

  it('drachtio gone (disconnect): no BYE is attempted to either side, the ending is logged once and nothing at warn', async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const dialer = new FakeDialer();
    const { session, leg, caller, events } = await newTestCall(h, bridgeRule, { dialer, services: h.services({ logger }) });
    await session.start();
    await session.close('disconnect');
    caller.close();
    dialer.callee!.close();
    expect(leg.byes).toBe(0);
    expect(dialer.byes).toBe(0);
    expect(events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'disconnect' });
    expect(lines.filter((l) => l.msg === 'call ended')).toHaveLength(1);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    await expectReleased();
  }, 30_000);

  it('refuses a re-INVITE before the call is up, with a typed error', async () => {
    const { session, caller } = await newTestCall(h, answerRule);
    await expect(session.reinvite('caller', caller.sdp())).rejects.toMatchObject({ code: 'CALL_STATE', message: expect.stringMatching(/re-INVITE refused/) });
    await session.close('hangup');
    caller.close();
  });

  it('records a SIPREC session: each stream its own party, named from the metadata', async () => {
    const alice = await new RtpEndpoint('PCMU').open();
    const bob = await new RtpEndpoint('PCMU').open();
    const siprec = twoPartySiprecOffer(alice, bob);
    const recorder: CallRule = { name: 'recorder', action: 'siprec', labels: ['recording'] };
    const { session, leg, events } = await newTestCall(h, recorder, { caller: alice, recording: toRecordingOffer(siprec) });
    await session.start();
    // The SRS answers every stream recvonly, keeping the labels.
    expect(leg.answered!.match(/a=recvonly/g)).toHaveLength(2);
    expect(leg.answered).toContain('a=label:2');
    await Promise.all([alice.send(leg.answered!, speechPcmu, 0x111, 0), bob.send(leg.answered!, speechPcmu, 0x222, 1)]);
    // Hold: the recording client marks both streams inactive.
    const held = await session.reinvite('caller', siprec.sdp.replaceAll('a=sendonly', 'a=inactive'));
    expect(held.match(/a=inactive/g)).toHaveLength(2);
    // Updated metadata (Bob's line transferred to Carol): the party keeps its name, the update says who sends now.
    const transferred = twoPartySiprecOffer(alice, bob, {
      metadata: TWO_PARTY_METADATA.replace('<name>Bob</name>', '<name>Carol</name>').replace('sip:bob@', 'sip:carol@'),
      previous: siprec,
    });
    await session.reinvite('caller', transferred.sdp, toRecordingOffer(transferred));
    await session.remoteBye('caller');
    alice.close();
    bob.close();
    const all = events();
    expect(all[0]).toMatchObject({ kind: 'call.started', rule: 'recorder', parties: [{ name: 'Alice' }, { name: 'Bob' }] });
    expect(finalsOf(all, 'Alice').length).toBeGreaterThanOrEqual(1);
    expect(finalsOf(all, 'Bob').length).toBeGreaterThanOrEqual(1);
    const updates = all.filter((e) => e.kind === 'call.updated');
    expect(updates[0]).toMatchObject({ hold: true });
    expect(updates[1]).toMatchObject({ hold: false, participants: [{ party: 'Alice', name: 'Alice' }, { party: 'Bob', name: 'Carol', aor: 'sip:carol@example.com' }] });
    expect(all.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
    await expectReleased();
  }, 60_000);

  it('SIPREC metadata that is not well-formed XML: recorded with positional names, said in the 200 OK and in call.started', async () => {
    const alice = await new RtpEndpoint('PCMU').open();
    const bob = await new RtpEndpoint('PCMU').open();
    const siprec = twoPartySiprecOffer(alice, bob, { metadata: TWO_PARTY_METADATA.replace('</recording>', '<broken>') });
    const recorder: CallRule = { name: 'recorder', action: 'siprec', labels: [] };
    const { session, leg, events } = await newTestCall(h, recorder, { caller: alice, recording: toRecordingOffer(siprec) });
    await session.start();
    expect(leg.answerWarnings).toHaveLength(1);
    expect(leg.answerWarnings[0]).toMatch(/^399 whisperline "rs-metadata unusable: .*; streams named by position"$/);
    expect(events()[0]).toMatchObject({ kind: 'call.started', parties: [{ name: 'caller' }, { name: 'callee' }], warning: expect.stringMatching(/rs-metadata unusable/) });
    await session.remoteBye('caller');
    alice.close();
    bob.close();
    await expectReleased();
  }, 30_000);

  it('CANCEL before the answer: nothing answered, nothing left behind, and the abandoned call is on record (487)', async () => {
    const { session, leg, events, caller } = await newTestCall(h, answerRule);
    let release!: () => void;
    leg.gate = new Promise((r) => (release = r));
    const starting = session.start();
    while (session.state.name === 'new') await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50)); // the offer and the local answer are in rtpengine
    const cancelled = session.cancel();
    release();
    await expect(starting).rejects.toMatchObject({ code: 'CALL_ENDED', message: expect.stringMatching(/ended while starting \(cancel\)/) });
    await cancelled;
    caller.close();
    expect(leg.rejected).toBeUndefined(); // the SIP stack answers CANCEL with 487 itself
    expect(events().map((e) => e.kind)).toEqual(['call.started', 'ended', 'call.ended']);
    expect(events().at(-1)).toMatchObject({ reason: 'cancel', sipStatus: 487, durationMs: 0 });
    await expectReleased();
  });

  it('a failure after the offer but before the 200 OK rejects the INVITE (500) and releases everything', async () => {
    const { session, leg, events, caller } = await newTestCall(h, answerRule);
    leg.failAnswer = true;
    await expect(session.start()).rejects.toMatchObject({ code: 'SIGNALLING_FAILED' });
    caller.close();
    expect(leg.rejected).toMatchObject({ status: 500, reason: 'Server Internal Error' });
    expect(session.state).toMatchObject({ name: 'closed', reason: 'failed', sipStatus: 500 });
    expect(events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'failed', sipStatus: 500, error: { code: 'SIGNALLING_FAILED' } });
    await expectReleased();
  });

  it("relays a busy callee's 486 to the caller, and the failed call is on record with its status", async () => {
    const { session, leg, events, caller } = await newTestCall(h, { ...bridgeRule, labels: ['queue-a'] }, { dialer: new RejectingDialer(486, 'Busy Here') });
    await expect(session.start()).rejects.toMatchObject({ code: 'CALLEE_REJECTED' });
    caller.close();
    expect(leg.rejected).toEqual({ status: 486, reason: 'Busy Here', headers: {} });
    const all = events();
    expect(all[0]).toMatchObject({ kind: 'call.started', rule: 'agents', labels: ['queue-a'] });
    expect(all.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'failed', sipStatus: 486, durationMs: 0, error: { code: 'CALLEE_REJECTED' } });
    await expectReleased();
  });

  it("relays a 603 Decline; a callee's 503 becomes 500 so the caller's proxy does not take the gateway out of service", async () => {
    for (const [status, reason, relayed] of [
      [603, 'Decline', 603],
      [480, 'Temporarily Unavailable', 480],
      [503, 'Service Unavailable', 500],
    ] as const) {
      const { session, leg, caller } = await newTestCall(h, bridgeRule, { dialer: new RejectingDialer(status, reason) });
      await expect(session.start()).rejects.toMatchObject({ code: 'CALLEE_REJECTED' });
      caller.close();
      expect(leg.rejected?.status).toBe(relayed);
    }
    await expectReleased();
  });

  it('ports exhausted: 503 with Retry-After before anything is answered; the call is on record', async () => {
    // A receiver with one RTP port, already taken: the call's sink cannot open.
    const port = await freePortRange();
    const tiny = new RtpReceiver({ bindAddress: '127.0.0.1', portMin: port, portMax: port, reorderWindowMs: 60 });
    const squatter = await tiny.openParty(new Map(), { audio: () => undefined, advance: () => undefined, comfortNoise: () => undefined, streamChange: () => undefined, dtmf: () => undefined, end: () => undefined });
    const services = { ...h.services(), receiver: tiny, subscriber: new MediaSubscriber(h.client, tiny, 'PCMU') };
    const { session, leg, events, caller } = await newTestCall(h, answerRule, { services });
    await expect(session.start()).rejects.toMatchObject({ code: 'PORTS_EXHAUSTED', retryable: true });
    caller.close();
    expect(leg.answered).toBeUndefined();
    expect(leg.rejected).toEqual({ status: 503, reason: 'Service Unavailable', headers: { 'Retry-After': '5' } });
    expect(events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'failed', sipStatus: 503, error: { code: 'PORTS_EXHAUSTED' } });
    squatter.close();
    expect(await h.rtpe.numSessions()).toBe(0);
    expect(tiny.openPorts).toBe(0);
    expect(tiny.openSinks).toBe(0);
    tiny.close();
  });

  it('an offer that cannot be parsed: 488 with a Warning saying what is wrong, nothing reaches rtpengine', async () => {
    const offers: [string, RegExp][] = [
      ['this is not SDP', /does not start with v=0/],
      ['v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio abc RTP/AVP 0\r\n', /m= line 1 is malformed/],
      ['v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n', /offers no audio stream/],
      // 200 KB: more than one ng datagram can carry to rtpengine.
      [`v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n${'a=x-filler:0123456789abcdef\r\n'.repeat(7000)}`, /SDP of \d+ characters is larger than 65536/],
    ];
    for (const [offer, why] of offers) {
      const { session, leg, events, caller } = await newTestCall(h, answerRule, { offer });
      await expect(session.start()).rejects.toMatchObject({ code: 'SDP_INVALID' });
      caller.close();
      expect(leg.rejected?.status).toBe(488);
      expect(leg.rejected?.reason).toBe('Not Acceptable Here');
      expect(leg.rejected?.headers.Warning).toMatch(/^399 whisperline ".*"$/);
      expect(leg.rejected?.headers.Warning).toMatch(why);
      expect(events().at(-1)).toMatchObject({ kind: 'call.ended', sipStatus: 488, error: { code: 'SDP_INVALID' } });
    }
    await expectReleased();
  });

  it('an offer rtpengine itself refuses is answered 488 too (RTPENGINE_SDP)', async () => {
    // Well-formed lines the gateway passes on, an address rtpengine cannot parse: its "Failed to parse SDP".
    const offer = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 999.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n';
    const { session, leg, caller } = await newTestCall(h, answerRule, { offer });
    await expect(session.start()).rejects.toMatchObject({ code: 'RTPENGINE_SDP' });
    caller.close();
    expect(leg.rejected?.status).toBe(488);
    expect(leg.rejected?.headers.Warning).toMatch(/^399 whisperline "rtpengine offer failed: Failed to parse SDP"$/);
    await expectReleased();
  });

  it('an IPv6 offer where rtpengine has only IPv4: answered in IPv4 with a Warning (301) that says why', async () => {
    const offer = 'v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 40200 RTP/AVP 0\r\na=sendrecv\r\n';
    const { session, leg, caller } = await newTestCall(h, answerRule, { offer });
    await session.start();
    expect(leg.answered).toMatch(/^c=IN IP4 /m);
    expect(leg.answerWarnings).toEqual(['301 whisperline "IPv6 offered, answered in IPv4: rtpengine has no IPv6 media interface"']);
    await session.remoteBye('caller');
    caller.close();
    await expectReleased();
  });

  it('an IPv6 offer where rtpengine has an IPv6 interface: answered in IPv6, the gateway side kept in its own family', async () => {
    const ports = rtpPortRange();
    const dual = await startTestRtpengine(ports.rtpengine.min, ports.rtpengine.max, { extraArgs: ['--interface=::1'] });
    const client = new RtpengineClient({ host: dual.ngHost, port: dual.ngPort });
    try {
      const services = { ...h.services(), rtpengine: client, subscriber: new MediaSubscriber(client, h.receiver, 'PCMU') };
      const offer = 'v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 40202 RTP/AVP 0\r\na=sendrecv\r\n';
      const { session, leg, caller } = await newTestCall(h, answerRule, { offer, services });
      await session.start();
      expect(leg.answered).toMatch(/^c=IN IP6 ::1/m);
      expect(leg.answerWarnings).toEqual([]);
      await session.remoteBye('caller');
      caller.close();
      expect(await dual.numSessions()).toBe(0);
    } finally {
      await client.close();
      await dual.stop();
      ports.release();
    }
  });

  it('shutdown drain: new calls get 503, live calls are ended after the grace period', async () => {
    const registry = new CallRegistry({ maxCalls: 10, logger: log });
    const { session, leg, events, caller } = await newTestCall(h, answerRule);
    expect(registry.admit()).toEqual({ ok: true });
    registry.add(session);
    await session.start();
    const draining = registry.drain(100);
    expect(registry.admit()).toMatchObject({ ok: false, status: 503, reason: 'Shutting Down' });
    await draining;
    caller.close();
    expect(registry.size).toBe(0);
    expect(leg.byes).toBe(1);
    expect(events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'shutdown' });
    await expectReleased();
  });

  it('refuses calls beyond maxCalls with 503', async () => {
    const registry = new CallRegistry({ maxCalls: 1, logger: log });
    const { session, caller } = await newTestCall(h, answerRule);
    registry.add(session);
    expect(registry.admit()).toMatchObject({ ok: false, status: 503, reason: 'Too Many Calls', retryAfterSec: 5 });
    await session.close('hangup');
    await session.ended;
    caller.close();
    expect(registry.admit()).toEqual({ ok: true });
  });

  it('a bridge whose dialer fails without a SIP status: 480, and a caller that goes away mid-dial cancels the outbound INVITE', async () => {
    const unreachable: OutboundDialer = { dial: async () => Promise.reject(new Error('ECONNREFUSED')) };
    const a = await newTestCall(h, bridgeRule, { dialer: unreachable });
    await expect(a.session.start()).rejects.toMatchObject({ code: 'CALLEE_UNREACHABLE' });
    a.caller.close();
    expect(a.leg.rejected?.status).toBe(480);

    let aborted = false;
    const ringing: OutboundDialer = {
      dial: (_t, _o, _i, signal) =>
        new Promise((_resolve, reject) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(new Error('487 Request Terminated'));
          }),
        ),
    };
    const b = await newTestCall(h, bridgeRule, { dialer: ringing });
    const starting = b.session.start();
    while (b.session.state.name === 'new') await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    await b.session.cancel();
    await expect(starting).rejects.toMatchObject({ code: 'CALL_ENDED' });
    b.caller.close();
    expect(aborted).toBe(true);
    expect(b.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'cancel', sipStatus: 487 });
    await expectReleased();
  });
});

/** An even UDP port (the RTP receiver binds even ports) that nothing listens on right now. */
async function freePortRange(): Promise<number> {
  const { createSocket } = await import('node:dgram');
  for (;;) {
    const s = createSocket('udp4');
    const port = await new Promise<number>((resolve) => s.bind(0, '127.0.0.1', () => resolve(s.address().port)));
    await new Promise<void>((r) => s.close(() => r()));
    if (port % 2 === 0) return port;
  }
}
