/**
 * The gateway speaking into calls, heard where it counts: at the synthetic RTP endpoints of the
 * call's legs, through the real rtpengine (`play media`), with espeak-ng synthesizing for real.
 * Translation goes through the real chat-completions provider against a stand-in chat server
 * (an LLM cannot run here; the stand-in speaks OpenAI's protocol, test/support/translation/chat.ts).
 */
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeUlaw, encodeUlawBuffer } from '../../src/audio/g711.js';
import { Resampler } from '../../src/audio/resampler.js';
import type { CallRule } from '../../src/call/rule.js';
import { WhisperlineError } from '../../src/errors.js';
import type { RtpPacket } from '../../src/media/rtp/packet.js';
import type { CallEvent } from '../../src/transcripts/events.js';
import { ChatTranslator } from '../../src/translation/chat/chat.js';
import { FallbackSynthesizer } from '../../src/tts/decorators/fallback.js';
import { EspeakSynthesizer } from '../../src/tts/espeak/espeak.js';
import type { SynthesizedAudio, Synthesizer } from '../../src/tts/synthesizer.js';
import { newTestCall, startCallHarness, type CallHarness } from '../support/calls.js';
import { FakeDialer } from '../support/fake-sip.js';
import type { RtpEndpoint } from '../support/rtp-endpoint.js';
import { dominantFrequency, rmsDb, sine } from '../support/signal.js';
import { speechFixture } from '../support/speech.js';
import { startChatStandIn, type ChatStandIn } from '../support/translation/chat.js';
import { waitFor } from '../support/net.js';

const GREETING = 'Welcome to the support line. This call is transcribed.';
const INTERPRETED = 'Please hold while I check your account.';
let h: CallHarness;
let chat: ChatStandIn;
let callerSpeech: Uint8Array[];
const espeak = new EspeakSynthesizer();

beforeAll(async () => {
  chat = await startChatStandIn();
  chat.answer = () => INTERPRETED;
  h = await startCallHarness({ translator: new ChatTranslator({ baseUrl: chat.url, model: 'test-model' }) });
  const speech = await speechFixture({ sentences: ['I would like to check my balance please.'], gapsMs: [], sampleRate: 8000, leadMs: 300, tailMs: 300 });
  const pcm8k = new Resampler(16000, 8000).process(speech.samples16k);
  callerSpeech = [];
  for (let i = 0; i + 160 <= pcm8k.length; i += 160) callerSpeech.push(encodeUlawBuffer(pcm8k.subarray(i, i + 160)));
}, 300_000);
afterAll(async () => {
  await h?.close();
  await chat?.close();
});
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const services = (synthesizer: Synthesizer = espeak) => h.services({ synthesizerFor: () => synthesizer });

/** Every PCMU packet an endpoint hears, decoded, with its arrival time. */
function listen(ep: RtpEndpoint): { pcm: Int16Array[]; at: number[] } {
  const heard = { pcm: [] as Int16Array[], at: [] as number[] };
  const push = ep.received.push.bind(ep.received);
  ep.received.push = (...items: RtpPacket[]): number => {
    for (const p of items) {
      if (p.payloadType !== 0) continue;
      heard.pcm.push(decodeUlaw(p.payload));
      heard.at.push(performance.now());
    }
    return push(...items);
  };
  return heard;
}

/** When each event of the harness was published. */
const eventAt = new Map<CallEvent, number>();
function stampEvents(): void {
  const push = h.events.push.bind(h.events);
  h.events.push = (...items: CallEvent[]): number => {
    for (const e of items) eventAt.set(e, performance.now());
    return push(...items);
  };
}

/** 20 ms windows of `samples` (at `rate`) louder than -40 dBFS: the voiced part of speech. */
function voiced(chunks: readonly Int16Array[]): { ms: number; rmsDb: number } {
  const loud = chunks.filter((c) => rmsDb(c) > -40);
  const energy = loud.reduce((sum, c) => sum + 10 ** (rmsDb(c) / 10), 0) / Math.max(1, loud.length);
  return { ms: loud.length * 20, rmsDb: 10 * Math.log10(energy) };
}

