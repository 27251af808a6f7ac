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
    const root = createLogger({ level: 'info', redactTranscripts: true }, out.stream);
    callLogger(root, 'call-1').info({ text: 'my card number is 4111', party: 'caller' }, 'final transcript');
    const [line] = out.lines();
    expect(line).toMatchObject({ callId: 'call-1', party: 'caller', text: '[redacted]', msg: 'final transcript' });
  });

  it('keeps transcript fields when redaction is off', () => {
    const out = capture();
    const root = createLogger({ level: 'info', redactTranscripts: false }, out.stream);
    root.info({ text: 'hello' }, 'final transcript');
    expect(out.lines()[0]).toMatchObject({ text: 'hello' });
  });

  it("writes each key once when a child is bound again with a key its parent has: the child's value wins", () => {
    const out = capture();
    const root = createLogger({ level: 'info', redactTranscripts: true }, out.stream);
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
});
