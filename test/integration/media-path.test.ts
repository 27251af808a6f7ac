/**
 * The media path against a real rtpengine daemon (userspace, loopback): two synthetic endpoints
 * exchange RTP through an anchored call, one subscription per party forks each party's audio to
 * the gateway's receiver, and the decoded 16 kHz frames must carry that party's tone with a
 * contiguous clock.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeUlaw, encodeAlawBuffer, encodeUlawBuffer } from '../../src/audio/g711.js';
import { PartyAudio } from '../../src/audio/party-audio.js';
import type { AudioFrame } from '../../src/audio/frame.js';
import { MediaSubscriber, type MediaSubscription } from '../../src/media/subscription.js';
import type { DtmfEvent } from '../../src/media/rtp/dtmf.js';
import { RtpengineClient } from '../../src/media/rtpengine/client.js';
import { buildRtp } from '../../src/media/rtp/packet.js';
import { RtpReceiver } from '../../src/media/rtp/receiver.js';
import { OpusPacketEncoder } from '../support/opus-encoder.js';
import { RtpEndpoint, type EndpointCodec } from '../support/rtp-endpoint.js';
import { rtpPortRange, startTestRtpengine, type TestRtpengine } from '../support/rtpengine.js';
import { concatSamples, dominantFrequency, goertzelDb, sine } from '../support/signal.js';

const CALLER_HZ = 440;
const CALLEE_HZ = 1000;
const TONE_MS = 1200;

let rtpe: TestRtpengine;
let ports: ReturnType<typeof rtpPortRange>;
let client: RtpengineClient;
let receiver: RtpReceiver;
const workDir = mkdtempSync(join(tmpdir(), 'wl-media-'));

beforeAll(async () => {
  ports = rtpPortRange();
  rtpe = await startTestRtpengine(ports.rtpengine.min, ports.rtpengine.max);
  client = new RtpengineClient({ host: rtpe.ngHost, port: rtpe.ngPort, timeoutMs: 2000 });
  receiver = new RtpReceiver({ bindAddress: '127.0.0.1', portMin: ports.gateway.min, portMax: ports.gateway.max, reorderWindowMs: 60 });
});

afterAll(async () => {
  receiver?.close();
  await client?.close();
  await rtpe?.stop();
  ports?.release();
  rmSync(workDir, { recursive: true, force: true });
});

/** 20 ms payloads of a tone in the endpoint's codec. */
function tonePayloads(codec: EndpointCodec, hz: number, ms: number): Uint8Array[] {
  if (codec === 'opus') return new OpusPacketEncoder(48000).encodeAll(sine(hz, 48000, ms, 0.3));
  const pcm = sine(hz, 8000, ms, 0.3);
  const out: Uint8Array[] = [];
  for (let i = 0; i + 160 <= pcm.length; i += 160) {
    const frame = pcm.subarray(i, i + 160);
    out.push(codec === 'PCMU' ? encodeUlawBuffer(frame) : encodeAlawBuffer(frame));
  }
  return out;
}

interface PartyCapture {
  frames: AudioFrame[];
  audio: PartyAudio;
}

function capture(party: string, t0: number): PartyCapture {
  const frames: AudioFrame[] = [];
  const audio = new PartyAudio(party, (f) => frames.push(f), { callClock: (arrival) => arrival - t0 });
  return { frames, audio };
}

function sinkOf(c: PartyCapture, dtmf: DtmfEvent[] = []): Parameters<MediaSubscriber['subscribe']>[1] {
  return {
    audio: (f, ts, payload, lost, arrival) => c.audio.audio(f, ts, payload, lost, arrival),
    comfortNoise: (level) => c.audio.comfortNoise(level),
    streamChange: (ssrc, arrival) => c.audio.streamChange(ssrc, arrival),
    dtmf: (e) => dtmf.push(e),
    end: () => c.audio.end(),
  };
}

interface AnchoredCall {
  callId: string;
  caller: RtpEndpoint;
  callee: RtpEndpoint;
  /** SDP the caller sends to (rtpengine's side facing the caller). */
  callerRemote: string;
  /** SDP the callee sends to. */
  calleeRemote: string;
}

