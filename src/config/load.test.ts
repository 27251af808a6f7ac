import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { IncomingMessage } from 'node:http';
import { asrProvider } from '../asr/provider.js';
import { canSee, TokenAuth } from '../http/auth.js';
import { ConfigError, DEFAULT_CONFIG_PATH, envNames, loadConfig } from './load.js';

const dir = mkdtempSync(join(tmpdir(), 'wl-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('accepts the embedded defaults on their own', () => {
    const config = loadConfig({ env: {} });
    expect(config.media.reorderWindowMs).toBe(60);
    expect(config.rtpengine.port).toBe(22222);
  });

  it('refuses drachtio\'s sample secret on an outbound listener beyond loopback, and takes sip.mode off', () => {
    const outbound = { WHISPERLINE_SIP_MODE: 'outbound', WHISPERLINE_SIP_LISTEN_HOST: '0.0.0.0' };
    const issues = issuesOf(() => loadConfig({ env: outbound }));
    expect(issues.map((i) => `${i.path}: ${i.message}`).join('\n')).toMatch(/sip\.drachtioSecret.*well-known default secret "cymru".*sip\.listenHost \(0\.0\.0\.0\)/);
    expect(loadConfig({ env: { ...outbound, WHISPERLINE_SIP_DRACHTIO_SECRET: 'a-secret-of-our-own' } }).sip.listenHost).toBe('0.0.0.0');
    // Loopback (the default listenHost) is only reachable from this machine.
    expect(loadConfig({ env: { WHISPERLINE_SIP_MODE: 'outbound' } }).sip.listenHost).toBe('127.0.0.1');
    expect(loadConfig({ env: { WHISPERLINE_SIP_MODE: 'off' } }).sip.mode).toBe('off');
  });

  it('refuses to serve ingest beyond loopback without API keys, saying how to fix it', () => {
    const open = { WHISPERLINE_HTTP_HOST: '0.0.0.0' };
    const issues = issuesOf(() => loadConfig({ env: open }));
    expect(issues.map((i) => `${i.path}: ${i.message}`).join('\n')).toMatch(/feeds\.ingest\.apiKeys: API keys are required when http\.host \(0\.0\.0\.0\) is not loopback.*Set feeds\.ingest\.apiKeys.*or bind http\.host to 127\.0\.0\.1/);
    expect(loadConfig({ env: { ...open, WHISPERLINE_FEEDS_INGEST_API_KEYS: '["a-key-of-sixteen-chars"]' } }).http.host).toBe('0.0.0.0');
  });

  it('documents every key of default.yaml with a comment line right above it', () => {
    const lines = readFileSync(DEFAULT_CONFIG_PATH, 'utf8').split('\n');
    const undocumented = lines.filter((line, i) => {
      if (!/^\s*[A-Za-z]+:/.test(line)) return false;
      // a key is documented by a comment above it, or is a group heading whose children are
      let j = i - 1;
      while (j >= 0 && /^\s*[A-Za-z]+:\s*\S/.test(lines[j]!) && !/^\s*#/.test(lines[j]!)) j--;
      return !/^\s*#/.test(lines[j] ?? '') && !/:\s*$/.test(line);
    });
    expect(undocumented).toEqual([]);
  });

  it('merges a user file over the defaults', () => {
    const config = loadConfig({ file: file('ok.yaml', 'media:\n  portMin: 31000\n  portMax: 31010\n'), env: {} });
    expect(config.media.portMin).toBe(31000);
    expect(config.media.reorderWindowMs).toBe(60);
  });

  it('names the path of a bad key and what was expected', () => {
    const issues = issuesOf(() => loadConfig({ file: file('bad.yaml', 'media:\n  reorderWindowMs: soon\n  portz: 3\n'), env: {} }));
    expect(issues).toContainEqual({ path: 'media.reorderWindowMs', message: expect.stringMatching(/expected number/) });
    expect(issues).toContainEqual({ path: 'media.portz', message: 'unknown key' });
  });

  it('rejects an inverted port range', () => {
    const issues = issuesOf(() => loadConfig({ file: file('range.yaml', 'media:\n  portMin: 5000\n  portMax: 4000\n'), env: {} }));
    expect(issues).toEqual([{ path: 'media.portMax', message: 'must be >= portMin (5000)' }]);
  });

  it('lets environment variables override single keys, parsed as YAML scalars', () => {
    const config = loadConfig({ env: { WHISPERLINE_MEDIA_REORDER_WINDOW_MS: '40', WHISPERLINE_RTPENGINE_LAUNCH: 'false' } });
    expect(config.media.reorderWindowMs).toBe(40);
    expect(config.rtpengine.launch).toBe(false);
  });

  it('fails on an unknown WHISPERLINE_ variable and on a bad value from the environment', () => {
    const issues = issuesOf(() => loadConfig({ env: { WHISPERLINE_MEDIA_REORDER_WINDOW: '40', WHISPERLINE_LOG_LEVEL: 'loud' } }));
    expect(issues.map((i) => i.path).sort()).toEqual(['WHISPERLINE_MEDIA_REORDER_WINDOW', 'log.level']);
  });

  it('picks the speech recognition provider: remote needs its servers; keys of the old flat asr section say where they moved', () => {
    expect(loadConfig({ env: {} }).asr).toMatchObject({ provider: 'local', local: { poolSize: 1 }, remote: { servers: [] } });
    expect(asrProvider(loadConfig({ env: {} }).asr)).toMatchObject({ kind: 'local', model: 'base', local: { threads: 2 } });
    const remote = loadConfig({ env: { WHISPERLINE_ASR_PROVIDER: 'remote', WHISPERLINE_ASR_REMOTE_SERVERS: '[http://gpu-1:8080, http://gpu-2:8080]' } });
    expect(asrProvider(remote.asr)).toEqual({ kind: 'remote', servers: ['http://gpu-1:8080', 'http://gpu-2:8080'] });
    expect(issuesOf(() => loadConfig({ env: { WHISPERLINE_ASR_PROVIDER: 'remote' } }))).toEqual([
      { path: 'asr.remote.servers', message: 'provider remote needs at least one whisper-server URL' },
    ]);
    expect(issuesOf(() => loadConfig({ env: { WHISPERLINE_ASR_PROVIDER: 'openai' } }))[0]!.path).toBe('asr.provider');
    const old = file('old-asr.yaml', 'asr:\n  servers: [http://gpu-1:8080]\n  poolSize: 2\n');
    expect(issuesOf(() => loadConfig({ file: old, env: {} }))).toEqual([
      { path: 'asr.servers', message: 'unknown key; it moved to asr.remote.servers (with asr.provider: remote)' },
      { path: 'asr.poolSize', message: 'unknown key; it moved to asr.local.poolSize' },
    ]);
    expect(issuesOf(() => loadConfig({ env: { WHISPERLINE_ASR_THREADS: '4' } }))[0]!.message).toMatch(/moved to asr\.local\.threads/);
  });

  it('names every allowed value of a choice, and what it got', () => {
    const issues = issuesOf(() => loadConfig({ env: { WHISPERLINE_LOG_LEVEL: 'verbose', WHISPERLINE_VAD_SAMPLE_RATE: '44100', WHISPERLINE_ASR_AUDIO_CONTEXT: 'full' } }));
    expect(issues).toEqual([
      { path: 'log.level', message: 'expected one of "trace", "debug", "info", "warn", "error", "fatal", "silent" (got "verbose")' },
      { path: 'vad.sampleRate', message: 'expected one of 8000, 16000 (got 44100)' },
      { path: 'asr.audioContext', message: 'expected one of "auto", a number (got "full")' },
    ]);
    // A value of the right type out of range is told its bound, not the list of alternatives.
    expect(issuesOf(() => loadConfig({ env: { WHISPERLINE_ASR_AUDIO_CONTEXT: '5000' } }))).toEqual([{ path: 'asr.audioContext', message: expect.stringMatching(/<=1500/) }]);
  });

  it("does not read the test suite's WHISPERLINE_TEST_ variables, or other switches that are not settings, as keys", () => {
    const config = loadConfig({
      env: { WHISPERLINE_TEST_TINY_MODEL: '/tmp/tiny.bin', WHISPERLINE_TEST_WHISPER_CLI: '/tmp/whisper-cli', WHISPERLINE_NO_SIMD: '1', WHISPERLINE_BUILD_DIR: '/tmp/b', WHISPERLINE_CONFIG: '' },
    });
    expect(config.asr.model).toBe('base');
    expect(issuesOf(() => loadConfig({ env: { WHISPERLINE_TESTS_MODEL: 'x' } }))).toEqual([{ path: 'WHISPERLINE_TESTS_MODEL', message: expect.stringMatching(/^unknown setting/) }]);
  });

  it('gives a supervisor token without labels every call, as documented', () => {
    const config = loadConfig({ file: file('tokens.yaml', 'supervisor:\n  tokens:\n    - {name: all, token: all-calls-token-0123}\n    - {name: sales, token: sales-token-012345, labels: [queue:sales]}\n'), env: {} });
    const auth = new TokenAuth(config.supervisor.tokens);
    const as = (token: string) => auth.authenticate({ headers: { authorization: `Bearer ${token}` } } as IncomingMessage, new URL('http://gateway/v1/supervisor'));
    const all = as('all-calls-token-0123')!;
    expect(all).toEqual({ name: 'all', labels: [] });
    expect(canSee(all, ['queue:support'])).toBe(true);
    expect(canSee(all, [])).toBe(true);
    const sales = as('sales-token-012345')!;
    expect(canSee(sales, ['queue:sales'])).toBe(true);
    expect(canSee(sales, ['queue:support'])).toBe(false);
  });

  it('takes an optional metrics token of at least 16 characters', () => {
    expect(loadConfig({ env: {} }).http.metricsToken).toBeUndefined();
    expect(loadConfig({ env: { WHISPERLINE_HTTP_METRICS_TOKEN: 'scrape-token-0123456' } }).http.metricsToken).toBe('scrape-token-0123456');
    expect(issuesOf(() => loadConfig({ env: { WHISPERLINE_HTTP_METRICS_TOKEN: 'short' } }))).toEqual([{ path: 'http.metricsToken', message: 'tokens are at least 16 characters' }]);
  });

  it('reports YAML syntax errors with the line', () => {
    const issues = issuesOf(() => loadConfig({ file: file('syntax.yaml', 'media:\n  portMin: [1,\n'), env: {} }));
    expect(issues[0]!.path).toMatch(/^line \d+$/);
  });

  it('gives every default key a distinct environment name', () => {
    const defaults = parse(readFileSync(DEFAULT_CONFIG_PATH, 'utf8')) as Record<string, unknown>;
    const names = envNames(defaults);
    expect(names.get('WHISPERLINE_MEDIA_FORK_CODEC')).toEqual(['media', 'forkCodec']);
    expect(names.size).toBeGreaterThan(10);
  });
});
