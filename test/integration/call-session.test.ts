/**
 * CallSession against a real rtpengine, real VAD and real whisper.cpp (tiny model), with
 * synthetic RTP endpoints standing in for both SIP parties and fake SIP legs driving the session
 * through its signalling port (drachtio is not needed for what is tested here). Every ending path
 * must leave rtpengine with no session and the gateway with no socket.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WhisperEngine } from '../../src/asr/whisper/engine.js';
import { CallRegistry } from '../../src/call/registry.js';
import { CallSession } from '../../src/call/call-session.js';
import type { CallEvent } from '../../src/transcripts/events.js';
import type { OutboundDialer } from '../../src/call/signalling.js';
import { encodeUlawBuffer } from '../../src/audio/g711.js';
import { Resampler } from '../../src/audio/resampler.js';
import type { Config } from '../../src/config/schema.js';
import { MediaSubscriber } from '../../src/media/subscription.js';
import { RtpengineClient } from '../../src/media/rtpengine/client.js';
import { RtpReceiver } from '../../src/media/rtp/receiver.js';
import type { DialplanRule } from '../../src/sip/dialplan.js';
import type { SiprecOffer } from '../../src/sip/siprec.js';
import { BatchedVad } from '../../src/vad/batched-vad.js';
import { FakeDialer, FakeInboundLeg } from '../support/fake-sip.js';
import { RtpEndpoint } from '../support/rtp-endpoint.js';
import { TWO_PARTY_METADATA, twoPartySiprecOffer } from '../support/siprec.js';
import { rtpPortRange, startTestRtpengine, type TestRtpengine } from '../support/rtpengine.js';
import { speechFixture } from '../support/speech.js';
import { randomModelConfig, startTinyEngine } from '../support/whisper.js';

const log = pino({ level: 'silent' });
let config: Config;
let rtpe: TestRtpengine;
let ports: ReturnType<typeof rtpPortRange>;
let client: RtpengineClient;
let receiver: RtpReceiver;
let subscriber: MediaSubscriber;
let vad: BatchedVad;
let engine: WhisperEngine;
let speechPcmu: Uint8Array[];

beforeAll(async () => {
  config = randomModelConfig();
  config.transcripts.partials = false;
  ports = rtpPortRange();
  rtpe = await startTestRtpengine(ports.rtpengine.min, ports.rtpengine.max);
  client = new RtpengineClient({ host: rtpe.ngHost, port: rtpe.ngPort });
  receiver = new RtpReceiver({ bindAddress: '127.0.0.1', portMin: ports.gateway.min, portMax: ports.gateway.max, reorderWindowMs: 60 });
  subscriber = new MediaSubscriber(client, receiver, 'PCMU');
  vad = await BatchedVad.create(config.vad);
  vad.start();
  engine = await startTinyEngine(config, log);
  const speech = await speechFixture({ sentences: ['I would like to check my balance.'], gapsMs: [], sampleRate: 8000, leadMs: 200, tailMs: 1200 });
  const pcm8k = new Resampler(16000, 8000).process(speech.samples16k);
  speechPcmu = [];
  for (let i = 0; i + 160 <= pcm8k.length; i += 160) speechPcmu.push(encodeUlawBuffer(pcm8k.subarray(i, i + 160)));
}, 300_000);

afterAll(async () => {
  vad?.stop();
  await engine?.close();
  await vad?.close();
  receiver?.close();
  await client?.close();
  await rtpe?.stop();
  ports?.release();
});

const answerRule: DialplanRule = { name: 'line', match: { kind: 'any' }, action: 'answer', labels: ['test'], parties: { caller: { label: 'customer', transcribe: true } } };
const bridgeRule: DialplanRule = { name: 'agents', match: { kind: 'any' }, action: 'bridge', target: 'sip:agents@127.0.0.1', labels: [] };

async function newCall(
  rule: DialplanRule,
  dialer?: OutboundDialer,
  recording?: { caller: RtpEndpoint; offer: SiprecOffer },
): Promise<{ session: CallSession; leg: FakeInboundLeg; events: CallEvent[]; caller: RtpEndpoint }> {
  const caller = recording?.caller ?? (await new RtpEndpoint('PCMU').open());
  const leg = new FakeInboundLeg(`call-${Math.random().toString(36).slice(2)}`, caller, recording?.offer.sdp);
  const events: CallEvent[] = [];
  const session = new CallSession({
    inbound: leg,
    rule,
    rtpengine: client,
    receiver,
    subscriber,
    vad,
    recognizer: engine,
    vadConfig: config.vad,
    transcripts: config.transcripts,
    logger: log,
    onEvent: (e) => events.push(e),
    ...(dialer ? { dialer } : {}),
    ...(recording ? { siprec: recording.offer } : {}),
  });
  return { session, leg, events, caller };
}

async function expectReleased(): Promise<void> {
  expect(await rtpe.numSessions()).toBe(0);
  expect(receiver.openPorts).toBe(0);
  expect(receiver.openSinks).toBe(0);
}

const finalsOf = (events: CallEvent[], party: string): CallEvent[] => events.filter((e) => e.kind === 'final' && 'party' in e && e.party === party);

describe('CallSession against a real rtpengine', () => {
  it('answers a call, transcribes the caller, and ends cleanly on the caller\'s BYE', async () => {
    const { session, leg, events, caller } = await newCall(answerRule);
    await session.start();
    expect(session.state.name).toBe('active');
    expect(leg.answered).toContain('m=audio');
    await caller.send(leg.answered!, speechPcmu);
    await session.remoteBye('caller');
    caller.close();
    const kinds = events.map((e) => e.kind);
    expect(kinds[0]).toBe('call.started');
    expect(events[0]).toMatchObject({ rule: 'line', labels: ['test'], parties: [{ name: 'caller', label: 'customer' }] });
    expect(finalsOf(events, 'caller').length).toBeGreaterThanOrEqual(1);
    expect(kinds.slice(-2)).toEqual(['ended', 'call.ended']);
    const ended = events.at(-1)!;
    expect(ended).toMatchObject({ reason: 'bye-caller' });
    expect((ended as { parties: Record<string, { packets: number }> }).parties.caller!.packets).toBeGreaterThan(50);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(leg.byes).toBe(0);
    expect(session.state).toMatchObject({ name: 'closed', reason: 'bye-caller' });
    await expectReleased();
  }, 60_000);

  it('bridges to a callee, transcribes both parties, and hangs up the caller when the callee says BYE', async () => {
    const dialer = new FakeDialer();
    const { session, leg, events, caller } = await newCall(bridgeRule, dialer);
    await session.start();
    await Promise.all([caller.send(leg.answered!, speechPcmu), dialer.callee!.send(dialer.offer!, speechPcmu)]);
    // Each endpoint heard the other through rtpengine.
    expect(caller.received.length).toBeGreaterThan(50);
    expect(dialer.callee!.received.length).toBeGreaterThan(50);
    await session.remoteBye('callee');
    caller.close();
    dialer.callee!.close();
    expect(finalsOf(events, 'caller').length).toBeGreaterThanOrEqual(1);
    expect(finalsOf(events, 'callee').length).toBeGreaterThanOrEqual(1);
    expect(leg.byes).toBe(1);
    expect(dialer.byes).toBe(0);
    expect(events.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-callee' });
    await expectReleased();
  }, 60_000);

  it('passes hold and resume re-INVITEs through rtpengine and keeps transcribing after resume', async () => {
    const { session, leg, events, caller } = await newCall(answerRule);
    await session.start();
    const holdAnswer = await session.reinvite('caller', caller.sdp(5).replace('a=sendrecv', 'a=sendonly'));
    expect(holdAnswer).toMatch(/a=recvonly/);
    const resumeAnswer = await session.reinvite('caller', caller.sdp(6));
    expect(resumeAnswer).toMatch(/a=sendrecv/);
    await caller.send(resumeAnswer, speechPcmu);
    await session.remoteBye('caller');
    caller.close();
    const updates = events.filter((e) => e.kind === 'call.updated');
    expect(updates).toMatchObject([
      { by: 'caller', hold: true },
      { by: 'caller', hold: false },
    ]);
    // The fork was subscribed afresh and the caller's speech after the resume was transcribed.
    expect(finalsOf(events, 'caller').length).toBeGreaterThanOrEqual(1);
    expect(leg.answered).toBeDefined();
    await expectReleased();
  }, 60_000);

  it('refuses a re-INVITE before the call is up', async () => {
    const { session, caller } = await newCall(answerRule);
    await expect(session.reinvite('caller', caller.sdp())).rejects.toThrow(/re-INVITE refused/);
    caller.close();
  });

  it('records a SIPREC session: each stream its own party, named from the metadata', async () => {
    const alice = await new RtpEndpoint('PCMU').open();
    const bob = await new RtpEndpoint('PCMU').open();
    const siprec = twoPartySiprecOffer(alice, bob);
    const recorder: DialplanRule = { name: 'recorder', match: { kind: 'siprec' }, action: 'siprec', labels: ['recording'] };
    const { session, leg, events } = await newCall(recorder, undefined, { caller: alice, offer: siprec });
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
      previous: session.siprecOffer!,
    });
    await session.reinvite('caller', transferred.sdp, transferred);
    await session.remoteBye('caller');
    alice.close();
    bob.close();
    expect(events[0]).toMatchObject({ kind: 'call.started', rule: 'recorder', parties: [{ name: 'Alice' }, { name: 'Bob' }] });
    expect(finalsOf(events, 'Alice').length).toBeGreaterThanOrEqual(1);
    expect(finalsOf(events, 'Bob').length).toBeGreaterThanOrEqual(1);
    const updates = events.filter((e) => e.kind === 'call.updated');
    expect(updates[0]).toMatchObject({ hold: true });
    expect(updates[1]).toMatchObject({ hold: false, participants: [{ party: 'Alice', name: 'Alice' }, { party: 'Bob', name: 'Carol', aor: 'sip:carol@example.com' }] });
    expect(events.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
    await expectReleased();
  }, 60_000);

  it('CANCEL before the answer: nothing is answered, nothing is left behind', async () => {
    const { session, leg, events, caller } = await newCall(answerRule);
    let release!: () => void;
    leg.gate = new Promise((r) => (release = r));
    const starting = session.start();
    while (session.state.name === 'new') await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50)); // the offer and the local answer are in rtpengine
    const cancelled = session.cancel();
    release();
    await expect(starting).rejects.toThrow(/ended while starting \(cancel\)/);
    await cancelled;
    caller.close();
    expect(leg.rejected).toBeUndefined(); // the SIP stack answers CANCEL with 487 itself
    expect(events).toEqual([]);
    await expectReleased();
  });

  it('a failure after the offer but before the 200 OK rejects the INVITE and releases everything', async () => {
    const { session, leg, caller } = await newCall(answerRule);
    leg.failAnswer = true;
    await expect(session.start()).rejects.toThrow('no ACK');
    caller.close();
    expect(leg.rejected).toEqual({ status: 500, reason: 'Server Internal Error' });
    expect(session.state).toMatchObject({ name: 'closed', reason: 'failed' });
    await expectReleased();
  });

  it('a bridge whose callee cannot be reached fails the call cleanly', async () => {
    const failing: OutboundDialer = { dial: async () => Promise.reject(new Error('486 Busy Here')) };
    const { session, leg, caller } = await newCall(bridgeRule, failing);
    await expect(session.start()).rejects.toThrow('486 Busy Here');
    caller.close();
    expect(leg.rejected?.status).toBe(500);
    await expectReleased();
  });

  it('shutdown drain: new calls get 503, live calls are ended after the grace period', async () => {
    const registry = new CallRegistry({ maxCalls: 10, logger: log });
    const { session, leg, events, caller } = await newCall(answerRule);
    expect(registry.admit()).toEqual({ ok: true });
    registry.add(session);
    await session.start();
    const draining = registry.drain(100);
    expect(registry.admit()).toMatchObject({ ok: false, status: 503, reason: 'Shutting Down' });
    await draining;
    caller.close();
    expect(registry.size).toBe(0);
    expect(leg.byes).toBe(1);
    expect(events.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'shutdown' });
    await expectReleased();
  });

  it('refuses calls beyond maxCalls with 503', async () => {
    const registry = new CallRegistry({ maxCalls: 1, logger: log });
    const { session } = await newCall(answerRule);
    registry.add(session);
    expect(registry.admit()).toMatchObject({ ok: false, status: 503, reason: 'Too Many Calls', retryAfterSec: 5 });
    await session.close('hangup');
    await session.ended;
    expect(registry.admit()).toEqual({ ok: true });
  });
});
