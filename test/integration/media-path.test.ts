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
import { RtpEndpoint, sdpAddress, type EndpointCodec } from '../support/rtp-endpoint.js';
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
    advance: (due) => c.audio.advance(due),
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

  it('a caller that switches codecs mid-stream (PCMU → PCMA → Opus) is passed through as sent: no transcoding, no invented silence, one clock', async () => {
    const callId = `media-switch-${Math.random().toString(36).slice(2)}`;
    const { createSocket } = await import('node:dgram');
    const phone = createSocket('udp4');
    await new Promise<void>((r) => phone.bind(0, '127.0.0.1', r));
    const multi = (port: number): string =>
      `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0 8 96 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n`;
    const callee = await new RtpEndpoint('PCMU').open();
    await client.offer({ 'call-id': callId, 'from-tag': 'caller-tag', sdp: multi(phone.address().port), replace: ['origin', 'session-connection'], ICE: 'remove', 'transport-protocol': 'RTP/AVP' });
    const answer = await client.answer({ 'call-id': callId, 'from-tag': 'caller-tag', 'to-tag': 'callee-tag', sdp: multi(callee.port), replace: ['origin', 'session-connection'], ICE: 'remove', 'transport-protocol': 'RTP/AVP' });
    const remote = sdpAddress(answer.sdp!);
    const caller = capture('caller', performance.now());
    const fork = await new MediaSubscriber(client, receiver, 'PCMU').subscribe({ callId, fromTag: 'caller-tag', label: 'caller' }, sinkOf(caller));
    expect(fork.transcoded).toBe(false);
    const pcm = sine(CALLER_HZ, 8000, 1000, 0.3);
    const opus = new OpusPacketEncoder(48000).encodeAll(sine(CALLER_HZ, 48000, 400, 0.3));
    const packets: Buffer[] = [];
    for (let i = 0; i < 25; i++) packets.push(buildRtp({ payloadType: 0, sequence: 100 + i, timestamp: 8000 + i * 160, ssrc: 0xc0dec }, encodeUlawBuffer(pcm.subarray(i * 160, (i + 1) * 160))));
    for (let i = 25; i < 50; i++) packets.push(buildRtp({ payloadType: 8, sequence: 100 + i, timestamp: 8000 + i * 160, ssrc: 0xc0dec }, encodeAlawBuffer(pcm.subarray(i * 160, (i + 1) * 160))));
    // Opus on the same SSRC: its timestamps run in 48 kHz from wherever the sender's Opus clock is.
    opus.forEach((p, k) => packets.push(buildRtp({ payloadType: 96, sequence: 150 + k, timestamp: 7_000_000 + k * 960, ssrc: 0xc0dec }, p)));
    for (const p of packets) {
      phone.send(p, remote.port, remote.address);
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 150));
    const stats = fork.stats();
    await fork.close();
    await client.delete({ 'call-id': callId });
    phone.close();
    callee.close();
    // Each codec arrived as sent, and the party's audio is one continuous tone.
    expect(stats).toMatchObject({ codec: 'opus', undecodable: 0, unknownPayloadType: 0 });
    expect(stats.packets).toBeGreaterThanOrEqual(packets.length - 2);
    expect(caller.audio.clockJumps).toBe(0);
    // At most a frame or two of concealment at the switches; no 600 ms of invented silence.
    expect(caller.audio.filledSamples + caller.audio.concealedSamples).toBeLessThan(40 * 16);
    expectContiguous(caller.frames);
    expect(caller.frames.length).toBeGreaterThanOrEqual(packets.length - 3);
  });

  it('the playout clock: a 5 s pause in the packets (DTX) is 5 s of frames, on one continuous clock; the talkspurt after it is on time', async () => {
    const call = await anchor('PCMU');
    const t0 = performance.now();
    const caller = capture('caller', t0);
    const fork = await new MediaSubscriber(client, receiver, 'PCMU').subscribe({ callId: call.callId, fromTag: 'caller-tag', label: 'caller' }, sinkOf(caller));
    const sentAt = performance.now();
    await call.caller.send(call.callerRemote, tonePayloads('PCMU', CALLER_HZ, 400));
    await new Promise((r) => setTimeout(r, 5000));
    // Frames kept coming through the pause, without a packet.
    const duringPause = caller.frames.length;
    expect(duringPause).toBeGreaterThanOrEqual(Math.floor((5400 - 300) / 20));
    // The next talkspurt: timestamps moved on by the pause, as a DTX sender's do.
    const resumedAt = performance.now();
    const resume = tonePayloads('PCMU', CALLEE_HZ, 400);
    const resumeTimestamp = 5000 + Math.round((resumedAt - sentAt) * 8);
    await call.caller.send(call.callerRemote, resume, undefined, 0, { sequence: 1020, timestamp: resumeTimestamp });
    await new Promise((r) => setTimeout(r, 100));
    await fork.close();
    await client.delete({ 'call-id': call.callId });
    call.caller.close();
    call.callee.close();
    expectContiguous(caller.frames);
    // The 1 kHz talkspurt sits where its RTP timestamps put it on the call clock (the first
    // talkspurt's place plus the timestamp distance, within a frame or two), not right after the
    // first talkspurt: media time, whatever the machine's scheduling did meanwhile.
    const first1k = caller.frames.find((f) => f.startMs > 1000 && goertzelDb(f.samples, CALLEE_HZ, 16000) > goertzelDb(f.samples, CALLER_HZ, 16000) + 20)!;
    const first440 = caller.frames.find((f) => goertzelDb(f.samples, CALLER_HZ, 16000) > goertzelDb(f.samples, CALLEE_HZ, 16000) + 20)!;
    expect(Math.abs(first1k.startMs - (first440.startMs + (resumeTimestamp - 5000) / 8))).toBeLessThanOrEqual(40);
    expect(caller.audio.lateSamples).toBe(0);
    expect(caller.frames.at(-1)!.startMs - caller.frames[0]!.startMs).toBeGreaterThan(resumedAt - sentAt + 300);
  }, 30_000);

  it('through rtpengine: a burst reordered within the window loses nothing; after a 1 s stall released as one burst, what is within the fill delay is kept, the rest is late, the clock stays continuous', async () => {
    const call = await anchor('PCMU');
    const t0 = performance.now();
    const caller = capture('caller', t0);
    const fork = await new MediaSubscriber(client, receiver, 'PCMU').subscribe({ callId: call.callId, fromTag: 'caller-tag', label: 'caller' }, sinkOf(caller));
    const tone = tonePayloads('PCMU', CALLER_HZ, 4000);
    const packet = (i: number) => ({ sequence: 1000 + i, timestamp: 5000 + 160 * i, payload: tone[i]! });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const started = performance.now();
    /** Packet i is due 20·i ms after the start; sends each batch when its last packet is due. */
    const sendDue = async (batch: number[]): Promise<void> => {
      const due = started + 20 * Math.max(...batch);
      await sleep(Math.max(0, due - performance.now()));
      call.caller.sendNow(call.callerRemote, batch.map(packet));
    };
    // 1 s in time, then 1 s with each pair sent swapped (packet 2k+1 before 2k: within 60 ms).
    for (let i = 0; i < 50; i++) await sendDue([i]);
    for (let i = 50; i < 100; i += 2) await sendDue([i + 1, i]);
    await sleep(200);
    const reordered = fork.stats();
    expect(reordered).toMatchObject({ lost: 0, late: 0, duplicate: 0 });
    expect(caller.audio.lateSamples).toBe(0);
    // A 1 s stall (packets 100-149 held back), released as one burst, then in time again.
    await sleep(Math.max(0, started + 20 * 150 - performance.now()));
    call.caller.sendNow(call.callerRemote, Array.from({ length: 50 }, (_, k) => packet(100 + k)));
    for (let i = 150; i < 200; i++) await sendDue([i]);
    await sleep(300);
    const after = fork.stats();
    await fork.close();
    await client.delete({ 'call-id': call.callId });
    call.caller.close();
    call.callee.close();
    // Every packet arrived; the ones older than the fill delay (200 ms) when they came were filled already.
    expect(after.packets).toBe(200);
    // This process both sends and receives: on a machine busy enough to starve it past the
    // reorder window, one gap may be given up (and its packet then counted late) — seen once in a
    // full suite on 2 busy cores. More than that is a real loss.
    expect(after.lost).toBeLessThanOrEqual(1);
    expect(after.late).toBeGreaterThanOrEqual(30);
    expect(after.late).toBeLessThanOrEqual(45);
    // Nothing twice and no gap: one frame per 20 ms over the whole call.
    expectContiguous(caller.frames);
    const spanMs = caller.frames.at(-1)!.startMs - caller.frames[0]!.startMs;
    expect(Math.abs(spanMs - 199 * 20)).toBeLessThanOrEqual(100);
  }, 30_000);

  it('leaves list numsessions at 0 and no gateway sockets open after every call', async () => {
    expect(await rtpe.numSessions()).toBe(0);
    expect(receiver.openPorts).toBe(0);
  });
});
