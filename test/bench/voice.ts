/**
 * `npm run bench -- voice [--utterances N] [--translator whisper|chat]`: how fast the gateway speaks.
 *
 * - espeak-ng's time to first audio over varied sentences, and a prompt cache hit's;
 * - live interpretation on a bridged call through the real rtpengine (the tiny whisper model,
 *   espeak-ng, and whisper's translate task by default): for each of N caller sentences, the time
 *   from the caller's last speech packet (sent) to the first packet of the spoken translation at
 *   the callee's endpoint (received). That includes the VAD hang-over, recognition, translation,
 *   synthesis and rtpengine's play-out: the whole cascade a listener waits through.
 *
 * Last line: {"bench":"voice","ttfaEspeakP50Ms","ttfaEspeakP95Ms","ttfaCacheHitP95Ms",
 * "interpretUtterances","interpretP50Ms","interpretP95Ms",...}.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { decodeUlaw, encodeUlawBuffer } from '../../src/audio/g711.js';
import { Resampler } from '../../src/audio/resampler.js';
import type { CallRule } from '../../src/call/rule.js';
import type { RtpPacket } from '../../src/media/rtp/packet.js';
import { ChatTranslator } from '../../src/translation/chat/chat.js';
import type { Translator } from '../../src/translation/translator.js';
import { CachedSynthesizer } from '../../src/tts/decorators/cache.js';
import { EspeakSynthesizer } from '../../src/tts/espeak/espeak.js';
import type { Synthesizer } from '../../src/tts/synthesizer.js';
import { newTestCall, startCallHarness } from '../support/calls.js';
import { FakeDialer } from '../support/fake-sip.js';
import { rmsDb } from '../support/signal.js';
import { speechFixture } from '../support/speech.js';
import { startChatStandIn } from '../support/translation/chat.js';

const SENTENCES = [
  'Thank you for calling, how can I help you today?',
  'I would like to check the balance of my account.',
  'Your card will arrive within five working days.',
  'Please hold while I look that up for you.',
  'Is there anything else I can help you with?',
  'The payment was received on the third of March.',
  'Can you confirm your date of birth, please?',
  'I have updated the address on your account.',
  'You will receive a confirmation by email shortly.',
  'Our opening hours are from eight until six.',
];

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
};
const round = (x: number): number => Math.round(x * 10) / 10;

async function firstAudioMs(s: Synthesizer, text: string): Promise<number> {
  const t0 = performance.now();
  let at = NaN;
  for await (const _chunk of s.synthesize({ text, language: 'en' })) {
    if (Number.isNaN(at)) at = performance.now() - t0;
  }
  return at;
}

function packets(pcm8k: Int16Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i + 160 <= pcm8k.length; i += 160) out.push(encodeUlawBuffer(pcm8k.subarray(i, i + 160)));
  return out;
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { utterances: { type: 'string', default: '20' }, translator: { type: 'string', default: 'whisper' } } });
  const utterances = Number(values.utterances);
  if (!Number.isInteger(utterances) || utterances < 1) throw new Error('--utterances must be a positive integer');
  if (values.translator !== 'whisper' && values.translator !== 'chat') throw new Error('--translator is whisper or chat');

  // espeak-ng and the prompt cache.
  const espeak = new EspeakSynthesizer();
  await firstAudioMs(espeak, 'warm up');
  const espeakMs: number[] = [];
  for (let i = 0; i < 30; i++) espeakMs.push(await firstAudioMs(espeak, `${SENTENCES[i % SENTENCES.length]} ${i}`));
  const cached = new CachedSynthesizer(espeak, { memoryBytes: 16 << 20 });
  for (const s of SENTENCES) await firstAudioMs(cached, s);
  const hitMs: number[] = [];
  for (let i = 0; i < 100; i++) hitMs.push(await firstAudioMs(cached, SENTENCES[i % SENTENCES.length]!));
  console.log(`voice: espeak-ng first audio p50 ${round(pct(espeakMs, 0.5))} ms p95 ${round(pct(espeakMs, 0.95))} ms; cache hit p95 ${round(pct(hitMs, 0.95))} ms`);

  // Interpretation on a bridge, caller (English) → callee (German), heard at the callee's endpoint.
  const chat = values.translator === 'chat' ? await startChatStandIn() : undefined;
  let translator: Translator | undefined;
  if (chat) {
    chat.answer = (text) => `Übersetzt: ${text}`;
    translator = new ChatTranslator({ baseUrl: chat.url, model: 'test-model' });
  }
  const h = await startCallHarness(translator ? { translator } : {});
  const latencies: number[] = [];
  let spoken = 0;
  let missed = 0;
  try {
    const rule: CallRule = {
      name: 'bench-interpretation',
      action: 'bridge',
      target: 'sip:agent@127.0.0.1',
      labels: [],
      // whisper's translate task gives English: the listener is English for it.
      parties: { caller: { transcribe: true, language: values.translator === 'whisper' ? 'de' : 'en' }, callee: { transcribe: true, language: values.translator === 'whisper' ? 'en' : 'de' } },
      interpret: { original: 'mute', maxLagMs: 20_000 },
    };
    const closers: (() => unknown)[] = [];
    const dialer = new FakeDialer((callee) => closers.push(() => callee.close()));
    const call = await newTestCall(h, rule, { dialer, services: h.services({ synthesizerFor: () => espeak }) });
    await call.session.start();
    const callee = dialer.callee!;
    const heard: { at: number; loud: boolean }[] = [];
    const push = callee.received.push.bind(callee.received);
    callee.received.push = (...items: RtpPacket[]): number => {
      const now = performance.now();
      for (const p of items) if (p.payloadType === 0) heard.push({ at: now, loud: rmsDb(decodeUlaw(p.payload)) > -40 });
      return push(...items);
    };
    // One RTP stream for the whole call, as a phone sends it: sequence numbers go on, and
    // timestamps follow the wall clock across the waits between sentences.
    let sequence = 1000;
    const streamStart = performance.now();
    const send = (pkts: Uint8Array[]): Promise<void> => {
      const timestamp = 5000 + Math.round((performance.now() - streamStart) / 20) * 160;
      const sent = call.caller.send(call.leg.answered!, pkts, undefined, 0, { sequence, timestamp });
      sequence = (sequence + pkts.length) & 0xffff;
      return sent;
    };
    for (let i = 0; i < utterances; i++) {
      const fixture = await speechFixture({ sentences: [SENTENCES[i % SENTENCES.length]!], gapsMs: [], sampleRate: 8000, leadMs: 200, tailMs: 0 });
      const talk = packets(new Resampler(16000, 8000).process(fixture.samples16k));
      // The last voiced packet of the sentence: its send time is where the listener's wait begins.
      let lastVoiced = talk.length - 1;
      while (lastVoiced > 0 && rmsDb(decodeUlaw(talk[lastVoiced]!)) < -40) lastVoiced--;
      const doneBefore = call.events().filter((e) => e.kind === 'speech.done' && e.leg === 'callee').length;
      const sentAt = performance.now();
      await send(talk);
      const lastSpeechAt = sentAt + 20 * lastVoiced;
      // Silence, as a caller waiting for the answer sends it.
      const silence = send(packets(new Int16Array(8000 * 3)));
      const deadline = performance.now() + 20_000;
      while (performance.now() < deadline && call.events().filter((e) => e.kind === 'speech.done' && e.leg === 'callee').length === doneBefore) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const started = call.events().filter((e) => e.kind === 'speech.started' && e.leg === 'callee').length;
      if (call.events().filter((e) => e.kind === 'speech.done' && e.leg === 'callee').length === doneBefore || started === 0) {
        missed++;
        const kinds = call.events().map((e) => e.kind + (e.kind === "translation" || e.kind === "final" ? `(${JSON.stringify(e.text).slice(0, 30)})` : "")).slice(-6).join(" ");
        console.log(`voice: utterance ${i + 1}: no translation spoken within 20 s (last events: ${kinds})`);
      } else {
        const first = heard.find((x) => x.loud && x.at > lastSpeechAt + 60);
        if (first) {
          latencies.push(first.at - lastSpeechAt);
          spoken++;
          console.log(`voice: utterance ${i + 1}: end of speech → first translated packet ${Math.round(first.at - lastSpeechAt)} ms`);
        } else missed++;
      }
      await silence;
      heard.length = 0;
    }
    await call.session.close('bye-caller');
    for (const c of closers) await c();
    call.caller.close();
  } finally {
    await h.close();
    await chat?.close();
  }
  console.log(
    JSON.stringify({
      bench: 'voice',
      ttfaEspeakP50Ms: round(pct(espeakMs, 0.5)),
      ttfaEspeakP95Ms: round(pct(espeakMs, 0.95)),
      ttfaCacheHitP95Ms: round(pct(hitMs, 0.95)),
      interpretUtterances: spoken,
      interpretMissed: missed,
      interpretP50Ms: Math.round(pct(latencies, 0.5)),
      interpretP95Ms: Math.round(pct(latencies, 0.95)),
      translator: values.translator,
      hangoverMs: h.config.vad.hangoverMs,
    }),
  );
}
