/**
 * Stopping the gateway as an operator does: the `whisperline start` process (and `npm start`)
 * is sent SIGTERM or SIGKILL while calls, the supervisor page and feed clients are live. Each
 * gateway here is a child process with its own embedded rtpengine, like a real deployment; the
 * SIP cases run through a real drachtio-server and sipp (skipped, with the reason, without one).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeUlawBuffer } from '../../src/audio/g711.js';
import { Resampler } from '../../src/audio/resampler.js';
import { spawnBoundToParent } from '../../src/child-process.js';
import { TranscriptStore } from '../../src/transcripts/store.js';
import { findDrachtio } from '../support/drachtio.js';
import { freeMediaPort, freeTcpPort, freeUdpPort, waitFor } from '../support/net.js';
import { rtpPortRange, type TestPortRanges } from '../support/rtpengine.js';
import { speechFixture } from '../support/speech.js';
import { ensureTestWhisper } from '../support/whisper.js';

const lookup = findDrachtio();
const DRACHTIO = 'binary' in lookup ? lookup.binary : undefined;
const SKIP_REASON = 'missing' in lookup ? `skipped: ${lookup.missing}` : '';
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const REPO = join(import.meta.dirname, '..', '..');
const SIPP_DIR = join(REPO, 'test', 'sipp');
const TOKEN = 'shutdown-test-token-0123456789';
const GRACE_MS = 6000;

const dir = mkdtempSync(join(tmpdir(), 'wl-shutdown-'));
let tinyModel: string;
let audioFile: string;
let speech16k: Int16Array;

/** A gateway child process and what its JSON log said. */
interface GatewayProcess {
  readonly child: ChildProcess;
  readonly httpPort: number;
  readonly lines: Record<string, unknown>[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The pid of the rtpengine it launched (from its log). */
  rtpenginePid(): number;
}

/** The environment without this suite's own WHISPERLINE_* variables: the gateway reads its file only. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHISPERLINE_')));
}

function gatewayConfig(name: string, ports: TestPortRanges, ngPort: number, httpPort: number, extra: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `log: { level: info }
http: { host: 127.0.0.1, port: ${httpPort} }
rtpengine: { launch: true, host: 127.0.0.1, port: ${ngPort}, portMin: ${ports.rtpengine.min}, portMax: ${ports.rtpengine.max} }
media: { portMin: ${ports.gateway.min}, portMax: ${ports.gateway.max} }
asr: { model: ${JSON.stringify(tinyModel)} }
transcripts: { noSpeechThreshold: 1, silencePhrases: [] }
store: { path: ${JSON.stringify(join(dir, `${name}.db`))} }
supervisor: { tokens: [{ name: wallboard, token: ${TOKEN}, labels: [] }] }
${extra}`,
  );
  return file;
}

/** Starts `whisperline start -c file` as an operator would, and waits until it says it is ready. */
async function startGatewayProcess(configFile: string, httpPort: number, command: readonly string[] = ['--import', 'tsx', 'src/cli.ts', 'start', '-c', configFile], binary = process.execPath): Promise<GatewayProcess> {
  const child = spawn(binary, [...command], { cwd: REPO, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let text = '';
  const take = (d: Buffer): void => {
    text += d.toString();
    let nl: number;
    while ((nl = text.indexOf('\n')) >= 0) {
      const line = text.slice(0, nl);
      text = text.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: line });
      }
    }
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let gone = false;
  void exited.then(() => (gone = true));
  await waitFor('the gateway to be ready', () => {
    if (gone) throw new Error(`the gateway exited during start-up:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
    return lines.some((l) => l.msg === 'gateway ready');
  }, 150_000).catch((err: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}; its log:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
  });
  return {
    child,
    httpPort,
    lines,
    exited,
    rtpenginePid: () => Number(lines.find((l) => l.msg === 'rtpengine launched')?.rtpenginePid),
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function health(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A supervisor feed client: every message, and how the socket closed. */
function feedClient(port: number, query = ''): { messages: Record<string, unknown>[]; closed: Promise<number>; opened: Promise<void> } {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/supervisor?token=${TOKEN}${query}`);
  const messages: Record<string, unknown>[] = [];
  ws.on('message', (d) => messages.push(JSON.parse(d.toString()) as Record<string, unknown>));
  ws.on('error', () => undefined);
  return {
    messages,
    opened: new Promise((resolve, reject) => (ws.once('open', () => resolve()), ws.once('unexpected-response', (_q, r) => reject(new Error(`feed refused: ${r.statusCode}`))))),
    closed: new Promise((resolve) => ws.once('close', (code) => resolve(code))),
  };
}

function scenario(name: string, values: Record<string, string>): string {
  let xml = readFileSync(join(SIPP_DIR, name), 'utf8');
  for (const [k, v] of Object.entries(values)) xml = xml.replaceAll(`[${k}]`, v);
  const path = join(dir, `${Math.random().toString(36).slice(2)}-${name}`);
  writeFileSync(path, xml);
  return path;
}

async function sipp(target: string, scenarioFile: string, service: string): Promise<{ code: number | null; out: string }> {
  const errFile = join(dir, `sipp-${Math.random().toString(36).slice(2)}.err`);
  const args = [target, '-sf', scenarioFile, '-s', service, '-i', '127.0.0.1', '-p', String(await freeUdpPort()), '-mi', '127.0.0.1', '-mp', String(await freeMediaPort())];
  return new Promise((resolve) => {
    const child = spawnBoundToParent('sipp', [...args, '-nostdin', '-m', '1', '-l', '1', '-timeout', '60s', '-trace_err', '-error_file', errFile], { cwd: dir });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    const kill = setTimeout(() => child.kill('SIGKILL'), 70_000);
    child.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, out: out + (existsSync(errFile) ? readFileSync(errFile, 'utf8') : '') });
    });
  });
}