async function anchor(codec: EndpointCodec): Promise<AnchoredCall> {
  const callId = `media-${codec}-${Math.random().toString(36).slice(2)}`;
  const caller = await new RtpEndpoint(codec).open();
  const callee = await new RtpEndpoint(codec).open();
  const offer = await client.offer({
    'call-id': callId,
    'from-tag': 'caller-tag',
    sdp: caller.sdp(),
    replace: ['origin', 'session-connection'],
    ICE: 'remove',
    'transport-protocol': 'RTP/AVP',
  });
  const answer = await client.answer({
    'call-id': callId,
    'from-tag': 'caller-tag',
    'to-tag': 'callee-tag',
    sdp: callee.sdp(2),
    replace: ['origin', 'session-connection'],
    ICE: 'remove',
    'transport-protocol': 'RTP/AVP',
  });
  return { callId, caller, callee, calleeRemote: offer.sdp!, callerRemote: answer.sdp! };
}

/** Frames of the steady part of the tone (skips the fork's start and the resampler's ramp). */
function steady(frames: AudioFrame[]): Int16Array {
  return concatSamples(frames.slice(5, -3).map((f) => f.samples));
}

function expectContiguous(frames: AudioFrame[]): void {
  const steps = frames.slice(1).map((f, i) => f.startMs - frames[i]!.startMs);
  expect(steps.filter((s) => s !== 20)).toEqual([]);
}

async function runTwoPartyCall(codec: EndpointCodec, transcodeTo?: 'PCMU'): Promise<{ forks: MediaSubscription[]; caller: PartyCapture; callee: PartyCapture }> {
  const call = await anchor(codec);
  const t0 = performance.now();
  const caller = capture('caller', t0);
  const callee = capture('callee', t0);
  const subscriber = new MediaSubscriber(client, receiver, 'PCMU');
  const forks = [
    await subscriber.subscribe({ callId: call.callId, fromTag: 'caller-tag', label: 'caller', ...(transcodeTo ? { transcodeTo } : {}) }, sinkOf(caller)),
    await subscriber.subscribe({ callId: call.callId, fromTag: 'callee-tag', label: 'callee', ...(transcodeTo ? { transcodeTo } : {}) }, sinkOf(callee)),
  ];
  await Promise.all([
    call.caller.send(call.callerRemote, tonePayloads(codec, CALLER_HZ, TONE_MS)),
    call.callee.send(call.calleeRemote, tonePayloads(codec, CALLEE_HZ, TONE_MS)),
  ]);
  await new Promise((r) => setTimeout(r, 150));
  // Each endpoint heard the other through rtpengine: the call itself is anchored correctly.
  expect(call.caller.received.length).toBeGreaterThan(20);
  expect(call.callee.received.length).toBeGreaterThan(20);
  const stats = forks.map((f) => f.stats());
  for (const f of forks) await f.close();
  await client.delete({ 'call-id': call.callId });
  call.caller.close();
  call.callee.close();
  for (const s of stats) expect(s.malformed).toBe(0);
  return { forks, caller, callee };
}

function expectTones(caller: PartyCapture, callee: PartyCapture): void {
  for (const [c, hz, other] of [
    [caller, CALLER_HZ, CALLEE_HZ],
    [callee, CALLEE_HZ, CALLER_HZ],
  ] as const) {
    // ~1.2 s of 20 ms packets; rtpengine's transcoder may swallow the first one.
    expect(c.frames.length).toBeGreaterThanOrEqual(50);
    expectContiguous(c.frames);
    const pcm = steady(c.frames);
    expect(dominantFrequency(pcm, 16000, [CALLER_HZ, CALLEE_HZ, 2000, 3000])).toBe(hz);
    // The other party's tone is not in this party's fork.
    expect(goertzelDb(pcm, hz, 16000) - goertzelDb(pcm, other, 16000)).toBeGreaterThan(30);
  }
}

