/**
 * `npm run bench -- ivr [--calls N]`: N concurrent IVR calls (default 50) through the real
 * rtpengine, each run by a jambonz WebSocket application (@jambonz/node-client-ws) that gathers
 * speech with barge-in while a prompt plays; each caller starts speaking part-way into the prompt,
 * at its own moment (calls are concurrent, their sentences spread over a few seconds).
 *
 * - barge-in reaction: the caller's first speech packet (sent) → the last prompt packet at the
 *   caller's endpoint (received): how long the caller still hears the prompt over its own voice;
 * - gather latency: the caller's last speech packet (sent) → the application's actionHook (received).
 *
 * Last line: {"bench":"ivr","concurrentCalls","bargeinMinSpeechMs","bargeinReactionP50Ms",
 * "bargeinReactionP95Ms","hangoverMs","gatherLatencyP50Ms","gatherLatencyP95Ms","failedCalls"}.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { appChannelOpener, verbProblems } from '../../src/app/index.js';
import { decodeUlaw, encodeUlawBuffer } from '../../src/audio/g711.js';
import { Resampler } from '../../src/audio/resampler.js';
import { SUPPORTED_VERBS } from '../../src/call/ivr/runner.js';
import type { CallRule } from '../../src/call/rule.js';
import type { RtpPacket } from '../../src/media/rtp/packet.js';
import { CachedSynthesizer } from '../../src/tts/decorators/cache.js';
import { EspeakSynthesizer } from '../../src/tts/espeak/espeak.js';
import { newTestCall, startCallHarness } from '../support/calls.js';
import { rmsDb } from '../support/signal.js';
import { speechFixture } from '../support/speech.js';

const PROMPT = 'Welcome to the bank. You can say balance, payments, cards, or agent, and I will put you through to the right place. Please tell me what you need.';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
};

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { calls: { type: 'string', default: '50' } } });
  const calls = Number(values.calls);
  if (!Number.isInteger(calls) || calls < 1) throw new Error('--calls must be a positive integer');
  const { createEndpoint } = (await import('@jambonz/node-client-ws')) as unknown as { createEndpoint: (o: { server: Server }) => (o: { path: string }) => NodeJS.EventEmitter };

  const server = createServer();
  const svc = createEndpoint({ server })({ path: '/ivr' });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const hookAt = new Map<string, number>();
  svc.on('session:new', (session: NodeJS.EventEmitter & Record<string, unknown>) => {
    const callSid = String(session.call_sid);
    const verbs = session as unknown as Record<string, (o?: unknown) => unknown>;
    session.on('/gather', () => {
      hookAt.set(callSid, performance.now());
      verbs.hangup!();
      verbs.reply!();
    });
    verbs.gather!({ say: { text: PROMPT }, input: ['speech'], bargein: true, minBargeinWordCount: 1, actionHook: '/gather', timeout: 15 });
    verbs.send!();
  });

  // Two whisper-servers of one thread each: finals of callers who stop speaking together do not queue behind each other.
  const h = await startCallHarness({ wide: true, asrPool: { poolSize: 2, threads: 1 } });
  // The prompt is the same for every call: synthesized once, then replayed from the cache.
  const tts = new CachedSynthesizer(new EspeakSynthesizer(), { memoryBytes: 16 << 20 });
  const services = h.services({
    synthesizerFor: () => tts,
    appChannels: appChannelOpener(),
    validateVerbs: (vs) => verbProblems(vs, SUPPORTED_VERBS),
  });
  const fixture = await speechFixture({ sentences: ['I would like to check my balance please.'], gapsMs: [], sampleRate: 8000, leadMs: 0, tailMs: 0 });
  const pcm8k = new Resampler(16000, 8000).process(fixture.samples16k);
  const talk: Uint8Array[] = [];
  for (let i = 0; i + 160 <= pcm8k.length; i += 160) talk.push(encodeUlawBuffer(pcm8k.subarray(i, i + 160)));
  let firstVoiced = 0;
  while (firstVoiced < talk.length - 1 && rmsDb(decodeUlaw(talk[firstVoiced]!)) < -40) firstVoiced++;
  let lastVoiced = talk.length - 1;
  while (lastVoiced > 0 && rmsDb(decodeUlaw(talk[lastVoiced]!)) < -40) lastVoiced--;
  const silence = Array.from({ length: 150 }, () => encodeUlawBuffer(new Int16Array(160)));

  const reactions: number[] = [];
  const gathers: number[] = [];
  let failed = 0;
  const rule: CallRule = { name: 'bench-ivr', action: 'app', url: `ws://127.0.0.1:${port}/ivr`, labels: [] };
  const runOne = async (i: number): Promise<void> => {
    const call = await newTestCall(h, rule, { services });
    try {
      const promptAt: number[] = [];
      const push = call.caller.received.push.bind(call.caller.received);
      call.caller.received.push = (...items: RtpPacket[]): number => {
        const now = performance.now();
        for (const p of items) if (p.payloadType === 0 && rmsDb(decodeUlaw(p.payload)) > -40) promptAt.push(now);
        return push(...items);
      };
      await call.session.start();
      const deadline = performance.now() + 20_000;
      while (!call.events().some((e) => e.kind === 'speech.started') && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // Each caller speaks at its own moment, 1-7 s into the prompt (as callers of one IVR do).
      await new Promise((r) => setTimeout(r, 1000 + ((i * 127) % 6000)));
      const sentAt = performance.now();
      const speechStartAt = sentAt + 20 * firstVoiced;
      const speechEndAt = sentAt + 20 * lastVoiced;
      await call.caller.send(call.leg.answered!, [...talk, ...silence]);
      const ended = performance.now() + 20_000;
      while (!call.events().some((e) => e.kind === 'call.ended') && performance.now() < ended) await new Promise((r) => setTimeout(r, 50));
      const hooked = hookAt.get(call.leg.callId);
      const lastPrompt = promptAt.filter((t) => t >= speechStartAt && t < speechStartAt + 3000);
      if (hooked === undefined || !call.events().some((e) => e.kind === 'speech.done' && e.status === 'interrupted')) {
        failed++;
        const kinds = call.events().map((e) => (e.kind === 'app' ? `app:${e.what}:${e.reason ?? e.message ?? e.verb ?? ''}` : e.kind === 'speech.done' ? `speech.done:${e.status}` : e.kind)).join(' ');
        console.log(`ivr: call ${i}: ${hooked === undefined ? 'no actionHook' : 'the prompt was not interrupted'} (${kinds})`);
        return;
      }
      reactions.push(lastPrompt.length > 0 ? lastPrompt.at(-1)! - speechStartAt : 0);
      gathers.push(hooked - speechEndAt);
    } catch (err) {
      failed++;
      console.log(`ivr: call ${i} failed: ${(err as Error).message}`);
    } finally {
      await call.session.close('bye-caller');
      call.caller.close();
    }
  };
  try {
    await Promise.all(Array.from({ length: calls }, (_, i) => runOne(i)));
  } finally {
    await h.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
  console.log(`ivr: ${calls} calls, ${failed} failed; barge-in reaction p50 ${Math.round(pct(reactions, 0.5))} ms p95 ${Math.round(pct(reactions, 0.95))} ms; gather latency p50 ${Math.round(pct(gathers, 0.5))} ms p95 ${Math.round(pct(gathers, 0.95))} ms`);
  console.log(
    JSON.stringify({
      bench: 'ivr',
      concurrentCalls: calls,
      bargeinMinSpeechMs: h.config.vad.minSpeechMs,
      bargeinReactionP50Ms: Math.round(pct(reactions, 0.5)),
      bargeinReactionP95Ms: Math.round(pct(reactions, 0.95)),
      hangoverMs: h.config.vad.hangoverMs,
      gatherLatencyP50Ms: Math.round(pct(gathers, 0.5)),
      gatherLatencyP95Ms: Math.round(pct(gathers, 0.95)),
      failedCalls: failed,
    }),
  );
}