function startDrachtio(conf: string, adminPort: number): Promise<ChildProcess> {
  const child = spawnBoundToParent(DRACHTIO!, ['-f', conf], { stdio: 'ignore' });
  return waitFor('drachtio admin port', () => new Promise((resolve) => {
    const s = connect(adminPort, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  })).then(() => child);
}

const drachtioConf = (adminPort: number, sipPort: number, handler = ''): string =>
  `<drachtio><admin port="${adminPort}" secret="cymru">127.0.0.1</admin>${handler}<sip><contacts><contact>sip:127.0.0.1:${sipPort};transport=udp,tcp</contact></contacts></sip><cdrs>false</cdrs><logging><console/><loglevel>warning</loglevel><sofia-loglevel>1</sofia-loglevel></logging></drachtio>`;

const DIALPLAN = `rules:
  - name: line
    match: { requestUser: "^transcribe$" }
    action: answer
    parties: { caller: { label: customer } }
`;

beforeAll(async () => {
  tinyModel = (await ensureTestWhisper()).tinyModel;
  const speech = await speechFixture({ sentences: ['I would like to check my balance please.'], gapsMs: [], sampleRate: 8000, leadMs: 300, tailMs: 1500 });
  speech16k = speech.samples16k;
  audioFile = join(dir, 'speech.ulaw');
  writeFileSync(audioFile, encodeUlawBuffer(new Resampler(16000, 8000).process(speech16k)));
  spawnSync('mkdir', ['-p', join(dir, 'dialplans')]);
  writeFileSync(join(dir, 'dialplans', 'line.yaml'), DIALPLAN);
}, 300_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The live call's part of a SIGTERM: the caller has spoken; new INVITEs get 503 while it drains,
 * /health says draining, and the caller is hung up with BYE when the grace period ends.
 */
async function expectDrainOfLiveCall(gw: GatewayProcess, sipTarget: string): Promise<string> {
  const talkMs = Math.round(speech16k.length / 16);
  const live = sipp(sipTarget, scenario('uac-until-bye.xml', { audio_file: audioFile, wait_ms: String(GRACE_MS + 20_000) }), 'transcribe');
  await waitFor('the call to be up', async () => (await health(gw.httpPort)).body.sip !== undefined && ((await health(gw.httpPort)).body.sip as { calls: number }).calls === 1, 30_000);
  await new Promise((r) => setTimeout(r, talkMs + 1500)); // the caller has said its sentence
  gw.child.kill('SIGTERM');
  await waitFor('/health to say draining', async () => (await health(gw.httpPort)).body.status === 'draining', 5000);
  expect((await health(gw.httpPort)).status).toBe(503);
  const refused = await sipp(sipTarget, scenario('uac-refused.xml', { status: '503', warning_check: '', warning_reference: '', sdp: 'v=0\no=caller 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 40100 RTP/AVP 0\na=rtpmap:0 PCMU/8000' }), 'transcribe');
  expect(refused.code, refused.out).toBe(0);
  const caller = await live;
  expect(caller.code, `the gateway's BYE at the end of the grace period: ${caller.out}`).toBe(0);
  const started = gw.lines.find((l) => l.msg === 'call answered' || typeof l.callId === 'string');
  return String(started?.callId ?? '');
}

/** After the process is gone: its one call is stored as ended by the shutdown, with its final. */
function expectStoredShutdown(dbFile: string): void {
  const store = TranscriptStore.open(dbFile);
  try {
    const calls = store.listCalls({ limit: 10 });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ rule: 'line', endReason: 'shutdown' });
    const finals = store.eventsAfter(calls[0]!.id, 0).filter((e) => e.event.kind === 'final');
    expect(finals.length).toBeGreaterThanOrEqual(1);
    expect(store.eventsAfter(calls[0]!.id, 0).at(-1)?.event).toMatchObject({ kind: 'call.ended', reason: 'shutdown' });
  } finally {
    store.close();
  }
}

