/**
 * The supervisor page in a real browser (headless Debian chromium through playwright-core) against
 * the real parts: transcript store, event hub, supervisor feed, HTTP server with the history API,
 * and a live call transcribed by the real speech pipeline (Silero VAD + whisper.cpp on the tiny
 * random-weight model, whose words are nonsense: the test asserts structure, never words).
 *
 * It checks that the page shows the live call with its parties' labels, a partial replaced in
 * place by the final of the same utterance, the alert on the final's line and on the call, that
 * a dropped socket resumes with its cursor without losing or doubling anything, that a page
 * opened mid-call loads the transcript so far, and that after the call the history lists it,
 * searches it and exports it. A screenshot of the live call lands in test/artifacts/.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WhisperEngine } from '../../src/asr/whisper/engine.js';
import type { Config, SupervisorConfig } from '../../src/config/schema.js';
import { TokenAuth } from '../../src/http/auth.js';
import { CallEventHub } from '../../src/transcripts/event-hub.js';
import { historyRoutes } from '../../src/http/history.js';
import { GatewayHttpServer } from '../../src/http/server.js';
import { SupervisorFeed } from '../../src/feeds/supervisor.js';
import { SpeechRuntime } from '../../src/pipeline/speech-runtime.js';
import { KeywordAlerts } from '../../src/transcripts/alerts.js';
import { TranscriptStore } from '../../src/transcripts/store.js';
import { BatchedVad } from '../../src/vad/batched-vad.js';
import { waitFor } from '../support/net.js';
import { speechFixture, type SpeechFixture } from '../support/speech.js';
import { feedRealtime, toFrames } from '../support/realtime.js';
import { randomModelConfig, startTinyEngine } from '../support/whisper.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const SCREENSHOT = join(ARTIFACTS, 'supervisor-page.png');
const TOKEN = 'page-test-token-0123456789abcdef';
const CALL_ID = 'call-page-1';

const log = pino({ level: 'silent' });
let config: Config;
let vad: BatchedVad;
let engine: WhisperEngine;
let speech: SpeechFixture;
let dir: string;
let store: TranscriptStore;
let hub: CallEventHub;
let feed: SupervisorFeed;
let server: GatewayHttpServer;
let browser: Browser | undefined;
/** Every feed upgrade: its query string, and the socket (to drop it). */
const upgrades: { search: string; socket: Duplex }[] = [];

const MISSING_CHROMIUM = `${CHROMIUM} not found: this test drives Debian's chromium (apt-get install chromium); CI installs it`;