/** espeak-ng's own output for `text` at 8 kHz, in 20 ms windows. */
async function espeakReference(text: string, language = 'en'): Promise<{ totalMs: number; windows: Int16Array[] }> {
  const chunks: SynthesizedAudio[] = [];
  for await (const c of espeak.synthesize({ text, language })) chunks.push(c);
  const rate = chunks[0]!.sampleRate;
  const all = new Int16Array(chunks.reduce((n, c) => n + c.samples.length, 0));
  let at = 0;
  for (const c of chunks) all.set(c.samples, (at += c.samples.length) - c.samples.length);
  const pcm8k = new Resampler(rate, 8000).process(all);
  const windows: Int16Array[] = [];
  for (let i = 0; i + 160 <= pcm8k.length; i += 160) windows.push(pcm8k.subarray(i, i + 160));
  return { totalMs: (all.length * 1000) / rate, windows };
}

function tone(freq: number, ms: number): Uint8Array[] {
  const pcm = sine(freq, 8000, ms, 0.3);
  const out: Uint8Array[] = [];
  for (let i = 0; i + 160 <= pcm.length; i += 160) out.push(encodeUlawBuffer(pcm.subarray(i, i + 160)));
  return out;
}

describe('speaking into calls through rtpengine', () => {
  beforeAll(() => stampEvents());

  it('an answer rule greets the caller: speech at the endpoint as long and as loud as espeak-ng makes it, with speech.started and speech.done', async () => {
    const rule: CallRule = { name: 'greet', action: 'answer', labels: [], say: { answered: [GREETING], ending: [], language: 'en' } };
    const call = await newTestCall(h, rule, { services: services() });
    cleanups.push(() => call.caller.close());
    const heard = listen(call.caller);
    await call.session.start();
    await waitFor('speech.done', () => call.events().some((e) => e.kind === 'speech.done'), 20_000);
    await sleep(200);
    const started = call.events().find((e) => e.kind === 'speech.started');
    const done = call.events().find((e) => e.kind === 'speech.done');
    expect(started).toMatchObject({ leg: 'caller', purpose: 'prompt', text: GREETING, provider: 'espeak-ng', language: 'en' });
    expect(started?.kind === 'speech.started' && started.ttfaMs).toBeGreaterThanOrEqual(0);
    expect(done).toMatchObject({ leg: 'caller', status: 'played', speechId: started?.kind === 'speech.started' ? started.speechId : '' });
    const reference = await espeakReference(GREETING);
    const atEndpoint = voiced(heard.pcm);
    const own = voiced(reference.windows);
    // What the caller heard is espeak-ng's speech: as much voiced audio (±20 %), as loud (±6 dB).
    expect(atEndpoint.ms).toBeGreaterThan(own.ms * 0.8);
    expect(atEndpoint.ms).toBeLessThan(own.ms * 1.2);
    expect(Math.abs(atEndpoint.rmsDb - own.rmsDb)).toBeLessThan(6);
    expect(done?.kind === 'speech.done' ? done.durationMs : 0).toBeGreaterThan(reference.totalMs * 0.9);
    await call.session.close('bye-caller');
    expect(await h.rtpe.numSessions()).toBe(0);
  }, 60_000);

  it('interpretation on a bridge: each party\'s sentence comes out of the other\'s endpoint as speech after its final, the original muted meanwhile, both parties still transcribed', async () => {
    const rule: CallRule = {
      name: 'interpreted',
      action: 'bridge',
      target: 'sip:agent@127.0.0.1',
      labels: [],
      parties: { caller: { transcribe: true, language: 'de' }, callee: { transcribe: true, language: 'en' } },
      interpret: { original: 'mute', maxLagMs: 15_000 },
    };
    const dialer = new FakeDialer((callee) => cleanups.push(() => callee.close()));
    const call = await newTestCall(h, rule, { dialer, services: services() });
    cleanups.push(() => call.caller.close());
    await call.session.start();
    const callee = dialer.callee!;
    const atCallee = listen(callee);
    const atCaller = listen(call.caller);
    // The caller speaks, then holds a 440 Hz tone on: the callee must not hear it while the translation plays.
    const callerTalks = call.caller.send(call.leg.answered!, [...callerSpeech, ...tone(440, 9000)]);
    await waitFor('the callee to be spoken to', () => call.events().some((e) => e.kind === 'speech.done' && e.leg === 'callee'), 30_000);
    const toCallee = call.events().find((e) => e.kind === 'speech.started' && e.leg === 'callee');
    const doneCallee = call.events().find((e) => e.kind === 'speech.done' && e.leg === 'callee');
    const translation = call.events().find((e) => e.kind === 'translation' && e.party === 'caller');
    const final = call.events().find((e) => e.kind === 'final' && e.party === 'caller');
    expect(translation).toMatchObject({ text: INTERPRETED, sourceLanguage: 'de', language: 'en', provider: 'chat' });
    expect(toCallee).toMatchObject({ purpose: 'interpretation', text: INTERPRETED, language: 'en', provider: 'espeak-ng', translationSeq: translation?.seq });
    expect(doneCallee).toMatchObject({ status: 'played' });
    // After its final, in that order.
    expect(eventAt.get(final!)!).toBeLessThanOrEqual(eventAt.get(translation!)!);
    expect(eventAt.get(translation!)!).toBeLessThanOrEqual(eventAt.get(toCallee!)!);
    // Heard at the callee's endpoint: speech, not the caller's tone, while it played.
    const from = eventAt.get(toCallee!)! + 100;
    const to = eventAt.get(doneCallee!)! - 100;
    const during = atCallee.pcm.filter((_, i) => atCallee.at[i]! >= from && atCallee.at[i]! < to);
    const reference = voiced((await espeakReference(INTERPRETED)).windows);
    expect(voiced(during).ms).toBeGreaterThan(reference.ms * 0.6);
    const toneDuring = during.filter((p) => rmsDb(p) > -40 && dominantFrequency(p, 8000, [440, 600, 1000, 1400]) === 440 && rmsDb(p) > -14).length;
    expect(toneDuring).toBeLessThanOrEqual(2);
    // The original comes back once the translation has played.
    await sleep(800);
    const after = atCallee.pcm.filter((_, i) => atCallee.at[i]! > eventAt.get(doneCallee!)! + 200);
    expect(after.filter((p) => dominantFrequency(p, 8000, [440, 600, 1000, 1400]) === 440).length).toBeGreaterThan(5);
    // Then the callee speaks: the caller hears its interpretation.
    await callee.send(dialer.offer!, callerSpeech);
    await waitFor('the caller to be spoken to', () => call.events().some((e) => e.kind === 'speech.done' && e.leg === 'caller'), 30_000);
    expect(call.events().find((e) => e.kind === 'speech.started' && e.leg === 'caller')).toMatchObject({ purpose: 'interpretation', language: 'de' });
    expect(atCaller.pcm.filter((p) => rmsDb(p) > -40).length).toBeGreaterThan(10);
    await callerTalks;
    await call.session.close('bye-caller');
    // Both parties were transcribed throughout.
    const parties = new Set(call.events().filter((e) => e.kind === 'final').map((e) => ('party' in e ? e.party : '')));
    expect(parties).toEqual(new Set(['caller', 'callee']));
    expect(await h.rtpe.numSessions()).toBe(0);
  }, 90_000);

  it('a synthesizer that fails: speech.failed with its reason, and the call goes on and is transcribed', async () => {
    const broken: Synthesizer = {
      name: 'broken',
      capabilities: { streaming: true, ssml: false },
      supports: async () => true,
      synthesize: () => ({
        [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new WhisperlineError('TTS_FAILED', 'the voice server answered 503')) }),
      }),
    };
    const rule: CallRule = { name: 'greet-broken', action: 'answer', labels: [], say: { answered: [GREETING], ending: [] } };
    const call = await newTestCall(h, rule, { services: services(broken) });
    cleanups.push(() => call.caller.close());
    await call.session.start();
    await waitFor('speech.failed', () => call.events().some((e) => e.kind === 'speech.failed'), 10_000);
    expect(call.events().find((e) => e.kind === 'speech.failed')).toMatchObject({ leg: 'caller', purpose: 'prompt', text: GREETING, error: { code: 'TTS_FAILED', message: 'the voice server answered 503' } });
    expect(call.session.state.name).toBe('active');
    await call.caller.send(call.leg.answered!, callerSpeech);
    await call.session.close('bye-caller');
    expect(call.events().filter((e) => e.kind === 'final').length).toBeGreaterThanOrEqual(1);
    expect(call.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
  }, 60_000);

  it('the first synthesizer times out: the next one speaks, and speech.started names it', async () => {
    let asked = 0;
    const hanging: Synthesizer = {
      name: 'kokoro',
      capabilities: { streaming: true, ssml: false },
      supports: async () => true,
      synthesize: (request) => ({
        [Symbol.asyncIterator]: () => ({
          next: () =>
            new Promise((_, reject) => {
              asked++;
              // A voice server that never answers: only the deadline (and its abort) ends this.
              request.signal?.addEventListener('abort', () => reject(new WhisperlineError('TTS_ABORTED', 'aborted')));
            }),
        }),
      }),
    };
    const chain = new FallbackSynthesizer([hanging, espeak], { name: 'tts', firstAudioMs: 500 });
    const rule: CallRule = { name: 'greet-fallback', action: 'answer', labels: [], say: { answered: [GREETING], ending: [] } };
    const call = await newTestCall(h, rule, { services: services(chain) });
    cleanups.push(() => call.caller.close());
    const heard = listen(call.caller);
    await call.session.start();
    await waitFor('speech.done', () => call.events().some((e) => e.kind === 'speech.done'), 20_000);
    expect(asked).toBe(1);
    expect(call.events().find((e) => e.kind === 'speech.started')).toMatchObject({ provider: 'espeak-ng', text: GREETING });
    expect(call.events().some((e) => e.kind === 'speech.failed')).toBe(false);
    expect(voiced(heard.pcm).ms).toBeGreaterThan(1000);
    await call.session.close('bye-caller');
  }, 60_000);

  it('a gateway that ends the call itself (shutdown) says the rule\'s ending prompt first, then hangs up', async () => {
    const rule: CallRule = { name: 'greet-ending', action: 'answer', labels: [], say: { answered: [], ending: ['We are closing now. Goodbye.'], language: 'en' } };
    const call = await newTestCall(h, rule, { services: services() });
    cleanups.push(() => call.caller.close());
    const heard = listen(call.caller);
    await call.session.start();
    await sleep(300);
    expect(call.events().some((e) => e.kind === 'speech.started')).toBe(false);
    await call.session.close('shutdown');
    const kinds = call.events().map((e) => e.kind);
    expect(call.events().find((e) => e.kind === 'speech.started')).toMatchObject({ text: 'We are closing now. Goodbye.', purpose: 'prompt' });
    expect(call.events().find((e) => e.kind === 'speech.done')).toMatchObject({ status: 'played' });
    expect(kinds.indexOf('speech.done')).toBeLessThan(kinds.indexOf('call.ended'));
    expect(call.leg.byes).toBe(1);
    expect(voiced(heard.pcm).ms).toBeGreaterThan(800);
    expect(call.events().at(-1)).toMatchObject({ kind: 'call.ended', reason: 'shutdown' });
  }, 60_000);

  it('a call that ends mid-prompt stops the playback: speech.done interrupted, nothing left in rtpengine', async () => {
    const long = Array.from({ length: 6 }, () => GREETING).join(' ');
    const rule: CallRule = { name: 'greet-long', action: 'answer', labels: [], say: { answered: [long], ending: [] } };
    const call = await newTestCall(h, rule, { services: services() });
    cleanups.push(() => call.caller.close());
    const heard = listen(call.caller);
    await call.session.start();
    await waitFor('speech.started', () => call.events().some((e) => e.kind === 'speech.started'), 20_000);
    await sleep(1000);
    await call.session.close('bye-caller');
    const done = call.events().find((e) => e.kind === 'speech.done');
    expect(done).toMatchObject({ status: 'interrupted' });
    expect(done?.kind === 'speech.done' ? done.playedMs : 0).toBeGreaterThan(500);
    // Stopped at the hang-up, far from its end (media length, not wall-clock time).
    expect(done?.kind === 'speech.done' ? done.playedMs : Infinity).toBeLessThan((await espeakReference(long)).totalMs / 2);
    expect(call.events().at(-1)).toMatchObject({ kind: 'call.ended' });
    expect(await h.rtpe.numSessions()).toBe(0);
    // Nothing more reaches the caller once the call is gone.
    const count = heard.pcm.length;
    await sleep(500);
    expect(heard.pcm.length).toBe(count);
  }, 60_000);
});