describe.skipIf(!DRACHTIO)(DRACHTIO ? 'SIGTERM with live calls and supervisors' : `SIGTERM with live calls: ${SKIP_REASON}`, () => {
  let browser: Browser | undefined;
  beforeAll(async () => {
    if (existsSync(CHROMIUM)) browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  }, 60_000);
  afterAll(async () => browser?.close());

  it('inbound: the page open and a call live → 503 to new INVITEs, the call drained with its final stored, 1001 on the page, exit 0', async () => {
    if (!browser) throw new Error(`${CHROMIUM} not found: this test drives Debian's chromium`);
    const ports = rtpPortRange();
    const adminPort = await freeTcpPort();
    const sipPort = await freeTcpPort();
    const drachtio = await startDrachtio(writeConf('inbound', drachtioConf(adminPort, sipPort)), adminPort);
    const httpPort = await freeTcpPort();
    const file = gatewayConfig('inbound', ports, await freeUdpPort(), httpPort, `sip: { drachtioPort: ${adminPort}, dialplans: ${JSON.stringify(join(dir, 'dialplans'))}, drainGraceMs: ${GRACE_MS} }\n`);
    try {
      const gw = await startGatewayProcess(file, httpPort);
      await waitFor('drachtio connected', async () => (await health(httpPort)).status === 200, 20_000);
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${httpPort}/supervisor/#token=${TOKEN}`);
      await page.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { dataset: { state?: string } } | null } }).document.getElementById('connection')?.dataset.state === 'live', undefined, { timeout: 15_000 }).catch(() => undefined);
      // Every text the connection indicator shows from now on (it changes again once the gateway is gone).
      await page.evaluate(() => {
        const g = globalThis as unknown as { seen: string[]; document: { getElementById(id: string): { textContent: string | null } }; MutationObserver: new (cb: () => void) => { observe(el: unknown, o: Record<string, boolean>): void } };
        g.seen = [];
        const el = g.document.getElementById('connection');
        new g.MutationObserver(() => g.seen.push(el.textContent ?? '')).observe(el, { childList: true, characterData: true, subtree: true });
      });
      const feed = feedClient(httpPort);
      await feed.opened;
      const rtpenginePid = gw.rtpenginePid();
      expect(alive(rtpenginePid)).toBe(true);

      await expectDrainOfLiveCall(gw, `127.0.0.1:${sipPort}`);

      expect(await feed.closed).toBe(1001);
      const exit = await gw.exited;
      expect(exit).toEqual({ code: 0, signal: null });
      const seen = (await page.evaluate(() => (globalThis as unknown as { seen: string[] }).seen)) as string[];
      expect(seen.some((t) => t.includes('The gateway is restarting.')), seen.join(' | ')).toBe(true);
      // The feed client saw the call end before its 1001.
      expect(feed.messages.some((m) => m.type === 'call.ended' && m.reason === 'shutdown')).toBe(true);
      expectStoredShutdown(join(dir, 'inbound.db'));
      await waitFor('rtpengine to exit', () => !alive(rtpenginePid), 10_000);
      expect(gw.lines.filter((l) => l.level === 50 || l.level === 60)).toEqual([]);
      await page.close();
    } finally {
      drachtio.kill('SIGTERM');
      ports.release();
    }
  }, 240_000);

  it('outbound: the same drain, then the listener is closed and the process exits 0', async () => {
    const ports = rtpPortRange();
    const adminPort = await freeTcpPort();
    const sipPort = await freeTcpPort();
    const listenPort = await freeTcpPort();
    const drachtio = await startDrachtio(
      writeConf('outbound', drachtioConf(adminPort, sipPort, `<request-handlers><request-handler sip-method="INVITE">tcp://127.0.0.1:${listenPort}</request-handler></request-handlers>`)),
      adminPort,
    );
    const httpPort = await freeTcpPort();
    const file = gatewayConfig('outbound', ports, await freeUdpPort(), httpPort, `sip: { mode: outbound, listenPort: ${listenPort}, dialplans: ${JSON.stringify(join(dir, 'dialplans'))}, drainGraceMs: ${GRACE_MS} }\n`);
    try {
      const gw = await startGatewayProcess(file, httpPort);
      // No drachtio-server has connected yet: listening, not "connected".
      expect((await health(httpPort)).body).toMatchObject({ status: 'ok', sip: { drachtio: 'listening', mode: 'outbound' } });
      const feed = feedClient(httpPort);
      await feed.opened;
      await expectDrainOfLiveCall(gw, `127.0.0.1:${sipPort}`);
      expect(await feed.closed).toBe(1001);
      expect(await gw.exited).toEqual({ code: 0, signal: null });
      expectStoredShutdown(join(dir, 'outbound.db'));
      const refused = await new Promise<boolean>((resolve) => {
        const s = connect(listenPort, '127.0.0.1', () => (s.destroy(), resolve(false)));
        s.on('error', () => resolve(true));
      });
      expect(refused).toBe(true);
    } finally {
      drachtio.kill('SIGTERM');
      ports.release();
    }
  }, 240_000);
});

