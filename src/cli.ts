#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { downloadModel, isKnownModel, listModels, MODEL_CHOICES, progressLine } from './asr/whisper/models.js';
import { ConfigError, loadConfig, redactSecrets } from './config/load.js';
import type { Config } from './config/schema.js';
import { WhisperlineError } from './errors.js';
import { createLogger } from './log.js';
import { checkRuleProviders, startGateway, startSpeech } from './main.js';
import { transcribeFile } from './pipeline/transcribe-file.js';
import { DialplanError } from './sip/dialplan.js';
import { loadDialplans } from './sip/dialplan-store.js';
import type { CallEvent } from './transcripts/events.js';
import { SpeechRuntime } from './pipeline/speech-runtime.js';
import { EXPORT_FORMATS, exportCall, type ExportFormat } from './transcripts/export.js';
import { TranscriptStore } from './transcripts/store.js';

const USAGE = `whisperline: SIP voice gateway with live Whisper transcription

Usage:
  whisperline start [--config FILE]     run the gateway (embedded defaults when no file is given)
  whisperline check-config [FILE]       validate configuration (defaults + FILE + environment)
  whisperline transcribe [--json] [--language L] [--translate] FILE...
                                        transcribe recorded calls (WAV: PCM or G.711; stereo =
                                        caller left, callee right) through the live pipeline
  whisperline models list               Whisper models: which are known, which are downloaded
  whisperline models download NAME      download a model into asr.modelDir (progress, SHA-1 check)
  whisperline export CALL_ID [--format txt|vtt|srt|json]
                                        a stored call's transcript from store.path (default txt)
  whisperline --version

Environment: WHISPERLINE_CONFIG names a config file; WHISPERLINE_<KEY_PATH> overrides one key
(e.g. WHISPERLINE_MEDIA_REORDER_WINDOW_MS=40). See config/default.yaml.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Prints a configuration error the way every command reports it; exit code 2. */
function reportConfigError(err: unknown): number {
  if (err instanceof ConfigError) {
    console.error(err.message);
    return 2;
  }
  throw err;
}

/** The configuration, or the exit code after reporting why there is none. */
function configOrReport(file: string | undefined): Config | number {
  try {
    return loadConfig({ file });
  } catch (err) {
    return reportConfigError(err);
  }
}

// `whisperline models list | head`: a closed pipe ends the output, not the process with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

/** Beyond the SIP drain's grace period, what closing ingest, feeds, speech and the store may take. */
const SHUTDOWN_SLACK_MS = 15_000;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      language: { type: 'string' },
      translate: { type: 'boolean' },
      format: { type: 'string', short: 'f' },
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
      let config;
      try {
        config = loadConfig({ file });
      } catch (err) {
        return reportConfigError(err);
      }
      try {
        const dialplan = await loadDialplans(config.sip.dialplans, config.sip.noMatchStatus);
        // A misspelt model would otherwise surface only when the rule's first call starts its engine.
        const badModels = dialplan.rules.flatMap(({ rule }) => (rule.action !== 'reject' && rule.model !== undefined && !isKnownModel(rule.model) ? [`  rule "${rule.name}": unknown model "${rule.model}"`] : []));
        if (badModels.length > 0) {
          console.error(`invalid dialplans (${config.sip.dialplans}):\n${badModels.join('\n')}\n  (${MODEL_CHOICES})`);
          return 2;
        }
        const named = (providers: readonly { name: string }[]) => ({ names: providers.map((p) => p.name), has: (n: string) => providers.some((p) => p.name === n) });
        try {
          checkRuleProviders(dialplan.rules, named(config.tts.providers), named(config.translation.providers));
        } catch (err) {
          console.error((err as Error).message);
          return 2;
        }
        console.log(`configuration OK (${file ?? process.env.WHISPERLINE_CONFIG ?? 'embedded defaults'})`);
        console.log(`dialplans OK (${config.sip.dialplans}: ${dialplan.rules.map((r) => r.rule.name).join(', ') || 'no rules'})`);
        // Secrets are shown as set, never printed: this output ends up in tickets and CI logs.
        console.log(JSON.stringify(redactSecrets(config), null, 2));
        return 0;
      } catch (err) {
        if (err instanceof DialplanError) {
          console.error(err.message);
          return 2;
        }
        throw err;
      }
    }
    case 'start': {
      const config = configOrReport(values.config);
      if (typeof config === 'number') return config;
      const log = createLogger(config.log);
      const gateway = await startGateway(config, log);
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals): void => {
          log.info({ signal, graceMs: config.sip.drainGraceMs }, 'shutting down');
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          // A second signal is the operator insisting (a second Ctrl-C): go now.
          const insist = (again: NodeJS.Signals): void => {
            log.warn({ signal: again }, 'second signal: exiting without finishing the shutdown');
            process.exit(1);
          };
          process.once('SIGINT', insist);
          process.once('SIGTERM', insist);
          // A stop timeout (systemd, Docker) ends in SIGKILL: better to exit ourselves, saying why.
          const deadline = setTimeout(() => {
            log.error({ afterMs: config.sip.drainGraceMs + SHUTDOWN_SLACK_MS }, 'shutdown did not finish in time; exiting');
            process.exit(1);
          }, config.sip.drainGraceMs + SHUTDOWN_SLACK_MS);
          deadline.unref();
          void gateway.close().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      // Everything the gateway started is released; a library's stray timer must not hold the exit.
      setTimeout(() => process.exit(0), 1000).unref();
      return 0;
    }
    case 'transcribe': {
      if (rest.length === 0) {
        console.error('usage: whisperline transcribe [--json] [--language L] [--translate] FILE...');
        return 1;
      }
      const config = configOrReport(values.config);
      if (typeof config === 'number') return config;
      const log = createLogger({ ...config.log, level: config.log.level === 'info' ? 'warn' : config.log.level });
      const engines = await startSpeech(config, log, { realtime: false });
      const print = (e: CallEvent): void => {
        const line = values.json ? JSON.stringify(e) : formatEvent(e);
        if (line !== undefined) console.log(line);
      };
      const speech = new SpeechRuntime({ vad: engines.vad, recognizerFor: (model) => engines.recognizerFor(model), vadConfig: config.vad, transcripts: config.transcripts, publish: print });
      // A bad file in a batch (missing, not a WAV, an unsupported format) is reported and skipped:
      // the other recordings are still transcribed, and the exit code says that some failed.
      const failed: string[] = [];
      try {
        for (const file of rest) {
          try {
            await transcribeFile(file, {
              speech,
              logger: log.child({ file }),
              party: { ...(values.language ? { language: values.language } : {}), ...(values.translate ? { translate: true } : {}) },
            });
          } catch (err) {
            failed.push(file);
            console.error(`${file}: not transcribed: ${fileFailure(err)}`);
          }
        }
      } finally {
        await engines.close();
      }
      if (failed.length > 0) console.error(`${failed.length} of ${rest.length} files not transcribed: ${failed.join(', ')}`);
      return failed.length > 0 ? 1 : 0;
    }
    case 'export': {
      const config = configOrReport(values.config);
      if (typeof config === 'number') return config;
      return exportCommand(rest, values.format ?? 'txt', config.store.path);
    }
    case 'models': {
      const config = configOrReport(values.config);
      if (typeof config === 'number') return config;
      return models(rest, config.asr.modelDir, config.asr.modelBaseUrl);
    }
    default:
      console.error(`unknown command "${command}"\n\n${USAGE}`);
      return 1;
  }
}

/** Why one file of `transcribe` failed, in a line: what the file system or the WAV parser said. */
function fileFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'a directory, not a file';
  if (code === 'EACCES') return 'permission denied';
  return err instanceof Error ? err.message : String(err);
}

function clock(ms: number): string {
  const s = ms / 1000;
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${(s % 60).toFixed(2).padStart(5, '0')}`;
}

