import { pino, type Logger } from 'pino';
import type { LogConfig } from './config/schema.js';

export type { Logger } from 'pino';

/**
 * Fields that may carry what a caller said. Messages are static strings; transcript text only
 * ever travels in these fields, so redaction here covers every log line.
 */
export const TRANSCRIPT_FIELDS = ['text', 'transcript', 'translation', 'words'] as const;

const redactPaths = TRANSCRIPT_FIELDS.flatMap((f) => [f, `*.${f}`]);

export function createLogger(config: LogConfig, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    name: 'whisperline',
    level: config.level,
    base: { pid: process.pid },
    ...(config.redactTranscripts ? { redact: { paths: redactPaths, censor: '[redacted]' } } : {}),
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Every log line about one call carries its `callId`. */
export function callLogger(root: Logger, callId: string): Logger {
  return root.child({ callId });
}