function writeConf(name: string, xml: string): string {
  const path = join(dir, `drachtio-${name}.conf.xml`);
  writeFileSync(path, xml);
  return path;
}

/** Streams `samples` (16 kHz) to a /v1/listen socket in real time, in 20 ms messages. */
async function sendListenAudio(ws: WebSocket, samples: Int16Array): Promise<void> {
  const t0 = Date.now();
  for (let i = 0; i * 320 < samples.length; i++) {
    const chunk = samples.subarray(i * 320, (i + 1) * 320);
    ws.send(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    const due = t0 + (i + 1) * 20;
    await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
  }
}

describe('crash recovery and the process tree', () => {
  it('SIGKILL mid-call, then a restart: the orphaned call ends as lost, in the store and on a resuming feed', async () => {
    const ports = rtpPortRange();
    const httpPort = await freeTcpPort();
    const ngPort = await freeUdpPort();
    const file = gatewayConfig('crash', ports, ngPort, httpPort, 'sip: { mode: off }\n');
    try {
      const gw = await startGatewayProcess(file, httpPort);
      // An ingest-only gateway (sip.mode off) is healthy without any drachtio-server.
      expect(await health(httpPort)).toMatchObject({ status: 200, body: { status: 'ok', sip: { drachtio: 'off', mode: 'off' } } });
      const feed = feedClient(httpPort);
      await feed.opened;
      const ws = new WebSocket(`ws://127.0.0.1:${httpPort}/v1/listen`, ['audio.jambonz.org']);
      await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
      ws.send(JSON.stringify({ callSid: 'CA-crash-1', from: '+15551230000', to: '+15559870000', direction: 'inbound', sampleRate: 16000, mixType: 'mono' }));
      await sendListenAudio(ws, speech16k);
      await waitFor('a final on the feed', () => feed.messages.some((m) => m.type === 'transcript.final'), 20_000);
      const lastCursor = Math.max(...feed.messages.map((m) => (typeof m.cursor === 'number' ? m.cursor : 0)));
      const rtpenginePid = gw.rtpenginePid();
      gw.child.kill('SIGKILL');
      expect((await gw.exited).signal).toBe('SIGKILL');
      ws.terminate();
      // rtpengine was bound to its parent: it goes too, and frees the ng port for the restart.
      await waitFor('the orphaned rtpengine to exit', () => !alive(rtpenginePid), 10_000);

      const restarted = await startGatewayProcess(file, httpPort);
      try {
        const resumed = feedClient(httpPort, `&cursor=${lastCursor}`);
        await resumed.opened;
        await waitFor('call.ended on the resumed feed', () => resumed.messages.some((m) => m.type === 'call.ended'), 10_000);
        const ended = resumed.messages.find((m) => m.type === 'call.ended')!;
        expect(ended).toMatchObject({ reason: 'lost', callId: expect.stringContaining('CA-crash-1') });
        expect(restarted.lines.some((l) => l.msg === 'calls left open by the previous run ended as lost' && l.calls === 1)).toBe(true);
      } finally {
        restarted.child.kill('SIGTERM');
        expect(await restarted.exited).toEqual({ code: 0, signal: null });
      }
      const store = TranscriptStore.open(join(dir, 'crash.db'));
      try {
        const [call] = store.listCalls({ limit: 10 });
        expect(call).toMatchObject({ rule: 'ingest:listen', endReason: 'lost' });
        expect(call!.endedAt).toBeDefined();
        // A second restart finds nothing left to close.
        expect(store.openCalls()).toEqual([]);
      } finally {
        store.close();
      }
    } finally {
      ports.release();
    }
  }, 240_000);

  it('npm start, stopped by SIGTERM to npm alone (as a process supervisor does): the gateway and its rtpengine exit', async () => {
    const ports = rtpPortRange();
    const httpPort = await freeTcpPort();
    const file = gatewayConfig('npm-start', ports, await freeUdpPort(), httpPort, 'sip: { mode: off }\n');
    try {
      const npm = await startGatewayProcess(file, httpPort, ['start', '--', '-c', file], 'npm');
      const gatewayPid = Number(npm.lines.find((l) => l.msg === 'gateway ready')?.pid);
      expect(gatewayPid).toBeGreaterThan(0);
      const rtpenginePid = npm.rtpenginePid();
      expect(alive(rtpenginePid)).toBe(true);
      npm.child.kill('SIGTERM'); // npm's pid only
      await npm.exited;
      await waitFor('the gateway to exit', () => !alive(gatewayPid), 20_000);
      await waitFor('rtpengine to exit', () => !alive(rtpenginePid), 10_000);
      expect(npm.lines.some((l) => l.msg === 'gateway stopped')).toBe(true);
    } finally {
      ports.release();
    }
  }, 240_000);
});