describe('media path through a real rtpengine', () => {
  it('forks each party of a PCMU call to its own receiver with the right tone and no clock gaps', async () => {
    const { forks, caller, callee } = await runTwoPartyCall('PCMU');
    expect(forks.map((f) => [f.codec, f.transcoded])).toEqual([
      ['PCMU', false],
      ['PCMU', false],
    ]);
    expectTones(caller, callee);
  });

  it('does the same for an Opus call, decoded straight to 16 kHz', async () => {
    const { forks, caller, callee } = await runTwoPartyCall('opus');
    expect(forks.map((f) => f.codec)).toEqual(['opus', 'opus']);
    expectTones(caller, callee);
  });

  it('forks an Opus call as PCMU through codec.transcode', async () => {
    const { forks, caller, callee } = await runTwoPartyCall('opus', 'PCMU');
    expect(forks.map((f) => [f.codec, f.transcoded])).toEqual([
      ['PCMU', true],
      ['PCMU', true],
    ]);
    expectTones(caller, callee);
  });

  it('asks rtpengine for PCMU when the call codec is not decodable (G.722), and receives it', async () => {
    const call = await anchor('G722');
    const t0 = performance.now();
    const caller = capture('caller', t0);
    const fork = await new MediaSubscriber(client, receiver, 'PCMU').subscribe({ callId: call.callId, fromTag: 'caller-tag', label: 'caller' }, sinkOf(caller));
    expect([fork.codec, fork.transcoded]).toEqual(['PCMU', true]);
    // Any byte sequence is valid G.722 (ADPCM): rtpengine decodes it and re-encodes the fork as PCMU.
    let seed = 7;
    const noise = Array.from({ length: 40 }, () => Uint8Array.from({ length: 160 }, () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff));
    await call.caller.send(call.callerRemote, noise);
    await new Promise((r) => setTimeout(r, 150));
    const stats = fork.stats();
    await fork.close();
    await client.delete({ 'call-id': call.callId });
    call.caller.close();
    call.callee.close();
    expect(stats.codec).toBe('PCMU');
    expect(stats.packets).toBeGreaterThan(30);
    expect(stats.undecodable + stats.unknownPayloadType).toBe(0);
    expect(caller.frames.length).toBeGreaterThan(30);
    expectContiguous(caller.frames);
  });

  it('reports DTMF (RFC 4733) sent by the caller once per key press, with audio around it', async () => {
    const call = await anchor('PCMU');
    const caller = capture('caller', performance.now());
    const digits: DtmfEvent[] = [];
    const fork = await new MediaSubscriber(client, receiver, 'PCMU').subscribe({ callId: call.callId, fromTag: 'caller-tag', label: 'caller' }, sinkOf(caller, digits));
    // Key '5' held 100 ms: growing durations, then the end packet three times.
    const event = (duration: number, end: boolean): { event: Uint8Array } => ({ event: Uint8Array.of(5, (end ? 0x80 : 0) | 10, duration >> 8, duration & 0xff) });
    const tone = tonePayloads('PCMU', CALLER_HZ, 400);
    await call.caller.send(call.callerRemote, [
      ...tone.slice(0, 10),
      event(160, false), event(320, false), event(480, false), event(640, false), event(800, true), event(800, true), event(800, true),
      ...tone.slice(10, 20),
    ]);
    await new Promise((r) => setTimeout(r, 150));
    await fork.close();
    await client.delete({ 'call-id': call.callId });
    call.caller.close();
    call.callee.close();
    expect(digits.map((d) => [d.digit, d.durationMs, d.endLost])).toEqual([['5', 100, false]]);
    expectContiguous(caller.frames);
  });

  it('plays a prompt with play media that reaches the caller, and delete leaves no session', async () => {
    const call = await anchor('PCMU');
    const prompt = join(workDir, 'prompt.wav');
    execFileSync('sox', ['-n', '-r', '8000', '-c', '1', '-b', '16', prompt, 'synth', '0.6', 'sine', '700', 'vol', '0.3']);
    // Media must flow from the caller first so rtpengine has learnt where to send.
    await call.caller.send(call.callerRemote, tonePayloads('PCMU', CALLER_HZ, 200));
    const before = call.caller.received.length;
    const reply = await client.playMedia({ 'call-id': call.callId, 'from-tag': 'caller-tag', file: prompt });
    expect(reply.duration).toBeGreaterThan(500);
    await new Promise((r) => setTimeout(r, 900));
    const prompted = call.caller.received.slice(before).filter((p) => p.payloadType === 0);
    expect(prompted.length).toBeGreaterThan(20);
    const pcm = decodeUlaw(Buffer.concat(prompted.map((p) => p.payload)));
    expect(dominantFrequency(pcm, 8000, [440, 700, 1000])).toBe(700);
    await client.delete({ 'call-id': call.callId });
    call.caller.close();
    call.callee.close();
    expect(await rtpe.numSessions()).toBe(0);
  });

  it("stray packets (another SSRC through rtpengine, another source address) change neither the party's audio nor its clock; a real SSRC change is followed", async () => {
    const call = await anchor('PCMU');
    const caller = capture('caller', performance.now());
    const fork = await new MediaSubscriber(client, receiver, 'PCMU').subscribe({ callId: call.callId, fromTag: 'caller-tag', label: 'caller' }, sinkOf(caller));
    const { createSocket } = await import('node:dgram');
    const intruder = createSocket('udp4');
    await new Promise<void>((r) => intruder.bind(0, '127.0.0.1', r));
    const strays = async (): Promise<void> => {
      await new Promise((r) => setTimeout(r, 300));
      // 10 packets of another SSRC from the caller's own socket, through rtpengine, interleaved with the stream.
      const throughRtpengine = call.caller.send(call.callerRemote, tonePayloads('PCMU', CALLEE_HZ, 200), 0x5a5a5a5a);
      // 10 straight to the gateway's socket from an address rtpengine does not send from.
      for (let k = 0; k < 10; k++) {
        intruder.send(buildRtp({ payloadType: 0, sequence: 60000 + k, timestamp: 900000 + 160 * k, ssrc: 0x1000 + call.caller.port }, encodeUlawBuffer(sine(CALLEE_HZ, 8000, 20, 0.3))), fork.port.port, '127.0.0.1');
      }
      await throughRtpengine;
    };
    await Promise.all([call.caller.send(call.callerRemote, tonePayloads('PCMU', CALLER_HZ, TONE_MS)), strays()]);
    await new Promise((r) => setTimeout(r, 150));
    const before = fork.stats();
    expect(before).toMatchObject({ foreign: 10, ssrcChanges: 0 });
    expect(before.ssrcRejected).toBeGreaterThanOrEqual(9);
    expectContiguous(caller.frames);
    // Only the caller's tone made it into the party's audio.
    expect(goertzelDb(steady(caller.frames), CALLEE_HZ, 16000)).toBeLessThan(goertzelDb(steady(caller.frames), CALLER_HZ, 16000) - 30);
    // A real change of source (a transfer, a re-INVITE elsewhere): the new SSRC takes over and plays on the same clock.
    const framesBefore = caller.frames.length;
    await call.caller.send(call.callerRemote, tonePayloads('PCMU', CALLEE_HZ, 600), 0x7b7b7b7b);
    await new Promise((r) => setTimeout(r, 150));
    const after = fork.stats();
    await fork.close();
    await client.delete({ 'call-id': call.callId });
    call.caller.close();
    call.callee.close();
    intruder.close();
    expect(after.ssrcChanges).toBe(1);
    const changed = caller.frames.slice(framesBefore);
    // Nearly all of the new stream is there (its probation packets are kept, not dropped).
    expect(changed.length).toBeGreaterThanOrEqual(28);
    expect(dominantFrequency(concatSamples(changed.slice(5).map((f) => f.samples)), 16000, [CALLER_HZ, CALLEE_HZ])).toBe(CALLEE_HZ);
  });

  it('leaves list numsessions at 0 and no gateway sockets open after every call', async () => {
    expect(await rtpe.numSessions()).toBe(0);
    expect(receiver.openPorts).toBe(0);
  });
});
