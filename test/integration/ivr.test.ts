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
import { decodeUlaw, encodeUlawBuffer } from '../../src/audio/g711.js';
import { Resampler } from '../../src/audio/resampler.js';
import type { Verb } from '../../src/call/app-channel.js';
import { SUPPORTED_VERBS } from '../../src/call/ivr/runner.js';
import type { CallRule } from '../../src/call/rule.js';
import type { RtpPacket } from '../../src/media/rtp/packet.js';
import { EspeakSynthesizer } from '../../src/tts/espeak/espeak.js';
import { newTestCall, startCallHarness, type CallHarness } from '../support/calls.js';
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
