/** The `whisperline` command as a user runs it: a child process, its output and exit code. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

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

  it('start fails fast on a bad environment override, before touching the network', () => {
    const r = whisperline(['start'], { WHISPERLINE_RTPENGINE_TIMEOUT_MS: 'soon' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('rtpengine.timeoutMs: Invalid input: expected number');
  });

  it('rejects an unknown command with usage', () => {
    const r = whisperline(['transcribe-everything']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown command');
  });
});
