/**
 * jambonz applications running on the gateway, written with jambonz's own client libraries
 * (@jambonz/node-client-ws for a WebSocket app, @jambonz/node-client's WebhookResponse for a
 * webhook app), driving calls through the real rtpengine with the fake SIP legs, espeak-ng
 * speaking and whisper.cpp (tiny model) listening.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { audioForkOpener, ForkTotals } from '../../src/feeds/audio-fork.js';
import { appChannelOpener, verbProblems } from '../../src/app/index.js';
import { decodeUlaw, encodeAlawBuffer, encodeUlawBuffer } from '../../src/audio/g711.js';
import { Resampler } from '../../src/audio/resampler.js';
import type { Verb } from '../../src/call/app-channel.js';
import { SUPPORTED_VERBS } from '../../src/call/ivr/runner.js';
import type { CallRule } from '../../src/call/rule.js';
import type { RtpPacket } from '../../src/media/rtp/packet.js';
import { EspeakSynthesizer } from '../../src/tts/espeak/espeak.js';
import { newTestCall, startCallHarness, type CallHarness } from '../support/calls.js';
import { RoutingDialer } from '../support/fake-sip.js';
import { waitFor } from '../support/net.js';
import { rmsDb } from '../support/signal.js';
import { speechFixture } from '../support/speech.js';

// The jambonz libraries are CommonJS without types.
const { createEndpoint } = (await import('@jambonz/node-client-ws')) as unknown as { createEndpoint: (o: { server: Server }) => (o: { path: string }) => NodeJS.EventEmitter };
const { WebhookResponse } = (await import('@jambonz/node-client')) as unknown as { WebhookResponse: new () => Record<string, (...a: unknown[]) => unknown> & { toJSON(): unknown } };

const PROMPT = 'Welcome to the bank. You can say balance, payments, cards, or agent, and I will put you through to the right place.';
let h: CallHarness;
let callerSpeech: Uint8Array[];
const espeak = new EspeakSynthesizer();

const validate = (verbs: readonly Verb[]): { index: number; message: string }[] => verbProblems(verbs, SUPPORTED_VERBS);

beforeAll(async () => {
  h = await startCallHarness();
  const speech = await speechFixture({ sentences: ['I would like to check my balance please.'], gapsMs: [], sampleRate: 8000, leadMs: 100, tailMs: 900 });
  const pcm8k = new Resampler(16000, 8000).process(speech.samples16k);
  callerSpeech = [];
  for (let i = 0; i + 160 <= pcm8k.length; i += 160) callerSpeech.push(encodeUlawBuffer(pcm8k.subarray(i, i + 160)));
}, 300_000);
afterAll(async () => h?.close());
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const services = () => h.services({ synthesizerFor: () => espeak, appChannels: appChannelOpener(), validateVerbs: validate });

async function listening(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

/** The voiced packets the caller's endpoint hears, with arrival times. */
function listen(ep: { received: RtpPacket[] }): { at: number[] } {
  const heard = { at: [] as number[] };
  const push = ep.received.push.bind(ep.received);
  ep.received.push = (...items: RtpPacket[]): number => {
    for (const p of items) if (p.payloadType === 0 && rmsDb(decodeUlaw(p.payload)) > -40) heard.at.push(performance.now());
    return push(...items);
  };
  return heard;
}

/** RFC 4733 packets for a key: 5 updates and 3 end packets, as a phone sends them. */
function key(digit: string): { event: Uint8Array }[] {
  const code = digit === '*' ? 10 : digit === '#' ? 11 : Number(digit);
  const ev = (d: number, end: boolean) => ({ event: Uint8Array.of(code, (end ? 0x80 : 0) | 10, d >> 8, d & 0xff) });
  return [ev(160, false), ev(320, false), ev(480, false), ev(640, false), ev(800, true), ev(800, true), ev(800, true)];
}
const silence = (ms: number): Uint8Array[] => Array.from({ length: ms / 20 }, () => encodeUlawBuffer(new Int16Array(160)));