/** A transcript line for people: `call.wav [00:01.20 → 00:03.45] caller: text`; undefined for events people need not see. */
function formatEvent(e: CallEvent): string | undefined {
  if (e.kind === 'ended') return `${e.callId}: end (${e.reason})`;
  if (e.kind !== 'final' && e.kind !== 'translation' && e.kind !== 'alert') return undefined;
  const tag = e.kind === 'translation' ? ` (${e.language})` : e.kind === 'alert' ? ` (alert ${e.rule})` : '';
  return `${e.callId} [${clock(e.startMs)} → ${clock(e.endMs)}] ${e.party}${tag}: ${e.text}`;
}

function exportCommand(args: string[], format: string, storePath: string): number {
  const [callId] = args;
  if (callId === undefined || args.length > 1 || !(EXPORT_FORMATS as readonly string[]).includes(format)) {
    console.error(`usage: whisperline export CALL_ID [--format ${EXPORT_FORMATS.join('|')}]`);
    return 1;
  }
  // Opening would create an empty store; a missing file is the user's mistake, not a new store.
  if (!existsSync(storePath)) {
    console.error(`no transcript store at ${storePath} (store.path)`);
    return 1;
  }
  const store = TranscriptStore.open(storePath);
  try {
    process.stdout.write(exportCall(store, callId, format as ExportFormat));
    return 0;
  } catch (err) {
    if (err instanceof WhisperlineError && err.code === 'NOT_FOUND') {
      console.error(`${err.message} (${storePath})`);
      return 1;
    }
    throw err;
  } finally {
    store.close();
  }
}

async function models(args: string[], modelDir: string, baseUrl: string): Promise<number> {
  const [sub, name] = args;
  if (sub === 'list') {
    console.log(`models in ${modelDir}:`);
    for (const m of listModels(modelDir)) {
      console.log(`  ${m.installed ? '*' : ' '} ${m.name.padEnd(22)} ${String(m.sizeMiB).padStart(5)} MiB  ${m.multilingual ? 'multilingual' : 'English only'}`);
    }
    console.log('(* = downloaded)');
    return 0;
  }
  if (sub === 'download' && name) {
    const started = Date.now();
    let lastPct = -1;
    try {
      const path = await downloadModel(name, {
        modelDir,
        baseUrl,
        onProgress: (p) => {
          if (process.stderr.isTTY) {
            process.stderr.write(`\r${progressLine(p, Date.now() - started)}`);
            return;
          }
          // Not a terminal (logs, CI): a line every 10 %.
          const pct = p.totalBytes ? Math.floor((10 * p.receivedBytes) / p.totalBytes) * 10 : -1;
          if (pct !== lastPct) {
            lastPct = pct;
            process.stderr.write(`${progressLine(p, Date.now() - started)}\n`);
          }
        },
      });
      if (process.stderr.isTTY) process.stderr.write('\n');
      console.log(`downloaded ${name} to ${path} (SHA-1 verified)`);
      return 0;
    } catch (err) {
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (err instanceof WhisperlineError) {
        console.error(err.message);
        return 1;
      }
      throw err;
    }
  }
  console.error('usage: whisperline models list | whisperline models download NAME');
  return 1;
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