/** The browser; without chromium every test fails (not skips) with this message. */
function requireBrowser(): Browser {
  if (!browser) throw new Error(existsSync(CHROMIUM) ? 'chromium did not start' : MISSING_CHROMIUM);
  return browser;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return; // each test fails with MISSING_CHROMIUM
  config = randomModelConfig();
  config.transcripts.partials = true;
  config.transcripts.partialIntervalMs = 400;
  vad = await BatchedVad.create(config.vad);
  engine = await startTinyEngine(config, log);
  speech = await speechFixture({
    sentences: ['Hello, I would like to check my account balance please.', 'My card number ends in four two seven.', 'Thank you, that is all for today.'],
    gapsMs: [1200, 1200],
    sampleRate: 8000,
    leadMs: 500,
    tailMs: 1200,
  });
  dir = mkdtempSync(join(tmpdir(), 'wl-page-'));
  store = TranscriptStore.open(join(dir, 'calls.db'));
  hub = new CallEventHub({ store, logger: log });
  const auth = new TokenAuth([{ name: 'page-test', token: TOKEN, labels: ['queue-a'] }]);
  const supervisorConfig: SupervisorConfig = { ...config.supervisor, tokens: [], allowedOrigins: [] };
  feed = new SupervisorFeed({ hub, store, auth, config: supervisorConfig, logger: log });
  server = await GatewayHttpServer.start({
    host: '127.0.0.1',
    port: 0,
    health: () => ({ status: 'ok' }),
    logger: log,
    routes: historyRoutes({ store, auth, allowedOrigins: [], live: () => feed.liveCallIds(), logger: log }),
    upgrades: {
      '/v1/supervisor': (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => {
        upgrades.push({ search: url.search, socket });
        feed.handleUpgrade(req, socket, head, url);
      },
    },
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await feed?.close();
  await server?.close();
  await engine?.close();
  await vad?.close();
  store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});



/** Console errors and uncaught exceptions of a page. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

/**
 * The browser globals the page callbacks below use: the project compiles without the DOM lib.
 * Callbacks run in the page, so they name `globalThis` with this type (the cast is erased).
 */
interface PageGlobals {
  getComputedStyle(el: unknown): { readonly color: string; readonly fontStyle: string };
  readonly sessionStorage: { readonly length: number };
  longest: number;
  readonly PerformanceObserver: new (cb: (list: { getEntries(): { readonly duration: number }[] }) => void) => { observe(options: { type: string; buffered: boolean }): void };
}

const card = `article.call[data-call-id="${CALL_ID}"]`;
const storedFinals = () => store.eventsAfter(CALL_ID, 0, 10_000).map((s) => s.event).filter((e) => e.kind === 'final');

describe('supervisor page in a browser', () => {
  it('shows a live call as it is transcribed, resumes after a drop, then finds it in the history', async () => {
    const page = await requireBrowser().newPage({ viewport: { width: 1280, height: 860 } });
    const errors = watchErrors(page);
    await page.goto(`http://127.0.0.1:${server.port}/supervisor/#token=${TOKEN}`);
    await page.waitForSelector('#connection[data-state="connected"]');
    // The token left the address bar (it stays in this tab's sessionStorage).
    expect(page.url()).not.toContain(TOKEN);
    expect(upgrades[0]!.search).not.toContain('cursor=');

    const alerts = new KeywordAlerts([{ name: 'every-final', pattern: '^', severity: 'warning' }]);
    const runtime = new SpeechRuntime({ vad, recognizerFor: () => engine, vadConfig: config.vad, transcripts: config.transcripts, alerts, publish: (e) => hub.publish(e) });
    const transcript = runtime.openCall({ callId: CALL_ID, rule: 'support', labels: ['queue-a'], logger: log });
    transcript.start([{ name: 'caller', label: 'customer' }, { name: 'callee', label: 'agent' }]);
    const caller = transcript.addParty('caller', { label: 'customer' });
    const callee = transcript.addParty('callee', { label: 'agent' });
    vad.start();
    let page2: Page | undefined;
    try {
      const talking = feedRealtime([
        [caller, toFrames('caller', speech.samples16k)],
        [callee, toFrames('callee', new Int16Array(speech.samples16k.length))],
      ]);

      // The call, its rule, labels and parties with their labels.
      await page.waitForSelector(card);
      expect(await page.textContent(`${card} .rule-name`)).toBe('support');
      expect(await page.locator(`${card} .labels li`).allTextContents()).toEqual(['queue-a']);
      expect(await page.textContent(`${card} .party[data-party="caller"] .party-label`)).toBe('customer');
      expect(await page.textContent(`${card} .party[data-party="callee"] .party-label`)).toBe('agent');
      const colours = await page.$$eval(`${card} .party`, (els) => els.map((e) => (globalThis as unknown as PageGlobals).getComputedStyle(e).color));
      expect(new Set(colours).size).toBe(2);
      expect(await page.getAttribute(`${card} .transcript`, 'aria-live')).toBe('polite');

      // A partial (tentative style), then the final of the same utterance in its place.
      const partial = await page.waitForSelector(`${card} li[data-kind="partial"]`, { timeout: 15_000 });
      const party = (await partial.getAttribute('data-party'))!;
      const startMs = (await partial.getAttribute('data-start-ms'))!;
      expect(party).toBe('caller');
      expect(await partial.$eval('.text', (e) => (globalThis as unknown as PageGlobals).getComputedStyle(e).fontStyle)).toBe('italic');
      expect(await partial.$eval('.who', (e) => e.textContent)).toBe('customer');
      const line = `${card} li[data-party="${party}"][data-start-ms="${startMs}"]`;
      await page.waitForSelector(`${line}[data-kind="final"]`, { timeout: 15_000 });
      expect(await page.locator(`${line}[data-kind="partial"]`).count()).toBe(0);
      expect(await page.locator(line).count()).toBe(1);
      expect(await page.$eval(`${line} .text`, (e) => (globalThis as unknown as PageGlobals).getComputedStyle(e).fontStyle)).toBe('normal');

      // The alert on the final's line and on the call.
      await page.waitForSelector(`${line}[data-alert="warning"] .line-alert .rule`);
      expect(await page.textContent(`${line} .line-alert .rule`)).toBe('every-final');
      await page.waitForSelector(`${card} .call-alert[data-severity="warning"]`);
      expect(await page.getAttribute(card, 'data-alert')).toBe('warning');

      // Running duration and state.
      await waitFor('the duration to run', async () => ((await page.textContent(`${card} .duration`)) ?? '') >= '0:02');
      expect(await page.textContent(`${card} .call-state`)).toBe('Live');

      // A dropped socket: the page reconnects with its cursor and misses nothing.
      upgrades[0]!.socket.destroy();
      await waitFor('the page to reconnect', () => upgrades.length >= 2, 10_000);
      expect(upgrades[1]!.search).toMatch(/[?&]cursor=\d+/);
      await page.waitForSelector('#connection[data-state="connected"]');

      // A page opened mid-call loads the transcript so far (listed in `hello`) and goes on live.
      page2 = await requireBrowser().newPage({ viewport: { width: 1280, height: 860 } });
      const errors2 = watchErrors(page2);
      await page2.goto(`http://127.0.0.1:${server.port}/supervisor/#token=${TOKEN}`);
      await page2.waitForSelector(`${line}[data-kind="final"]`);
      expect(errors2).toEqual([]);

      // The screenshot: the live call with finals and alerts.
      expect(await page.textContent(`${card} .call-state`)).toBe('Live');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: SCREENSHOT });

      await talking;
      await transcript.end({ reason: 'bye-caller' });
    } finally {
      vad.stop();
    }

    // Every stored final exactly once, in both pages, after the drop and the mid-call load.
    const finals = storedFinals();
    expect(finals.length).toBeGreaterThan(1);
    for (const p of [page, page2!]) {
      await p.waitForSelector(`${card}[data-state="ended"]`);
      const shown = await p.$$eval(`${card} li[data-kind="final"]`, (els) => els.map((e) => Number(e.getAttribute('data-seq'))));
      expect(shown).toEqual(finals.map((f) => f.seq));
      expect(await p.locator(`${card} li[data-kind="partial"]`).count()).toBe(0);
      expect(await p.locator(`${card} .line-alert`).count()).toBe(finals.length);
    }
    expect(await page.textContent(`${card} .call-state`)).toBe('Ended (bye-caller)');
    await page2!.close();

    // History: the call is listed; the search finds it by words of a final, and only then.
    await page.click('#show-history');
    const item = `.history-item[data-call-id="${CALL_ID}"]`;
    await page.waitForSelector(item);
    const said = finals.map((f) => (f.kind === 'final' ? f.text.trim() : '')).find((t) => t.length >= 3);
    expect(said).toBeDefined();
    await page.fill('#search-input', said!.slice(0, 12));
    await page.press('#search-input', 'Enter');
    await page.waitForSelector(`#history-summary:has-text("with")`);
    await page.waitForSelector(item);
    await page.fill('#search-input', 'no call ever said this 0xdeadbeef');
    await page.press('#search-input', 'Enter');
    await page.waitForSelector('#history-summary:has-text("No calls with")');
    expect(await page.locator(item).count()).toBe(0);
    await page.fill('#search-input', '');
    await page.press('#search-input', 'Enter');
    await page.waitForSelector(item);

    // The call's transcript and an export, fetched with the bearer token.
    await page.click(item);
    await page.waitForSelector('#history-detail li[data-kind="final"]');
    expect(await page.locator('#history-detail li[data-kind="final"]').count()).toBe(finals.length);
    expect(await page.locator('#history-detail .exports a').allTextContents()).toEqual(['JSON', 'WebVTT', 'SRT', 'Text']);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#history-detail .exports a[data-format="vtt"]')]);
    expect(download.suggestedFilename()).toBe(`${CALL_ID}.vtt`);
    const vtt = readFileSync((await download.path())!, 'utf8');
    expect(vtt.startsWith('WEBVTT')).toBe(true);
    expect(vtt).toContain('<v customer>');

    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);

  it('shows a translation under its line in its language, marks what was spoken into the call, and lists prompts', async () => {
    const page = await requireBrowser().newPage({ viewport: { width: 1280, height: 860 } });
    const errors = watchErrors(page);
    await page.goto(`http://127.0.0.1:${server.port}/supervisor/#token=${TOKEN}`);
    await page.waitForSelector('#connection[data-state="connected"]');
    const callId = 'call-page-speech';
    const base = { callId, party: 'caller', startMs: 1000, endMs: 2500 };
    hub.publish({ kind: 'call.started', callId, seq: 1, rule: 'interpreted', labels: ['queue-a'], parties: [{ name: 'caller', label: 'customer' }, { name: 'callee', label: 'agent' }] });
    hub.publish({ kind: 'speech.started', callId, seq: 2, speechId: 'prompt-1', leg: 'caller', purpose: 'prompt', text: 'Welcome to the support line.', provider: 'espeak', ttfaMs: 40 });
    hub.publish({ kind: 'final', seq: 3, text: 'Ich habe eine Frage zu meiner Rechnung.', language: 'de', confidence: 0.9, ...base });
    hub.publish({ kind: 'translation', seq: 4, finalSeq: 3, text: 'I have a question about my bill.', sourceLanguage: 'de', language: 'en', provider: 'chat', ...base });
    hub.publish({ kind: 'speech.started', callId, seq: 5, speechId: 'interpretation-1', leg: 'callee', purpose: 'interpretation', text: 'I have a question about my bill.', language: 'en', provider: 'espeak', ttfaMs: 35, translationSeq: 4 });
    hub.publish({ kind: 'speech.failed', callId, seq: 6, speechId: 'prompt-2', leg: 'caller', purpose: 'prompt', text: 'Goodbye.', error: { code: 'TTS_FAILED', message: 'every synthesizer failed' } });
    const speechCard = `article.call[data-call-id="${callId}"]`;
    await page.waitForSelector(`${speechCard} p.translation .spoken`, { timeout: 10_000 });
    expect(await page.getAttribute(`${speechCard} p.translation`, 'lang')).toBe('en');
    expect(await page.textContent(`${speechCard} p.translation .tag`)).toBe('EN');
    expect(await page.textContent(`${speechCard} p.translation .spoken`)).toContain('to callee');
    expect(await page.textContent(`${speechCard} li.speech-prompt`)).toContain('Welcome to the support line.');
    expect(await page.textContent(`${speechCard} li.speech-failed`)).toContain('every synthesizer failed');
    hub.publish({ kind: 'call.ended', callId, seq: 7, reason: 'bye-caller', durationMs: 3000, parties: {} });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('asks for a token when it has none or the gateway refuses it', async () => {
    const page = await requireBrowser().newPage();
    const errors = watchErrors(page);
    await page.goto(`http://127.0.0.1:${server.port}/#token=not-the-right-token-at-all`);
    expect(new URL(page.url()).pathname).toBe('/supervisor/');
    await page.waitForSelector('#login:not([hidden])');
    expect(await page.textContent('#login-error')).toMatch(/did not accept/);
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).sessionStorage.length)).toBe(0);
    // The form, by keyboard.
    await page.focus('#token-input');
    await page.keyboard.type(TOKEN);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#connection[data-state="connected"]');
    expect(await page.isHidden('#login')).toBe(true);
    // A reload keeps the tab's token.
    await page.reload();
    await page.waitForSelector('#connection[data-state="connected"]');
    // The refused handshake and API call are the browser's own reports, nothing else.
    expect(errors.filter((e) => !/WebSocket connection to .* failed|status of 401/.test(e))).toEqual([]);
    await page.close();
  });

  it('keeps up with 100 live calls without long main-thread stalls', async () => {
    const page = await requireBrowser().newPage({ viewport: { width: 1600, height: 1000 } });
    const errors = watchErrors(page);
    await page.goto(`http://127.0.0.1:${server.port}/supervisor/#token=${TOKEN}`);
    await page.waitForSelector('#connection[data-state="connected"]');
    await page.evaluate(() => {
      const w = globalThis as unknown as PageGlobals;
      w.longest = 0;
      new w.PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.longest = Math.max(w.longest, e.duration);
      }).observe({ type: 'longtask', buffered: true });
    });
    const CALLS = 100;
    const ROUNDS = 10;
    const seqs = new Map<string, number>();
    const next = (id: string) => {
      const s = (seqs.get(id) ?? 0) + 1;
      seqs.set(id, s);
      return s;
    };
    const ids = Array.from({ length: CALLS }, (_, i) => `load-${String(i).padStart(3, '0')}`);
    const t0 = Date.now();
    for (const callId of ids) {
      hub.publish({ kind: 'call.started', callId, seq: next(callId), rule: 'support', labels: ['queue-a'], parties: [{ name: 'caller', label: 'customer' }, { name: 'callee', label: 'agent' }] });
    }
    // Ten utterances per call, each a partial, its final and an alert: 3000 events in about 2 s.
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, callId] of ids.entries()) {
        const party = (round + i) % 2 === 0 ? 'caller' : 'callee';
        const base = { callId, party, startMs: round * 3000, endMs: round * 3000 + 2000, language: 'en', confidence: 0.8 };
        hub.publish({ kind: 'partial', seq: next(callId), text: `utterance ${round} so far`, ...base });
        const finalSeq = next(callId);
        hub.publish({ kind: 'final', seq: finalSeq, text: `utterance ${round} of ${callId}`, ...base });
        hub.publish({ kind: 'alert', callId, seq: next(callId), party, rule: 'load', severity: round % 3 === 0 ? 'critical' : 'info', finalSeq, text: 'utterance', startMs: base.startMs, endMs: base.endMs });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await waitFor('every final on the page', async () => (await page.locator('li[data-kind="final"]').count()) === CALLS * ROUNDS, 20_000);
    const elapsed = Date.now() - t0;
    expect(await page.locator('article.call').count()).toBe(CALLS);
    expect(await page.locator('li[data-kind="partial"]').count()).toBe(0);
    expect(await page.textContent('#live-count')).toBe(String(CALLS));
    const longest = await page.evaluate(() => (globalThis as unknown as PageGlobals).longest);
    console.log(`100 live calls: ${CALLS * ROUNDS * 3} events shown ${elapsed} ms after the first; longest main-thread task ${Math.round(longest)} ms`);
    expect(longest).toBeLessThan(500);
    for (const callId of ids) hub.publish({ kind: 'call.ended', callId, seq: next(callId), reason: 'hangup', durationMs: 5000, parties: {} });
    await waitFor('every call ended on the page', async () => (await page.locator('article.call[data-state="ended"]').count()) === CALLS);
    expect(await page.textContent('#live-count')).toBe('0');
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
