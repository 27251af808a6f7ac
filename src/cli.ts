#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/load.js';
import { createLogger } from './log.js';
import { startGateway } from './main.js';

const USAGE = `whisperline: SIP voice gateway with live Whisper transcription

Usage:
  whisperline start [--config FILE]     run the gateway (embedded defaults when no file is given)
  whisperline check-config [FILE]       validate configuration (defaults + FILE + environment)
  whisperline --version

Environment: WHISPERLINE_CONFIG names a config file; WHISPERLINE_<KEY_PATH> overrides one key
(e.g. WHISPERLINE_MEDIA_REORDER_WINDOW_MS=40). See config/default.yaml.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Prints a configuration error the way both `start` and `check-config` report it; exit code 2. */
function reportConfigError(err: unknown): number {
  if (err instanceof ConfigError) {
    console.error(err.message);
    return 2;
  }
  throw err;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.version) {
    console.log(version());
    return 0;
  }
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    console.log(USAGE);
    return command === undefined && !values.help ? 1 : 0;
  }
  switch (command) {
    case 'check-config': {
      const file = rest[0] ?? values.config;
      try {
        const config = loadConfig({ file });
        console.log(`configuration OK (${file ?? process.env.WHISPERLINE_CONFIG ?? 'embedded defaults'})`);
        console.log(JSON.stringify(config, null, 2));
        return 0;
      } catch (err) {
        return reportConfigError(err);
      }
    }
    case 'start': {
      let config;
      try {
        config = loadConfig({ file: values.config });
      } catch (err) {
        return reportConfigError(err);
      }
      const log = createLogger(config.log);
      const gateway = await startGateway(config, log);
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals): void => {
          log.info({ signal }, 'shutting down');
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void gateway.close().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      return 0;
    }
    default:
      console.error(`unknown command "${command}"\n\n${USAGE}`);
      return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    process.exitCode = 1;
  },
);
