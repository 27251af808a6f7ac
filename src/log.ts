import { pino, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { LogConfig } from './config/schema.js';

export type { Logger } from 'pino';

/**
 * Fields that may carry what a caller said. Messages are static strings; transcript text only
 * ever travels in these fields, so redaction here covers every log line.
 */
export const TRANSCRIPT_FIELDS = ['text', 'transcript', 'translation', 'words'] as const;

const redactPaths = TRANSCRIPT_FIELDS.flatMap((f) => [f, `*.${f}`]);

/** A logger's bindings as pino keeps them: the JSON members of every line, `,"pid":1,"component":"asr"`. */
type WithBindings = Record<symbol, string>;
const { chindingsSym } = pino.symbols;
const parseBindings = (members: string): Record<string, unknown> => JSON.parse(`{${members.slice(1)}}`) as Record<string, unknown>;

/**
 * A child's binding replaces its parent's of the same name. pino appends a child's bindings to its
 * parent's, so a logger made from one that already has a `component` (the asr engine's under the
 * provider's asr logger) would write `"component"` twice in every line, which JSON parsers read as
 * the last and log shippers reject or keep as the first. Runs once per child, not per line.
 */
function replaceParentBindings(child: Logger): void {
  const own = (child as unknown as WithBindings)[chindingsSym]!;
  const inherited = (Object.getPrototypeOf(child) as WithBindings)[chindingsSym] ?? '';
  const parent = parseBindings(inherited);
  if (!own.startsWith(inherited) || !Object.keys(parseBindings(own.slice(inherited.length))).some((k) => k in parent)) return;
  // JSON.parse keeps the last value of a repeated key (the child's) at the key's first place.
  const merged = Object.entries(parseBindings(own)).map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`);
  (child as unknown as WithBindings)[chindingsSym] = merged.join('');
}

/**
 * `destination` overrides where lines go (tests). Otherwise stdout: JSON lines, or pino-pretty's
 * readable lines for `format: pretty` (and `auto` on a terminal), written synchronously in this
 * thread so nothing is lost when the process exits right after its last line.
 */
export function createLogger(config: LogConfig, destination?: pino.DestinationStream): Logger {
  const pretty = config.format === 'pretty' || (config.format === 'auto' && process.stdout.isTTY === true);
  if (!destination && pretty) destination = pinoPretty({ colorize: process.stdout.isTTY === true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' });
  const options: pino.LoggerOptions = {
    name: 'whisperline',
    level: config.level,
    base: { pid: process.pid },
    onChild: replaceParentBindings,
    ...(config.redactTranscripts ? { redact: { paths: redactPaths, censor: '[redacted]' } } : {}),
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Every log line about one call carries its `callId`. */
export function callLogger(root: Logger, callId: string): Logger {
  return root.child({ callId });
}
