/**
 * End to end through a real drachtio-server: sipp places calls to the gateway (started with
 * startGateway, a real rtpengine, Silero VAD and whisper.cpp on the tiny model). drachtio-server
 * is not packaged anywhere these tests can install it from: the suite runs with the binary
 * test/support/drachtio.ts finds (DRACHTIO_BIN, ../shared/tools/drachtio, PATH), and is reported
 * skipped, with the reason, otherwise.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeUlawBuffer } from '../../src/audio/g711.js';
import { Resampler } from '../../src/audio/resampler.js';
import type { CallEvent } from '../../src/transcripts/events.js';
import { spawnBoundToParent } from '../../src/child-process.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { startGateway, type Gateway } from '../../src/main.js';
import { rtpPortRange, startTestRtpengine, type TestRtpengine } from '../support/rtpengine.js';
import { findDrachtio } from '../support/drachtio.js';
import { speechFixture } from '../support/speech.js';
import { freeMediaPort, freeTcpPort, freeUdpPort, waitFor } from '../support/net.js';
import { ensureTestWhisper } from '../support/whisper.js';

const lookup = findDrachtio();
const DRACHTIO = 'binary' in lookup ? lookup.binary : undefined;
const SKIP_REASON = 'missing' in lookup ? `skipped: ${lookup.missing}` : '';
if (!DRACHTIO) console.log(`sip-e2e: ${SKIP_REASON}`);

const SIPP_DIR = join(import.meta.dirname, '..', 'sipp');

/**
 * The repository's scenario with its placeholders filled in: sipp substitutes `-key` values in
 * messages but not in `rtp_stream` actions, so the test writes the file it runs.
 */
function scenario(name: string, values: Record<string, string>): string {
  let xml = readFileSync(join(SIPP_DIR, name), 'utf8');
  for (const [k, v] of Object.entries(values)) xml = xml.replaceAll(`[${k}]`, v);
  const path = join(dir, name);
  writeFileSync(path, xml);
  return path;
}

function sipp(args: string[], onSpawn?: (child: ChildProcess) => void): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    // Bound to this process: a test killed by its timeout must not leave sipp behind.
    const child = spawnBoundToParent('sipp', [...args, '-nostdin', '-m', '1', '-l', '1', '-timeout', '40s', '-trace_err', '-error_file', join(dir, `sipp-${Date.now()}.err`)], { cwd: dir });
    onSpawn?.(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    // A hard stop keeps a stuck scenario from holding the suite until vitest's own timeout.
    const kill = setTimeout(() => child.kill('SIGKILL'), 45_000);
    child.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, out });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'wl-sip-e2e-'));
let drachtio: ChildProcess | undefined;
let rtpe: TestRtpengine;
let ports: ReturnType<typeof rtpPortRange>;
let gateway: Gateway;
let sipPort: number;
let uasPort: number;
/** Where the jambonz WebSocket application of the `ivr` rule listens (started by its test). */
let ivrPort: number;
let ringPort: number;
let busyPort: number;
let audioFile: string;
let talkMs: number;
const events: CallEvent[] = [];