describe('jambonz applications on the gateway', () => {
  it('a WebSocket app gathers speech with barge-in: the prompt stops at the caller, the app gets speechDetected, says goodbye and hangs up', async () => {
    const server = createServer();
    const makeService = createEndpoint({ server });
    const svc = makeService({ path: '/ivr' });
    const port = await listening(server);
    const results: Record<string, unknown>[] = [];
    const newCalls: Record<string, unknown>[] = [];
    const statuses: unknown[] = [];
    svc.on('session:new', (session: NodeJS.EventEmitter & Record<string, (...a: unknown[]) => unknown> & Record<string, unknown>) => {
      newCalls.push({ call_sid: session.call_sid, from: session.from, to: session.to, direction: session.direction });
      session.on('call:status', (evt: { call_status?: string }) => statuses.push(evt.call_status));
      session.on('/gather', (evt: Record<string, unknown>) => {
        results.push(evt);
        (session.say as (o: unknown) => typeof session)({ text: 'Thank you. Goodbye.' });
        (session.hangup as () => typeof session)();
        (session.reply as () => void)();
      });
      (session.gather as (o: unknown) => typeof session)({ say: { text: PROMPT }, input: ['speech'], bargein: true, actionHook: '/gather', timeout: 10 });
      (session.send as () => void)();
    });
    const rule: CallRule = { name: 'ivr-ws', action: 'app', url: `ws://127.0.0.1:${port}/ivr`, labels: [] };
    const call = await newTestCall(h, rule, { services: services() });
    cleanups.push(() => call.caller.close());
    const heard = listen(call.caller);
    await call.session.start();
    await waitFor('the prompt to start', () => call.events().some((e) => e.kind === 'speech.started'), 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    const bargeAt = performance.now();
    await call.caller.send(call.leg.answered!, [...callerSpeech, ...silence(3000)]);
    await waitFor('call.ended', () => call.events().some((e) => e.kind === 'call.ended'), 30_000);

    expect(newCalls).toEqual([expect.objectContaining({ call_sid: call.leg.callId, direction: 'inbound' })]);
    // The prompt stopped at the caller's endpoint soon after the caller spoke (not played to its end).
    const prompt = call.events().find((e) => e.kind === 'speech.done');
    expect(prompt).toMatchObject({ status: 'interrupted' });
    const promptPackets = heard.at.filter((t) => t > bargeAt && t < bargeAt + 4000);
    expect(promptPackets.length).toBeLessThan(60);
    // The app got jambonz's payload: reason, speech with alternatives, the call's attributes.
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ reason: 'speechDetected', call_sid: call.leg.callId, speech: { is_final: true, alternatives: [{ transcript: expect.stringMatching(/\S/) }] } });
    // Its reply was spoken, then the call hung up, everything on record.
    expect(call.events().filter((e) => e.kind === 'speech.started').map((e) => (e.kind === 'speech.started' ? e.text : ''))).toEqual([PROMPT, 'Thank you. Goodbye.']);
    expect(call.events().find((e) => e.kind === 'app' && e.what === 'gather')).toMatchObject({ reason: 'speechDetected' });
    expect(call.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'hangup' });
    expect(call.leg.byes).toBe(1);
    expect(await h.rtpe.numSessions()).toBe(0);
    // jambonz's call:status updates reached the application.
    await waitFor('call:status completed', () => statuses.includes('completed'), 5000);
    expect(statuses).toEqual(['in-progress', 'completed']);
  }, 90_000);

  it('a webhook app gathers digits ending with #, then times out a second gather, then hangs up', async () => {
    const posts: { path: string; body: Record<string, unknown> }[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let data = '';
      req.on('data', (d: Buffer) => (data += d.toString()));
      req.on('end', () => {
        const body = data ? (JSON.parse(data) as Record<string, unknown>) : {};
        posts.push({ path: req.url ?? '', body });
        const app = new WebhookResponse();
        if (req.url === '/call') app.gather({ input: ['digits'], finishOnKey: '#', actionHook: '/pin', timeout: 10, say: { text: 'Enter your PIN, then hash.' } });
        else if (req.url === '/pin') app.gather({ input: ['digits'], actionHook: '/again', timeout: 1 });
        else app.hangup();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(app));
      });
    });
    const port = await listening(server);
    const rule: CallRule = { name: 'ivr-webhook', action: 'app', url: `http://127.0.0.1:${port}/call`, labels: [] };
    const call = await newTestCall(h, rule, { services: services() });
    cleanups.push(() => call.caller.close());
    await call.session.start();
    await waitFor('the PIN prompt', () => call.events().some((e) => e.kind === 'speech.started'), 20_000);
    await call.caller.send(call.leg.answered!, [...silence(200), ...key('1'), ...silence(100), ...key('2'), ...silence(100), ...key('#'), ...silence(200)]);
    await waitFor('call.ended', () => call.events().some((e) => e.kind === 'call.ended'), 30_000);
    expect(posts.map((p) => p.path)).toEqual(['/call', '/pin', '/again']);
    expect(posts[0]!.body).toMatchObject({ call_sid: call.leg.callId, direction: 'inbound', call_status: 'in-progress' });
    expect(posts[1]!.body).toMatchObject({ reason: 'dtmfDetected', digits: '12' });
    expect(posts[2]!.body).toMatchObject({ reason: 'timeout' });
    expect(call.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'hangup' });
  }, 90_000);

  it('a WebSocket app redirects mid-prompt (the prompt stops, the new verbs run) and transcribes in the background to its hook', async () => {
    const server = createServer();
    const svc = createEndpoint({ server })({ path: '/ivr' });
    const port = await listening(server);
    const transcripts: Record<string, unknown>[] = [];
    svc.on('session:new', (session: NodeJS.EventEmitter & Record<string, (...a: unknown[]) => unknown>) => {
      session.on('/transcription', (evt: Record<string, unknown>) => {
        transcripts.push(evt);
        (session.reply as () => void)();
      });
      (session.transcribe as (o: unknown) => typeof session)({ transcriptionHook: '/transcription' });
      (session.say as (o: unknown) => typeof session)({ text: PROMPT });
      (session.send as () => void)();
      // Two seconds into the prompt the app changes its mind: a redirect replaces what runs.
      setTimeout(() => {
        (session.say as (o: unknown) => typeof session)({ text: 'Sorry, we are closing now.' });
        (session.pause as (o: unknown) => typeof session)({ length: 4 });
        (session.hangup as () => typeof session)();
        (session.send as (o?: unknown) => void)({ execImmediate: true });
      }, 2000);
    });
    const call = await newTestCall(h, { name: 'ivr-redirect', action: 'app', url: `ws://127.0.0.1:${port}/ivr`, labels: [] }, { services: services() });
    cleanups.push(() => call.caller.close());
    await call.session.start();
    await waitFor('the second prompt', () => call.events().filter((e) => e.kind === 'speech.started').length === 2, 20_000);
    // The caller speaks during the pause: the transcribe verb's hook gets the final.
    await call.caller.send(call.leg.answered!, [...callerSpeech, ...silence(1000)]);
    await waitFor('call.ended', () => call.events().some((e) => e.kind === 'call.ended'), 30_000);
    const spoken = call.events().filter((e) => e.kind === 'speech.started').map((e) => (e.kind === 'speech.started' ? e.text : ''));
    expect(spoken).toEqual([PROMPT, 'Sorry, we are closing now.']);
    expect(call.events().find((e) => e.kind === 'speech.done')).toMatchObject({ status: 'interrupted' });
    expect(call.events().some((e) => e.kind === 'app' && e.what === 'verb' && e.status === 'command')).toBe(true);
    expect(transcripts.length).toBeGreaterThanOrEqual(1);
    expect(transcripts[0]).toMatchObject({ call_sid: call.leg.callId, speech: { is_final: true, alternatives: [{ transcript: expect.stringMatching(/\S/) }] } });
    expect(call.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'hangup' });
  }, 60_000);

  it('listen streams the caller\'s audio to a WebSocket consumer (jambonz listen format) for its maxLength, then its actionHook', async () => {
    const consumerHttp = createServer();
    const wss = new WebSocketServer({ server: consumerHttp });
    const received = { text: [] as string[], binary: 0 };
    wss.on('connection', (ws) => ws.on('message', (data, isBinary) => (isBinary ? received.binary++ : received.text.push(data.toString()))));
    const consumerPort = await listening(consumerHttp);
    cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
    const server = createServer();
    const svc = createEndpoint({ server })({ path: '/ivr' });
    const port = await listening(server);
    const hooks: string[] = [];
    svc.on('session:new', (session: NodeJS.EventEmitter & Record<string, (...a: unknown[]) => unknown>) => {
      session.on('/listened', () => {
        hooks.push('/listened');
        (session.hangup as () => typeof session)();
        (session.reply as () => void)();
      });
      (session.listen as (o: unknown) => typeof session)({ url: `ws://127.0.0.1:${consumerPort}/audio`, mixType: 'mono', sampleRate: 8000, maxLength: 2, actionHook: '/listened', metadata: { queue: 'sales' } });
      (session.send as () => void)();
    });
    const call = await newTestCall(h, { name: 'ivr-listen', action: 'app', url: `ws://127.0.0.1:${port}/ivr`, labels: [] }, { services: h.services({ synthesizerFor: () => espeak, appChannels: appChannelOpener(), validateVerbs: validate, audioForks: audioForkOpener(h.config.feeds.fork, new ForkTotals()) }) });
    cleanups.push(() => call.caller.close());
    await call.session.start();
    await call.caller.send(call.leg.answered!, callerSpeech.slice(0, 100));
    await waitFor('call.ended', () => call.events().some((e) => e.kind === 'call.ended'), 20_000);
    expect(hooks).toEqual(['/listened']);
    expect(received.text.length).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(received.text[0]!)).toMatchObject({ call_sid: call.leg.callId, queue: 'sales' });
    // About 2 s of 20 ms frames (the stream may batch several per message).
    expect(received.binary).toBeGreaterThanOrEqual(10);
    expect(call.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'hangup' });
  }, 60_000);

  it('a false interruption (speech, but no words) resumes the prompt where it stopped', async () => {
    // whisper's no-speech filter at 0 drops every result: what the caller says is heard by the VAD
    // (barge-in) but yields no words, as a cough or a door does.
    const noWords = await startCallHarness({ transcripts: { noSpeechThreshold: 0 } });
    cleanups.push(() => noWords.close());
    const server = createServer();
    const svc = createEndpoint({ server })({ path: '/ivr' });
    const port = await listening(server);
    const results: Record<string, unknown>[] = [];
    svc.on('session:new', (session: NodeJS.EventEmitter & Record<string, (...a: unknown[]) => unknown>) => {
      session.on('/gather', (evt: Record<string, unknown>) => {
        results.push(evt);
        (session.hangup as () => typeof session)();
        (session.reply as () => void)();
      });
      (session.gather as (o: unknown) => typeof session)({ say: { text: PROMPT }, input: ['speech'], bargein: true, actionHook: '/gather', timeout: 2 });
      (session.send as () => void)();
    });
    const svcs = noWords.services({ synthesizerFor: () => espeak, appChannels: appChannelOpener(), validateVerbs: validate });
    const call = await newTestCall(noWords, { name: 'ivr-false', action: 'app', url: `ws://127.0.0.1:${port}/ivr`, labels: [] }, { services: svcs });
    cleanups.push(() => call.caller.close());
    await call.session.start();
    await waitFor('the prompt', () => call.events().some((e) => e.kind === 'speech.started'), 20_000);
    await new Promise((r) => setTimeout(r, 1500));
    await call.caller.send(call.leg.answered!, [...callerSpeech.slice(0, 60), ...silence(500)]);
    await waitFor('call.ended', () => call.events().some((e) => e.kind === 'call.ended'), 40_000);
    const started = call.events().filter((e) => e.kind === 'speech.started');
    const done = call.events().filter((e) => e.kind === 'speech.done');
    // Interrupted, then the same prompt again from where it stopped (so shorter than the whole), played out.
    expect(started.map((e) => (e.kind === 'speech.started' ? e.text : ''))).toEqual([PROMPT, PROMPT]);
    expect(done.map((e) => (e.kind === 'speech.done' ? e.status : ''))).toEqual(['interrupted', 'played']);
    const [first, second] = done as { playedMs: number; durationMs?: number }[];
    let wholeMs = 0;
    for await (const c of espeak.synthesize({ text: PROMPT })) wholeMs += (c.samples.length * 1000) / c.sampleRate;
    expect(first!.playedMs).toBeGreaterThan(1000);
    // The rest, not the whole prompt again: what was heard before plus the resumed part is the prompt.
    expect(second!.durationMs!).toBeLessThan(wholeMs - 800);
    expect(Math.abs(first!.playedMs + second!.durationMs! - wholeMs)).toBeLessThan(wholeMs * 0.15);
    // Then the gather times out (no answer) and the app hangs up.
    expect(results).toEqual([expect.objectContaining({ reason: 'timeout' })]);
  }, 90_000);

  it('an invalid verb is reported to the app naming the verb and field; an app that refuses ends the call with the reason on record', async () => {
    const errors: unknown[] = [];
    const server = createServer((req, res) => {
      let data = '';
      req.on('data', (d: Buffer) => (data += d.toString()));
      req.on('end', () => {
        errors.push({ path: req.url, body: data ? JSON.parse(data) : undefined });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify([{ verb: 'gather', input: ['speech'], timeout: 'soon' }, { verb: 'hangup' }]));
      });
    });
    const port = await listening(server);
    const call = await newTestCall(h, { name: 'ivr-bad', action: 'app', url: `http://127.0.0.1:${port}/call`, labels: [] }, { services: services() });
    cleanups.push(() => call.caller.close());
    await call.session.start();
    await waitFor('call.ended', () => call.events().some((e) => e.kind === 'call.ended'), 20_000);
    const reported = call.events().find((e) => e.kind === 'app' && e.what === 'error');
    expect(reported).toMatchObject({ verb: 'gather', message: expect.stringMatching(/gather.*timeout/) });
    expect(call.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'hangup' });

    const refusing = createServer((_req, res) => res.writeHead(500).end('boom'));
    const refusingPort = await listening(refusing);
    const failed = await newTestCall(h, { name: 'ivr-down', action: 'app', url: `http://127.0.0.1:${refusingPort}/call`, labels: [] }, { services: services() });
    cleanups.push(() => failed.caller.close());
    await failed.session.start();
    await waitFor('call.ended', () => failed.events().some((e) => e.kind === 'call.ended'), 20_000);
    expect(failed.events().find((e) => e.kind === 'app' && e.what === 'error')).toMatchObject({ hook: 'session:new', message: expect.stringMatching(/500/) });
    expect(failed.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'failed', error: { code: 'APP_FAILED' } });
    expect(await h.rtpe.numSessions()).toBe(0);
  }, 60_000);
});

