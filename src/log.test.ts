import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { callLogger, createLogger } from './log.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, lines: () => chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
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
});
