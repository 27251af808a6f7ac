import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { callLogger, createLogger } from './log.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; raw: () => string[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const raw = (): string[] => chunks.join('').trim().split('\n');
  return { stream, lines: () => raw().map((l) => JSON.parse(l) as Record<string, unknown>), raw };
}

describe('logging', () => {
  it('redacts transcript fields when configured, and tags call loggers with callId', () => {
    const out = capture();
    const root = createLogger({ level: 'info', format: 'json', redactTranscripts: true }, out.stream);
    callLogger(root, 'call-1').info({ text: 'my card number is 4111', party: 'caller' }, 'final transcript');
    const [line] = out.lines();
    expect(line).toMatchObject({ callId: 'call-1', party: 'caller', text: '[redacted]', msg: 'final transcript' });
  });

  it('keeps transcript fields when redaction is off', () => {
    const out = capture();
    const root = createLogger({ level: 'info', format: 'json', redactTranscripts: false }, out.stream);
    root.info({ text: 'hello' }, 'final transcript');
    expect(out.lines()[0]).toMatchObject({ text: 'hello' });
  });

  it("writes each key once when a child is bound again with a key its parent has: the child's value wins", () => {
    const out = capture();
    const root = createLogger({ level: 'info', format: 'json', redactTranscripts: true }, out.stream);
    // As the provider's asr logger is handed to the engine, which binds its own component.
    const asr = root.child({ component: 'asr' });
    asr.child({ component: 'asr' }).info('engine started');
    asr.child({ component: 'asr', model: 'small' }).child({ component: 'asr-server', model: 'small' }).info({ port: 1 }, 'server started');
    callLogger(callLogger(root, 'call-1'), 'call-2').child({ rule: 'line' }).info('call answered');
    asr.child({ text: 'my card number is 4111' }).info('redacted binding');
    const count = (line: string, key: string): number => line.split(`"${key}":`).length - 1;
    const [first, second, third, fourth] = out.raw();
    // Counted in the raw text: JSON.parse would hide a repeated key.
    expect(count(first!, 'component')).toBe(1);
    expect(count(second!, 'component')).toBe(1);
    expect(count(second!, 'model')).toBe(1);
    expect(count(third!, 'callId')).toBe(1);
    expect(count(fourth!, 'component')).toBe(1);
    expect(out.lines()).toMatchObject([
      { component: 'asr', msg: 'engine started' },
      { component: 'asr-server', model: 'small', port: 1, pid: process.pid, name: 'whisperline', msg: 'server started' },
      { callId: 'call-2', rule: 'line', msg: 'call answered' },
      { component: 'asr', text: '[redacted]', msg: 'redacted binding' },
    ]);
  });

  it('writes readable lines for format pretty and JSON lines for auto when stdout is not a terminal', () => {
    const run = (format: string): string => {
      const script = `import { createLogger } from './src/log.ts'; const log = createLogger({ level: 'info', format: '${format}', redactTranscripts: true }); log.child({ component: 'sip' }).info({ callId: 'c1' }, 'call answered');`;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: new URL('..', import.meta.url).pathname, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout;
    };
    const pretty = run('pretty');
    expect(pretty).toMatch(/INFO.*call answered/);
    expect(pretty).toMatch(/component: "sip"/);
    expect(() => JSON.parse(pretty)).toThrow();
    // Piped (as here, and under systemd or Docker): JSON for machines.
    expect(JSON.parse(run('auto'))).toMatchObject({ level: 30, component: 'sip', callId: 'c1', msg: 'call answered' });
  });
});