describe('jambonz dial', () => {
  const finals = (events: readonly { kind: string; party?: string }[], party: string): number => events.filter((e) => e.kind === 'final' && e.party === party).length;

  it('a WebSocket app says, then dials an agent: the caller and the agent hear each other, both are transcribed; the agent hangs up and the app goes on with the caller', async () => {
    const server = createServer();
    const svc = createEndpoint({ server })({ path: '/ivr' });
    const port = await listening(server);
    const dialed: Record<string, unknown>[] = [];
    svc.on('session:new', (session: NodeJS.EventEmitter & Record<string, (...a: unknown[]) => unknown>) => {
      session.on('/dialed', (evt: Record<string, unknown>) => {
        dialed.push(evt);
        (session.say as (o: unknown) => typeof session)({ text: 'The agent has left the call. Goodbye.' });
        (session.hangup as () => typeof session)();
        (session.reply as () => void)();
      });
      (session.say as (o: unknown) => typeof session)({ text: 'Connecting you.' });
      (session.dial as (o: unknown) => typeof session)({ target: [{ type: 'sip', sipUri: 'sip:agent@127.0.0.1:5090' }], callerId: '+15550100', headers: { 'X-Queue': 'sales' }, actionHook: '/dialed' });
      (session.send as () => void)();
    });
    const dialer = new RoutingDialer({ 'sip:agent@127.0.0.1:5090': 'answer' }, (callee) => cleanups.push(() => callee.close()));
    const call = await newTestCall(h, { name: 'ivr-dial', action: 'app', url: `ws://127.0.0.1:${port}/ivr`, labels: [] }, { services: services(), dialer });
    cleanups.push(() => call.caller.close());
    await call.session.start();
    await waitFor('the agent to answer', () => dialer.answered.length === 1, 20_000);
    await waitFor('the bridge', () => call.events().some((e) => e.kind === 'app' && e.what === 'dial' && e.status === 'answered'), 5000);
    const agent = dialer.answered[0]!;
    // The caller keeps the address it was answered with (no re-INVITE); the agent sends to its offer.
    const callerHeard = listen(call.caller);
    await Promise.all([call.caller.send(call.leg.answered!, [...callerSpeech, ...silence(1000)]), agent.callee.send(agent.offer, [...silence(1500), ...callerSpeech, ...silence(1000)])]);
    await waitFor('both parties transcribed', () => finals(call.events(), 'caller') >= 1 && finals(call.events(), 'callee') >= 1, 30_000);
    expect(agent.callee.received.filter((p) => p.payloadType === 0).length).toBeGreaterThan(100);
    expect(callerHeard.at.length).toBeGreaterThan(50);
    // The agent hangs up: the dial ends, not the call.
    await call.session.remoteBye('callee');
    await waitFor('call.ended', () => call.events().some((e) => e.kind === 'call.ended'), 30_000);

    expect(call.leg.reoffers).toEqual([]);
    expect(dialer.invites).toMatchObject([{ target: 'sip:agent@127.0.0.1:5090', options: { callingNumber: '+15550100', headers: { 'X-Queue': 'sales' }, relayProgress: false } }]);
    // The agent was offered the codec the caller sends (PCMU) first, PCMA through rtpengine's transcoder, and telephone-event.
    expect(dialer.invites[0]!.offer).toMatch(/^m=audio \d+ RTP\/AVP 0 8 101\r?$/m);
    expect(agent.byes).toBe(0);
    expect(dialed).toEqual([expect.objectContaining({ call_sid: call.leg.callId, dial_call_status: 'completed', dial_sip_status: 200, dial_call_sid: expect.stringMatching(/^wl-dial-/) })]);
    const spoken = call.events().filter((e) => e.kind === 'speech.started').map((e) => (e.kind === 'speech.started' ? e.text : ''));
    expect(spoken).toEqual(['Connecting you.', 'The agent has left the call. Goodbye.']);
    expect(call.events().filter((e) => e.kind === 'speech.done').map((e) => (e.kind === 'speech.done' ? e.status : ''))).toEqual(['played', 'played']);
    const dials = call.events().filter((e) => e.kind === 'app' && e.what === 'dial');
    expect(dials).toMatchObject([{ status: 'dialing' }, { status: 'answered', party: 'callee' }, { status: 'completed', sipStatus: 200, party: 'callee' }]);
    const ended = call.events().at(-1);
    expect(ended).toMatchObject({ kind: 'call.ended', reason: 'hangup' });
    // The agent's media counters are the call's too.
    expect((ended as { parties: Record<string, { packets: number }> }).parties.callee!.packets).toBeGreaterThan(100);
    expect(await h.rtpe.numSessions()).toBe(0);
  }, 90_000);

  it('a webhook app dials a busy and a ringing target at once (no-answer after its timeout, the ringing INVITE CANCELled), then a phone number through the rule\'s trunk for a time limit; a target outside dial.allow is refused', async () => {
    const posts: { path: string; body: Record<string, unknown> }[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let data = '';
      req.on('data', (d: Buffer) => (data += d.toString()));
      req.on('end', () => {
        posts.push({ path: req.url ?? '', body: data ? (JSON.parse(data) as Record<string, unknown>) : {} });
        const app = new WebhookResponse();
        if (req.url === '/status') return res.writeHead(204).end();
        if (req.url === '/call') {
          app.dial({ target: [{ type: 'sip', sipUri: 'sip:busy@127.0.0.1' }, { type: 'sip', sipUri: 'sip:ringing@127.0.0.1' }], timeout: 2, actionHook: '/first' });
        } else if (req.url === '/first') {
          app.dial({ target: [{ type: 'sip', sipUri: 'sip:elsewhere@198.51.100.7' }, { type: 'phone', number: '+15551234' }], timeLimit: 2, actionHook: '/second' });
        } else app.hangup();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(app));
      });
    });
    const port = await listening(server);
    const dialer = new RoutingDialer({ 'sip:busy@127.0.0.1': 486, 'sip:ringing@127.0.0.1': 'ring', 'sip:+15551234@127.0.0.1:5090': 'answer' }, (callee) => cleanups.push(() => callee.close()));
    const rule: CallRule = { name: 'ivr-dial-webhook', action: 'app', url: `http://127.0.0.1:${port}/call`, statusHook: `http://127.0.0.1:${port}/status`, labels: [], dial: { trunk: 'sip:127.0.0.1:5090', allow: '@127\\.0\\.0\\.1[:;>]|@127\\.0\\.0\\.1$' } };
    const call = await newTestCall(h, rule, { services: services(), dialer });
    cleanups.push(() => call.caller.close());
    await call.session.start();
    await waitFor('call.ended', () => call.events().some((e) => e.kind === 'call.ended'), 30_000);

    // The rule's status hook (jambonz's call_status_hook) got the call's status changes.
    await waitFor('call:status completed', () => posts.some((p) => p.path === '/status' && p.body.call_status === 'completed'), 5000);
    expect(posts.filter((p) => p.path === '/status').map((p) => p.body.call_status)).toEqual(['in-progress', 'completed']);
    const hooks = posts.filter((p) => p.path !== '/status');
    expect(hooks.map((p) => p.path)).toEqual(['/call', '/first', '/second']);
    expect(hooks[1]!.body).toMatchObject({ dial_call_status: 'no-answer', dial_sip_status: 487 });
    expect(hooks[1]!.body).not.toHaveProperty('dial_call_sid');
    expect(dialer.invites.map((i) => [i.target, i.cancelled])).toEqual([
      ['sip:busy@127.0.0.1', false],
      ['sip:ringing@127.0.0.1', true],
      ['sip:+15551234@127.0.0.1:5090', false],
    ]);
    // The time limit ended the second dial: the gateway hung up the callee.
    expect(hooks[2]!.body).toMatchObject({ dial_call_status: 'completed', dial_sip_status: 200, dial_call_sid: expect.stringMatching(/^wl-dial-/) });
    expect(dialer.answered[0]!.byes).toBe(1);
    const errors = call.events().filter((e) => e.kind === 'app' && e.what === 'error');
    expect(errors).toMatchObject([{ verb: 'dial', message: expect.stringContaining('sip:elsewhere@198.51.100.7: not allowed') }]);
    expect(call.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'hangup' });
    expect(await h.rtpe.numSessions()).toBe(0);
  }, 60_000);

  it('the caller hanging up ends a dial: a ringing INVITE is CANCELled, a bridged callee gets its BYE; a redirect mid-bridge hangs up the callee and runs the new verbs', async () => {
    const server = createServer();
    const svc = createEndpoint({ server })({ path: '/ivr' });
    const port = await listening(server);
    const sessions: (NodeJS.EventEmitter & Record<string, (...a: unknown[]) => unknown>)[] = [];
    svc.on('session:new', (session: NodeJS.EventEmitter & Record<string, (...a: unknown[]) => unknown>) => {
      sessions.push(session);
      const to = String((session as unknown as { to: string }).to ?? '');
      const target = to.includes('ring') ? 'sip:ringing@127.0.0.1' : 'sip:agent@127.0.0.1';
      (session.dial as (o: unknown) => typeof session)({ target: [{ type: 'sip', sipUri: target }], actionHook: '/dialed' });
      (session.send as () => void)();
    });
    const dialer = new RoutingDialer({ 'sip:ringing@127.0.0.1': 'ring', 'sip:agent@127.0.0.1': 'answer' }, (callee) => cleanups.push(() => callee.close()));
    const rule: CallRule = { name: 'ivr-dial-endings', action: 'app', url: `ws://127.0.0.1:${port}/ivr`, labels: [] };

    // 1. The caller hangs up while the target rings.
    const ringing = await newTestCall(h, rule, { services: services(), dialer });
    (ringing.leg as unknown as { to: string }).to = '<sip:ring@example.com>';
    cleanups.push(() => ringing.caller.close());
    await ringing.session.start();
    await waitFor('the INVITE', () => dialer.invites.length === 1, 10_000);
    await ringing.session.remoteBye('caller');
    expect(dialer.invites[0]).toMatchObject({ target: 'sip:ringing@127.0.0.1', cancelled: true });
    expect(ringing.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });

    // 2. The caller hangs up during the bridge: the callee gets a BYE.
    const bridged = await newTestCall(h, rule, { services: services(), dialer });
    cleanups.push(() => bridged.caller.close());
    await bridged.session.start();
    await waitFor('the bridge', () => bridged.events().some((e) => e.kind === 'app' && e.what === 'dial' && e.status === 'answered'), 10_000);
    // A hold from the caller during the bridge is the bridge's: offered to the callee and answered.
    await bridged.session.reinvite('caller', bridged.caller.sdp(5).replace('a=sendrecv', 'a=sendonly'));
    expect(bridged.events().filter((e) => e.kind === 'call.updated')).toMatchObject([{ by: 'caller', hold: true }]);
    await bridged.session.remoteBye('caller');
    expect(dialer.answered[0]!.byes).toBe(1);
    expect(bridged.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });

    // 3. The application redirects during the bridge: the callee is hung up, the new verbs run.
    const redirected = await newTestCall(h, rule, { services: services(), dialer });
    cleanups.push(() => redirected.caller.close());
    await redirected.session.start();
    await waitFor('the bridge', () => redirected.events().some((e) => e.kind === 'app' && e.what === 'dial' && e.status === 'answered'), 10_000);
    const app = sessions.at(-1)!;
    (app.say as (o: unknown) => typeof app)({ text: 'Sorry, the agent had to go.' });
    (app.hangup as () => typeof app)();
    (app.send as (o?: unknown) => void)({ execImmediate: true });
    await waitFor('call.ended', () => redirected.events().some((e) => e.kind === 'call.ended'), 20_000);
    expect(dialer.answered[1]!.byes).toBe(1);
    expect(redirected.events().filter((e) => e.kind === 'speech.started').map((e) => (e.kind === 'speech.started' ? e.text : ''))).toEqual(['Sorry, the agent had to go.']);
    expect(redirected.events().filter((e) => e.kind === 'speech.done').map((e) => (e.kind === 'speech.done' ? e.status : ''))).toEqual(['played']);
    expect(redirected.caller.received.filter((p) => p.payloadType === 0 && rmsDb(decodeUlaw(p.payload)) > -40).length).toBeGreaterThan(20);
    expect(redirected.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'hangup' });
    expect(await h.rtpe.numSessions()).toBe(0);
  }, 60_000);

  it('a callee that takes only PCMA is bridged to a PCMU caller through rtpengine\'s transcoder: each hears the other, both are transcribed', async () => {
    const server = createServer();
    const svc = createEndpoint({ server })({ path: '/ivr' });
    const port = await listening(server);
    svc.on('session:new', (session: NodeJS.EventEmitter & Record<string, (...a: unknown[]) => unknown>) => {
      (session.dial as (o: unknown) => typeof session)({ target: [{ type: 'sip', sipUri: 'sip:europe@127.0.0.1' }] });
      (session.send as () => void)();
    });
    const dialer = new RoutingDialer({ 'sip:europe@127.0.0.1': 'answer-pcma' }, (callee) => cleanups.push(() => callee.close()));
    const call = await newTestCall(h, { name: 'ivr-dial-pcma', action: 'app', url: `ws://127.0.0.1:${port}/ivr`, labels: [] }, { services: services(), dialer });
    cleanups.push(() => call.caller.close());
    await call.session.start();
    await waitFor('the bridge', () => call.events().some((e) => e.kind === 'app' && e.what === 'dial' && e.status === 'answered'), 10_000);
    const agent = dialer.answered[0]!;
    const alaw = callerSpeech.map((p) => encodeAlawBuffer(decodeUlaw(p)));
    await Promise.all([call.caller.send(call.leg.answered!, [...callerSpeech, ...silence(1000)]), agent.callee.send(agent.offer, [...silence(1500), ...alaw, ...silence(1000)])]);
    await waitFor('both parties transcribed', () => finals(call.events(), 'caller') >= 1 && finals(call.events(), 'callee') >= 1, 30_000);
    // Each side got its own codec: the agent A-law, the caller mu-law.
    expect(agent.callee.received.filter((p) => p.payloadType === 8).length).toBeGreaterThan(100);
    expect(call.caller.received.filter((p) => p.payloadType === 0 && rmsDb(decodeUlaw(p.payload)) > -40).length).toBeGreaterThan(50);
    expect(call.leg.reoffers).toEqual([]);
    await call.session.remoteBye('caller');
    expect(await h.rtpe.numSessions()).toBe(0);
  }, 60_000);
});
