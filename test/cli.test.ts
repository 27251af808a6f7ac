/** The `whisperline` command as a user runs it: a child process, its output and exit code. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TranscriptStore } from '../src/transcripts/store.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli.ts');
const dir = mkdtempSync(join(tmpdir(), 'wl-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function whisperline(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHISPERLINE_')));
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...clean, ...env }, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('whisperline CLI', () => {
  it('check-config accepts the embedded defaults and prints the effective configuration', () => {
    const r = whisperline(['check-config']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('configuration OK (embedded defaults)');
    expect(r.stdout).toContain('dialplans OK (dialplans: siprec-recording, transcription-line)');
    expect(JSON.parse(r.stdout.slice(r.stdout.indexOf('{')))).toMatchObject({ media: { reorderWindowMs: 60 } });
  });

  it('check-config names every bad key, with exit code 2', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'rtpengine:\n  port: 99999\nmedia:\n  reorderWindowMs: 500\n  forkCodec: G729\n');
    const r = whisperline(['check-config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('rtpengine.port:');
    expect(r.stderr).toContain('media.reorderWindowMs:');
    expect(r.stderr).toMatch(/media\.forkCodec: .*"PCMU"/);
  });

  it('check-config validates the dialplans too, naming the file and key', () => {
    const plans = join(dir, 'dialplans');
    mkdirSync(plans);
    writeFileSync(join(plans, 'sales.yaml'), 'rules:\n  - name: sales\n    action: bridge\n');
    const r = whisperline(['check-config'], { WHISPERLINE_SIP_DIALPLANS: plans });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid dialplan sales.yaml');
    expect(r.stderr).toContain('rules.0.target: a bridge rule needs a target URI');
  });

  it('check-config refuses a rule naming a synthesizer or translator the configuration lacks, and a bad provider setting by its path', () => {
    const plans = join(dir, 'dialplans-speech');
    mkdirSync(plans);
    writeFileSync(join(plans, 'greet.yaml'), 'rules:\n  - name: greet\n    action: answer\n    say: Welcome.\n    synthesizer: kokoro\n    translator: deepl\n');
    const r = whisperline(['check-config'], { WHISPERLINE_SIP_DIALPLANS: plans });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\(greet\): synthesizer "kokoro" is not in tts.providers \(espeak\)/);
    expect(r.stderr).toMatch(/\(greet\): translator "deepl" is not in translation.providers \(whisper\)/);
    const bad = whisperline(['check-config'], { WHISPERLINE_TTS_PROVIDERS: '[{name: kokoro, type: openai, baseUrl: "http://127.0.0.1:8880"}]' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/tts\.providers\.0\.model/);
    expect(bad.stderr).toMatch(/tts\.providers\.0\.voice/);
    const secret = whisperline(['check-config'], { WHISPERLINE_TRANSLATION_PROVIDERS: '[{name: deepl, type: deepl, authKey: "deepl-auth-key-0123456789:fx"}]' });
    expect(secret.code).toBe(0);
    expect(secret.stdout).not.toContain('deepl-auth-key-0123456789');
  });

  it('check-config shows that secrets are set without printing them', () => {
    const secret = 'drachtio-secret-0123456789';
    const tokenA = 'supervisor-token-a-0123456789';
    const tokenB = 'supervisor-token-b-0123456789';
    const apiKey = 'ingest-api-key-0123456789';
    const metricsToken = 'metrics-token-0123456789';
    const file = join(dir, 'secrets.yaml');
    writeFileSync(
      file,
      [
        'supervisor:',
        '  tokens:',
        `    - {name: queue-a, token: ${tokenA}, labels: [queue-a]}`,
        `    - {name: everyone, token: ${tokenB}}`,
        'feeds:',
        '  ingest:',
        `    apiKeys: [${apiKey}]`,
        'asr:',
        '  provider: remote',
        '  remote:',
        '    servers: ["http://whisper:url-password-0123@gpu-1:8080"]',
        '',
      ].join('\n'),
    );
    const r = whisperline(['check-config', file], { WHISPERLINE_SIP_DRACHTIO_SECRET: secret, WHISPERLINE_HTTP_METRICS_TOKEN: metricsToken });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const value of [secret, tokenA, tokenB, apiKey, metricsToken, 'url-password-0123']) expect(r.stdout).not.toContain(value);
    const printed = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as Record<string, Record<string, unknown>>;
    expect(printed.sip!.drachtioSecret).toBe(`<set, ${secret.length} characters>`);
    expect(printed.http!.metricsToken).toBe(`<set, ${metricsToken.length} characters>`);
    expect(printed.supervisor!.tokens).toEqual([
      { name: 'queue-a', token: `<set, ${tokenA.length} characters>`, labels: ['queue-a'] },
      { name: 'everyone', token: `<set, ${tokenB.length} characters>`, labels: [] },
    ]);
    expect(printed.feeds!.ingest).toMatchObject({ apiKeys: [`<set, ${apiKey.length} characters>`] });
    expect(printed.asr!.remote).toEqual({ servers: ['http://whisper:<redacted>@gpu-1:8080/'] });
  });

  it('check-config fails on a dialplan rule naming an unknown model, naming the rule and the known models', () => {
    const plans = join(dir, 'dialplans-model');
    mkdirSync(plans);
    writeFileSync(join(plans, 'line.yaml'), 'rules:\n  - name: sales-line\n    action: answer\n    model: larg-v3\n  - name: support-line\n    action: answer\n    model: small.en\n');
    const r = whisperline(['check-config'], { WHISPERLINE_SIP_DIALPLANS: plans });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('rule "sales-line": unknown model "larg-v3"');
    expect(r.stderr).not.toContain('support-line');
    expect(r.stderr).toMatch(/known: tiny, tiny\.en, base, .*large-v3,/);
  });

  it("ignores the test suite's own WHISPERLINE_TEST_ variables and other non-setting WHISPERLINE_ switches", () => {
    const r = whisperline(['check-config'], { WHISPERLINE_TEST_TINY_MODEL: '/tmp/tiny.bin', WHISPERLINE_TEST_WHISPER_SERVER: '/tmp/whisper-server', WHISPERLINE_NO_SIMD: '1', WHISPERLINE_BUILD_DIR: '/tmp/build' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // A real typo is still caught.
    expect(whisperline(['check-config'], { WHISPERLINE_TESTING: '1' }).stderr).toContain('WHISPERLINE_TESTING: unknown setting');
  });

  it('start fails fast on a bad environment override, before touching the network', () => {
    const r = whisperline(['start'], { WHISPERLINE_RTPENGINE_TIMEOUT_MS: 'soon' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('rtpengine.timeoutMs: Invalid input: expected number');
  });

  it('export prints a stored call from store.path, and fails clearly on an unknown call or file', () => {
    const path = join(dir, 'store', 'transcripts.db');
    const store = TranscriptStore.open(path);
    store.record({ kind: 'call.started', callId: 'c1', seq: 1, rule: 'r', labels: [], parties: [{ name: 'caller', label: 'Customer' }] });
    store.record({ kind: 'final', callId: 'c1', seq: 2, party: 'caller', text: 'Hello there.', startMs: 61_500, endMs: 63_000, language: 'en', confidence: 1 });
    store.close();
    const env = { WHISPERLINE_STORE_PATH: path };

    expect(whisperline(['export', 'c1'], env)).toMatchObject({ code: 0, stdout: '[01:01] Customer: Hello there.\n' });
    const srt = whisperline(['export', 'c1', '--format', 'srt'], env);
    expect(srt.stdout).toBe('1\n00:01:01,500 --> 00:01:03,000\nCustomer: Hello there.\n');

    const unknown = whisperline(['export', 'c2'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no call "c2"');
    const missing = whisperline(['export', 'c1'], { WHISPERLINE_STORE_PATH: join(dir, 'nope.db') });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no transcript store at');
    expect(whisperline(['export', 'c1', '--format', 'doc'], env).code).toBe(1);
  });

  it('rejects an unknown command with usage', () => {
    const r = whisperline(['transcribe-everything']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown command');
  });
});
