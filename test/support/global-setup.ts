/**
 * vitest globalSetup: builds whisper-server and generates the tiny test model once per run, before
 * any worker starts, then passes their paths to the workers both as environment variables (read by
 * `ensureTestWhisper()`) and through `provide('whisper', …)` (read with `inject('whisper')`).
 */
import type { TestProject } from 'vitest/node';
import { ENV_BINARY, ENV_CLI, ENV_TINY_MODEL, ensureTestWhisper, type TestWhisper } from './whisper.js';

declare module 'vitest' {
  export interface ProvidedContext {
    whisper: TestWhisper;
  }
}

export async function setup(project: TestProject): Promise<void> {
  const started = Date.now();
  const whisper = await ensureTestWhisper();
  process.env[ENV_BINARY] = whisper.binary;
  process.env[ENV_CLI] = whisper.cli;
  process.env[ENV_TINY_MODEL] = whisper.tinyModel;
  project.provide('whisper', whisper);
  const seconds = (Date.now() - started) / 1000;
  if (seconds > 5) console.log(`whisper test set-up: ${seconds.toFixed(1)} s (whisper-server build and/or model generation)`);
}