describe.skipIf(!DRACHTIO)(DRACHTIO ? 'SIP end to end through drachtio-server' : `SIP end to end: ${SKIP_REASON}`, () => {
  beforeAll(async () => {
    const whisper = await ensureTestWhisper();
    ports = rtpPortRange();
    rtpe = await startTestRtpengine(ports.rtpengine.min, ports.rtpengine.max);
    sipPort = await freeTcpPort();
    const adminPort = await freeTcpPort();
    uasPort = await freeUdpPort();
    ivrPort = await freeTcpPort();
    ringPort = await freeUdpPort();
    busyPort = await freeUdpPort();
    const conf = join(dir, 'drachtio.conf.xml');
    writeFileSync(
      conf,
      `<drachtio><admin port="${adminPort}" secret="cymru">127.0.0.1</admin><sip><contacts><contact>sip:127.0.0.1:${sipPort};transport=udp,tcp</contact></contacts></sip><cdrs>false</cdrs><logging><console/><loglevel>warning</loglevel><sofia-loglevel>1</sofia-loglevel></logging></drachtio>`,
    );
    drachtio = spawnBoundToParent(DRACHTIO!, ['-f', conf], { stdio: 'ignore' });
    await waitFor('drachtio admin port', () => new Promise((resolve) => {
      const s = connect(adminPort, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    }));
    const plans = join(dir, 'dialplans');
    spawnSync('mkdir', ['-p', plans]);
    writeFileSync(
      join(plans, 'e2e.yaml'),
      `rules:
  - name: line
    match: { requestUser: "^transcribe$" }
    action: answer
    parties: { caller: { label: customer } }
  - name: agents
    match: { requestUser: "^agent$" }
    action: bridge
    target: "sip:agent@127.0.0.1:${uasPort}"
    parties: { caller: { label: customer }, callee: { label: agent } }
  - name: greeting
    match: { requestUser: "^greeting$" }
    action: answer
    say: "Welcome to the support line."
  - name: ivr
    match: { requestUser: "^ivr$" }
    action: app
    url: "ws://127.0.0.1:${ivrPort}/ivr"
  - name: ivr-dial
    match: { requestUser: "^ivr-dial$" }
    action: app
    url: "ws://127.0.0.1:${ivrPort}/dial"
    parties: { caller: { label: customer }, callee: { label: agent } }
    dial: { allow: '@127\\.0\\.0\\.1:' }
  - name: recorder
    match: { kind: siprec }
    action: siprec
    labels: [recording]
  - name: ringing
    match: { requestUser: "^ringing$" }
    action: bridge
    target: "sip:agent@127.0.0.1:${ringPort}"
  - name: busy
    match: { requestUser: "^busy$" }
    action: bridge
    target: "sip:agent@127.0.0.1:${busyPort}"
    labels: [queue-b]
`,
    );
    const config = loadConfig({
      env: {
        WHISPERLINE_SIP_DRACHTIO_PORT: String(adminPort),
        WHISPERLINE_SIP_DIALPLANS: plans,
        WHISPERLINE_RTPENGINE_LAUNCH: 'false',
        WHISPERLINE_RTPENGINE_PORT: String(rtpe.ngPort),
        WHISPERLINE_MEDIA_PORT_MIN: String(ports.gateway.min),
        WHISPERLINE_MEDIA_PORT_MAX: String(ports.gateway.max),
        WHISPERLINE_ASR_MODEL: whisper.tinyModel,
        WHISPERLINE_TRANSCRIPTS_NO_SPEECH_THRESHOLD: '1',
        WHISPERLINE_TRANSCRIPTS_SILENCE_PHRASES: '[]',
        WHISPERLINE_LOG_LEVEL: 'warn',
        WHISPERLINE_HTTP_PORT: '0',
        WHISPERLINE_STORE_PATH: join(dir, `transcripts-${Math.random().toString(36).slice(2)}.db`),
        WHISPERLINE_SIP_DRAIN_GRACE_MS: '1000',
        WHISPERLINE_TTS_CACHE_DIRECTORY: 'null',
      },
    });
    gateway = await startGateway(config, createLogger(config.log));
    gateway.events.on('event', (e) => events.push(e));
    await waitFor('the gateway to connect to drachtio', () => gateway.sip?.connection === 'connected');
    const health = await fetch(`http://127.0.0.1:${gateway.http.port}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', sip: { drachtio: 'connected' } });
    // What the sipp parties say: 8 kHz µ-law, raw.
    const speech = await speechFixture({ sentences: ['I would like to check my balance please.'], gapsMs: [], sampleRate: 8000, leadMs: 300, tailMs: 1500 });
    const pcm8k = new Resampler(16000, 8000).process(speech.samples16k);
    audioFile = join(dir, 'speech.ulaw');
    writeFileSync(audioFile, encodeUlawBuffer(pcm8k));
    talkMs = Math.round(pcm8k.length / 8) + 500;
  }, 300_000);

  afterAll(async () => {
    await gateway?.close();
    drachtio?.kill('SIGTERM');
    await rtpe?.stop();
    ports?.release();
    rmSync(dir, { recursive: true, force: true });
  });

  const callEvents = (callIdOf: (e: CallEvent) => boolean): CallEvent[] => events.filter(callIdOf);

  /** A sipp caller placing one call to `service` at the gateway with `scenarioFile`. */
  const callGateway = async (service: string, scenarioFile: string, onSpawn?: (child: ChildProcess) => void): Promise<{ code: number | null; out: string }> =>
    sipp([`127.0.0.1:${sipPort}`, '-sf', scenarioFile, '-s', service, '-i', '127.0.0.1', '-p', String(await freeUdpPort()), '-mi', '127.0.0.1', '-mp', String(await freeMediaPort())], onSpawn);

  /** The events published since `before`, once that call has ended. */
  const endedCall = async (before: number): Promise<CallEvent[]> => {
    await waitFor('call.ended', () => events.slice(before).some((e) => e.kind === 'call.ended'));
    return events.slice(before);
  };

  /**
   * A sipp caller (`uacScenario`, speaking) through the `agent` bridge rule to a sipp agent that
   * speaks back: both parties are transcribed, the caller's BYE ends it, nothing is left in rtpengine.
   */
  const expectBridgedAndTranscribed = async (uacScenario: string): Promise<void> => {
    const before = events.length;
    const uas = sipp(['-sf', scenario('uas-stream.xml', { audio_file: audioFile }), '-i', '127.0.0.1', '-p', String(uasPort), '-mi', '127.0.0.1', '-mp', String(await freeMediaPort())]);
    await new Promise((r) => setTimeout(r, 300)); // the UAS is listening
    const uac = await callGateway('agent', scenario(uacScenario, { audio_file: audioFile, talk_ms: String(talkMs) }));
    expect(uac.code, uac.out).toBe(0);
    const agent = await uas;
    expect(agent.code, agent.out).toBe(0);
    const call = await endedCall(before);
    const finals = call.filter((e) => e.kind === 'final');
    expect(new Set(finals.map((e) => ('party' in e ? e.party : '')))).toEqual(new Set(['caller', 'callee']));
    expect(call.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
    expect(await rtpe.numSessions()).toBe(0);
  };

  it('(a) a call to an answer rule is transcribed, and leaves no rtpengine session', async () => {
    const before = events.length;
    const r = await callGateway('transcribe', scenario('uac-stream.xml', { audio_file: audioFile, talk_ms: String(talkMs) }));
    expect(r.code, r.out).toBe(0);
    const call = await endedCall(before);
    const callId = call[0]!.callId;
    const mine = callEvents((e) => e.callId === callId);
    expect(mine[0]).toMatchObject({ kind: 'call.started', rule: 'line', parties: [{ name: 'caller', label: 'customer' }] });
    expect(mine.filter((e) => e.kind === 'final' && 'party' in e && e.party === 'caller').length).toBeGreaterThanOrEqual(1);
    expect(mine.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
    expect(await rtpe.numSessions()).toBe(0);
    expect(gateway.receiver.openPorts).toBe(0);
    // Stored as it happened (partials excepted), and exported over HTTP with the party's label.
    const stored = gateway.store.eventsAfter(callId, 0).map((s) => s.event.seq);
    expect(stored).toEqual(mine.filter((e) => e.kind !== 'partial').map((e) => e.seq));
    // The history API takes the supervisor token the gateway made at start (none is configured here).
    const auth = { headers: { authorization: `Bearer ${gateway.generatedToken!}` } };
    const txt = await fetch(`http://127.0.0.1:${gateway.http.port}/v1/calls/${encodeURIComponent(callId)}/export?format=txt`, auth);
    expect(txt.status).toBe(200);
    expect(await txt.text()).toMatch(/customer: /);
    expect((await fetch(`http://127.0.0.1:${gateway.http.port}/v1/calls/nope/export`, auth)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${gateway.http.port}/v1/calls/${encodeURIComponent(callId)}/export?format=txt`)).status).toBe(401);
  }, 60_000);

  it('(b) a bridge call to a sipp agent that speaks back: both parties transcribed', async () => {
    await expectBridgedAndTranscribed('uac-stream.xml');
  }, 60_000);

  it('(c) a SIPREC INVITE with two streams: parties named from the metadata, recorded and transcribed', async () => {
    const before = events.length;
    const r = await callGateway('recorder', scenario('uac-siprec.xml', { audio_file: audioFile, talk_ms: String(talkMs) }));
    expect(r.code, r.out).toBe(0);
    const call = await endedCall(before);
    expect(call[0]).toMatchObject({ kind: 'call.started', rule: 'recorder', labels: ['recording'], parties: [{ name: 'Alice' }, { name: 'Bob' }] });
    // sipp streams audio on the first stream only: Alice speaks, Bob's stream is silent.
    expect(call.filter((e) => e.kind === 'final' && 'party' in e && e.party === 'Alice').length).toBeGreaterThanOrEqual(1);
    expect(call.filter((e) => e.kind === 'final' && 'party' in e && e.party === 'Bob')).toEqual([]);
    expect(call.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
    expect(await rtpe.numSessions()).toBe(0);
  }, 60_000);

  it('(j) a Cisco CUBE-style SIPREC INVITE (three codecs and a label per stream): each stream answered with its own label, parties named by AOR', async () => {
    const before = events.length;
    const r = await callGateway('recorder', join(SIPP_DIR, 'uac-siprec-cube.xml'));
    expect(r.code, r.out).toBe(0);
    const call = await endedCall(before);
    expect(call[0]).toMatchObject({ kind: 'call.started', rule: 'recorder', parties: [{ name: '808808' }, { name: '909909' }] });
    expect(call.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
    expect(await rtpe.numSessions()).toBe(0);
  }, 60_000);

  it('(d) CANCEL while the agent rings: the B leg is cancelled too, nothing is left behind', async () => {
    const before = events.length;
    const agent = sipp(['-sf', join(SIPP_DIR, 'uas-ring.xml'), '-i', '127.0.0.1', '-p', String(ringPort)]);
    await new Promise((r) => setTimeout(r, 300));
    const callerRun = callGateway('ringing', join(SIPP_DIR, 'uac-cancel.xml'));
    const [caller, callee] = await Promise.all([callerRun, agent]);
    expect(caller.code, caller.out).toBe(0);
    expect(callee.code, callee.out).toBe(0);
    await waitFor('no live calls', () => gateway.registry.size === 0);
    // The abandoned call is on record: started and ended with the 487 the caller got.
    await waitFor('call.ended', () => events.slice(before).some((e) => e.kind === 'call.ended'));
    expect(events.slice(before).map((e) => e.kind)).toEqual(['call.started', 'ended', 'call.ended']);
    expect(events.at(-1)).toMatchObject({ reason: 'cancel', sipStatus: 487 });
    expect(await rtpe.numSessions()).toBe(0);
    expect(gateway.receiver.openPorts).toBe(0);
  }, 60_000);

  it('(e) hold and resume re-INVITEs: call.updated both ways, speech after resume transcribed', async () => {
    const before = events.length;
    const r = await callGateway('transcribe', scenario('uac-hold.xml', { audio_file: audioFile, talk_ms: String(talkMs) }));
    expect(r.code, r.out).toBe(0);
    const call = await endedCall(before);
    expect(call.filter((e) => e.kind === 'call.updated')).toMatchObject([
      { by: 'caller', hold: true },
      { by: 'caller', hold: false },
    ]);
    expect(call.filter((e) => e.kind === 'final').length).toBeGreaterThanOrEqual(1);
    expect(call.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
    expect(await rtpe.numSessions()).toBe(0);
  }, 60_000);

  it("(h) a busy agent: its 486 reaches the caller, and the failed call is stored with its status", async () => {
    const before = events.length;
    const agent = sipp(['-sf', join(SIPP_DIR, 'uas-busy.xml'), '-i', '127.0.0.1', '-p', String(busyPort)]);
    await new Promise((r) => setTimeout(r, 300));
    const sdp = 'v=0\no=caller 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 40100 RTP/AVP 0\na=rtpmap:0 PCMU/8000';
    const caller = callGateway('busy', scenario('uac-refused.xml', { status: '486', warning_check: '', warning_reference: '', sdp }));
    const [c, a] = await Promise.all([caller, agent]);
    expect(c.code, c.out).toBe(0);
    expect(a.code, a.out).toBe(0);
    const call = await endedCall(before);
    expect(call.map((e) => e.kind)).toEqual(['call.started', 'ended', 'call.ended']);
    expect(call.at(-1)).toMatchObject({ reason: 'failed', sipStatus: 486, error: { code: 'CALLEE_REJECTED' } });
    expect(gateway.store.call(call[0]!.callId)).toMatchObject({ rule: 'busy', labels: ['queue-b'], endReason: 'failed', endStatus: 486 });
    expect(await rtpe.numSessions()).toBe(0);
  }, 60_000);

  it('(i) an offer that is not SDP: 488 with a Warning that says why; the refused call is stored', async () => {
    const before = events.length;
    const warning = '<action><ereg regexp="^ *399 whisperline \\".*SDP.*\\"$" search_in="hdr" header="Warning:" check_it="true" assign_to="w"/></action>';
    const r = await callGateway('transcribe', scenario('uac-refused.xml', { status: '488', warning_check: warning, warning_reference: '<Reference variables="w"/>', sdp: 'this is not a session description' }));
    expect(r.code, r.out).toBe(0);
    const call = await endedCall(before);
    expect(call.at(-1)).toMatchObject({ reason: 'failed', sipStatus: 488, error: { code: 'SDP_INVALID' } });
    expect(await rtpe.numSessions()).toBe(0);
  }, 60_000);

  it('answers OPTIONS pings, and refuses an INVITE without audio with 488', async () => {
    const options = await sipp([`127.0.0.1:${sipPort}`, '-sf', join(SIPP_DIR, 'options.xml'), '-s', 'gateway', '-i', '127.0.0.1', '-p', String(await freeUdpPort())]);
    expect(options.code, options.out).toBe(0);
    const videoOnly = 'v=0\no=caller 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=video 40200 RTP/AVP 96\na=rtpmap:96 H264/90000';
    const warning = '<action><ereg regexp="^ *399 whisperline \\".*audio.*\\"$" search_in="hdr" header="Warning:" check_it="true" assign_to="w"/></action>';
    const noAudio = await callGateway('transcribe', scenario('uac-refused.xml', { status: '488', warning_check: warning, warning_reference: '<Reference variables="w"/>', sdp: videoOnly }));
    expect(noAudio.code, noAudio.out).toBe(0);
    await waitFor('no live calls', () => gateway.registry.size === 0);
  }, 30_000);

  it('(k) a delayed offer (INVITE without SDP) to an answer rule: offered in the 200 OK, answered in the ACK, transcribed', async () => {
    const before = events.length;
    const r = await callGateway('transcribe', scenario('uac-late-offer.xml', { audio_file: audioFile, talk_ms: String(talkMs) }));
    expect(r.code, r.out).toBe(0);
    const call = await endedCall(before);
    expect(call[0]).toMatchObject({ kind: 'call.started', rule: 'line' });
    expect(call.filter((e) => e.kind === 'final' && 'party' in e && e.party === 'caller').length).toBeGreaterThanOrEqual(1);
    expect(call.filter((e) => e.kind === 'call.updated')).toEqual([]);
    expect(call.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
    expect(await rtpe.numSessions()).toBe(0);
  }, 60_000);

  it("(l) a delayed offer to a bridge rule: the agent is offered rtpengine's SDP, the caller's 200 OK offers what the agent took; both transcribed", async () => {
    await expectBridgedAndTranscribed('uac-late-offer.xml');
  }, 60_000);

  it('(o) an answer rule greets the sipp caller: speech.started and speech.done in the store and on a supervisor socket', async () => {
    const before = events.length;
    const feed = new WebSocket(`ws://127.0.0.1:${gateway.http.port}/v1/supervisor?token=${gateway.generatedToken!}`);
    const onFeed: Record<string, unknown>[] = [];
    feed.on('message', (d) => onFeed.push(JSON.parse(d.toString()) as Record<string, unknown>));
    await new Promise<void>((resolve, reject) => (feed.once('open', () => resolve()), feed.once('error', reject)));
    try {
      const r = await callGateway('greeting', scenario('uac-stream.xml', { audio_file: audioFile, talk_ms: String(talkMs + 2500) }));
      expect(r.code, r.out).toBe(0);
      const call = await endedCall(before);
      const callId = call[0]!.callId;
      const stored = gateway.store.eventsAfter(callId, 0).map((e) => e.event);
      expect(stored.find((e) => e.kind === 'speech.started')).toMatchObject({ leg: 'caller', purpose: 'prompt', text: 'Welcome to the support line.', provider: 'espeak' });
      expect(stored.find((e) => e.kind === 'speech.done')).toMatchObject({ leg: 'caller', status: 'played' });
      await waitFor('the speech events on the feed', () => onFeed.some((m) => m.callId === callId && m.type === 'speech.done'));
      expect(onFeed.filter((m) => m.callId === callId && String(m.type).startsWith('speech.')).map((m) => m.type)).toEqual(['speech.started', 'speech.done']);
      expect(await rtpe.numSessions()).toBe(0);
    } finally {
      feed.close();
    }
  }, 90_000);

  it('(p) a jambonz WebSocket application answers a sipp caller: its prompt, a speech gather with barge-in, speechDetected to the app, goodbye, hang-up', async () => {
    const { createEndpoint } = (await import('@jambonz/node-client-ws')) as unknown as { createEndpoint: (o: { server: Server }) => (o: { path: string }) => NodeJS.EventEmitter };
    const server = createServer();
    const svc = createEndpoint({ server })({ path: '/ivr' });
    await new Promise<void>((r) => server.listen(ivrPort, '127.0.0.1', r));
    const results: Record<string, unknown>[] = [];
    svc.on('session:new', (session: NodeJS.EventEmitter & Record<string, (...a: unknown[]) => unknown>) => {
      session.on('/gather', (evt: Record<string, unknown>) => {
        results.push(evt);
        (session.say as (o: unknown) => unknown)({ text: 'Thank you. Goodbye.' });
        (session.hangup as () => unknown)();
        (session.reply as () => void)();
      });
      (session.gather as (o: unknown) => unknown)({ say: { text: 'Welcome. Please say what you are calling about.' }, input: ['speech'], bargein: true, actionHook: '/gather', timeout: 15 });
      (session.send as () => void)();
    });
    try {
      const before = events.length;
      // The caller speaks while the prompt plays, then waits for the gateway to hang up.
      const r = await callGateway('ivr', scenario('uac-until-bye.xml', { audio_file: audioFile, wait_ms: '30000' }));
      expect(r.code, r.out).toBe(0);
      const call = await endedCall(before);
      expect(results).toEqual([expect.objectContaining({ reason: 'speechDetected', speech: expect.objectContaining({ is_final: true }) })]);
      expect(call.filter((e) => e.kind === 'speech.started').map((e) => (e.kind === 'speech.started' ? e.text : ''))).toContain('Thank you. Goodbye.');
      expect(call.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'hangup' });
      const stored = gateway.store.eventsAfter(call[0]!.callId, 0).map((e) => e.event);
      expect(stored.some((e) => e.kind === 'app' && e.what === 'gather' && e.reason === 'speechDetected')).toBe(true);
      expect(await rtpe.numSessions()).toBe(0);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 90_000);

  it('(q) a jambonz WebSocket application dials a sipp agent for a sipp caller: both parties transcribed, the agent hangs up, the app says goodbye and hangs up', async () => {
    const { createEndpoint } = (await import('@jambonz/node-client-ws')) as unknown as { createEndpoint: (o: { server: Server }) => (o: { path: string }) => NodeJS.EventEmitter };
    const server = createServer();
    const svc = createEndpoint({ server })({ path: '/dial' });
    await new Promise<void>((r) => server.listen(ivrPort, '127.0.0.1', r));
    const agentPort = await freeUdpPort();
    const dialed: Record<string, unknown>[] = [];
    svc.on('session:new', (session: NodeJS.EventEmitter & Record<string, (...a: unknown[]) => unknown>) => {
      session.on('/dialed', (evt: Record<string, unknown>) => {
        dialed.push(evt);
        (session.say as (o: unknown) => unknown)({ text: 'The agent has left. Goodbye.' });
        (session.hangup as () => unknown)();
        (session.reply as () => void)();
      });
      (session.dial as (o: unknown) => unknown)({ target: [{ type: 'sip', sipUri: `sip:agent@127.0.0.1:${agentPort}` }], callerId: '+15550100', actionHook: '/dialed' });
      (session.send as () => void)();
    });
    try {
      const before = events.length;
      const agent = sipp(['-sf', scenario('uas-stream-bye.xml', { audio_file: audioFile, talk_ms: '9000' }), '-i', '127.0.0.1', '-p', String(agentPort), '-mi', '127.0.0.1', '-mp', String(await freeMediaPort())]);
      await new Promise((r) => setTimeout(r, 300)); // the agent is listening
      const caller = await callGateway('ivr-dial', scenario('uac-until-bye.xml', { audio_file: audioFile, wait_ms: '30000' }));
      expect(caller.code, caller.out).toBe(0);
      const callee = await agent;
      expect(callee.code, callee.out).toBe(0);
      const call = await endedCall(before);
      expect(dialed).toEqual([expect.objectContaining({ dial_call_status: 'completed', dial_sip_status: 200 })]);
      const finals = call.filter((e) => e.kind === 'final');
      expect(new Set(finals.map((e) => ('party' in e ? e.party : '')))).toEqual(new Set(['caller', 'callee']));
      expect(call.filter((e) => e.kind === 'speech.started').map((e) => (e.kind === 'speech.started' ? e.text : ''))).toEqual(['The agent has left. Goodbye.']);
      expect(call.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'hangup' });
      // The agent's leg is on record: its party, the dial's events, its media counters.
      const stored = gateway.store.eventsAfter(call[0]!.callId, 0).map((e) => e.event);
      expect(stored.filter((e) => e.kind === 'app' && e.what === 'dial').map((e) => (e.kind === 'app' ? e.status : ''))).toEqual(['dialing', 'answered', 'completed']);
      expect(gateway.store.call(call[0]!.callId)?.parties.map((p) => p.name)).toEqual(expect.arrayContaining(['caller', 'callee']));
      expect(await rtpe.numSessions()).toBe(0);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 90_000);

  it('(n) an SDES-SRTP offer (RTP/SAVP with a=crypto) is answered RTP/SAVP with a key of its own through drachtio', async () => {
    const before = events.length;
    const r = await callGateway('transcribe', join(SIPP_DIR, 'uac-srtp.xml'));
    expect(r.code, r.out).toBe(0);
    const call = await endedCall(before);
    expect(call.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
    expect(await rtpe.numSessions()).toBe(0);
  }, 60_000);

  it('(m) session refreshes: a re-INVITE without SDP is offered the session, UPDATE with SDP renegotiates, UPDATE without SDP is a 200; speech after them is transcribed', async () => {
    const before = events.length;
    const r = await callGateway('transcribe', scenario('uac-refresh.xml', { audio_file: audioFile, talk_ms: String(talkMs) }));
    expect(r.code, r.out).toBe(0);
    const call = await endedCall(before);
    // Only the UPDATE with a new session version renegotiated; the refresh's unchanged answer did not.
    expect(call.filter((e) => e.kind === 'call.updated')).toEqual([expect.objectContaining({ by: 'caller', hold: false })]);
    const finals = call.filter((e) => e.kind === 'final' && 'party' in e && e.party === 'caller');
    const updatedAt = call.findIndex((e) => e.kind === 'call.updated');
    expect(finals.length).toBeGreaterThanOrEqual(2);
    expect(call.indexOf(finals.at(-1)!)).toBeGreaterThan(updatedAt);
    expect(call.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
    expect(await rtpe.numSessions()).toBe(0);
  }, 90_000);

  it('refuses a call no rule matches with 404', async () => {
    const r = await sipp([`127.0.0.1:${sipPort}`, '-sn', 'uac', '-s', 'nobody', '-i', '127.0.0.1', '-p', String(await freeUdpPort())]);
    expect(r.code).not.toBe(0);
    expect(r.out + spawnSync('sh', ['-c', `cat ${dir}/*.err 2>/dev/null`], { encoding: 'utf8' }).stdout).toMatch(/404/);
  }, 30_000);

  it('(g) outbound mode: drachtio-server connects to the gateway for each call', async () => {
    const slot = rtpPortRange();
    const sip2 = await freeTcpPort();
    const admin2 = await freeTcpPort();
    const listen = await freeTcpPort();
    const conf = join(dir, 'drachtio-outbound.conf.xml');
    writeFileSync(
      conf,
      `<drachtio><admin port="${admin2}" secret="cymru">127.0.0.1</admin><request-handlers><request-handler sip-method="INVITE">tcp://127.0.0.1:${listen}</request-handler></request-handlers><sip><contacts><contact>sip:127.0.0.1:${sip2};transport=udp,tcp</contact></contacts></sip><cdrs>false</cdrs><logging><console/><loglevel>warning</loglevel><sofia-loglevel>1</sofia-loglevel></logging></drachtio>`,
    );
    const drachtio2 = spawnBoundToParent(DRACHTIO!, ['-f', conf], { stdio: 'ignore' });
    const whisper = await ensureTestWhisper();
    const config = loadConfig({
      env: {
        WHISPERLINE_SIP_MODE: 'outbound',
        WHISPERLINE_SIP_LISTEN_PORT: String(listen),
        WHISPERLINE_SIP_DIALPLANS: join(dir, 'dialplans'),
        WHISPERLINE_RTPENGINE_LAUNCH: 'false',
        WHISPERLINE_RTPENGINE_PORT: String(rtpe.ngPort),
        WHISPERLINE_MEDIA_PORT_MIN: String(slot.gateway.min),
        WHISPERLINE_MEDIA_PORT_MAX: String(slot.gateway.max),
        WHISPERLINE_ASR_MODEL: whisper.tinyModel,
        WHISPERLINE_TRANSCRIPTS_NO_SPEECH_THRESHOLD: '1',
        WHISPERLINE_TRANSCRIPTS_SILENCE_PHRASES: '[]',
        WHISPERLINE_LOG_LEVEL: 'warn',
        WHISPERLINE_HTTP_PORT: '0',
        WHISPERLINE_STORE_PATH: join(dir, `transcripts-${Math.random().toString(36).slice(2)}.db`),
      },
    });
    const outbound = await startGateway(config, createLogger(config.log));
    const seen: CallEvent[] = [];
    outbound.events.on('event', (e) => seen.push(e));
    try {
      await waitFor('drachtio outbound admin port', () => new Promise((resolve) => {
        const s = connect(admin2, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      }));
      const r = await sipp([`127.0.0.1:${sip2}`, '-sf', scenario('uac-stream.xml', { audio_file: audioFile, talk_ms: String(talkMs) }), '-s', 'transcribe', '-i', '127.0.0.1', '-p', String(await freeUdpPort()), '-mi', '127.0.0.1', '-mp', String(await freeMediaPort())]);
      expect(r.code, r.out).toBe(0);
      await waitFor('call.ended', () => seen.some((e) => e.kind === 'call.ended'));
      expect(seen[0]).toMatchObject({ kind: 'call.started', rule: 'line' });
      expect(seen.filter((e) => e.kind === 'final').length).toBeGreaterThanOrEqual(1);
      expect(seen.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'bye-caller' });
      expect(await rtpe.numSessions()).toBe(0);
    } finally {
      await outbound.close();
      drachtio2.kill('SIGTERM');
      slot.release();
    }
  }, 90_000);

  it('(f) drachtio-server going away ends its live calls: finals kept, rtpengine call deleted', async () => {
    const before = events.length;
    let sippChild: ChildProcess | undefined;
    const caller = callGateway('transcribe', scenario('uac-stream.xml', { audio_file: audioFile, talk_ms: '20000' }), (child) => (sippChild = child));
    await waitFor('call.started', () => events.slice(before).some((e) => e.kind === 'call.started'));
    await new Promise((r) => setTimeout(r, talkMs)); // the caller has said its sentence
    drachtio!.kill('SIGKILL');
    const call = await endedCall(before);
    expect(call.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'disconnect' });
    expect(call.filter((e) => e.kind === 'final').length).toBeGreaterThanOrEqual(1);
    expect(await rtpe.numSessions()).toBe(0);
    expect(gateway.receiver.openPorts).toBe(0);
    await waitFor('/health to report the loss', async () => (await fetch(`http://127.0.0.1:${gateway.http.port}/health`)).status === 503);
    // The far end is left with a dialog nobody will end: stop it.
    sippChild?.kill('SIGKILL');
    await caller;
  }, 90_000);
});
