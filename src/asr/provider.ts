/**
 * The one factory of speech recognizers: `asr.provider` picks the provider, its section configures
 * it. Whichever it is, the rest of the gateway sees `SpeechRecognizer`s, one per model.
 *
 * - `local`: whisper-server processes built from the bundled whisper.cpp source, started and
 *   supervised here, on the configured model (downloaded on first use); a dialplan rule's `model`
 *   gets its own pool, started on first use;
 * - `remote`: whisper-server instances elsewhere by URL; they carry their own model, so a rule
 *   cannot switch it.
 * Room for more (an OpenAI-compatible transcription API): a case here and a section in the schema.
 */
import type { AsrConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { ModelRouter } from './model-router.js';
import type { SpeechRecognizer } from './recognizer.js';
import { WhisperEngine, type WhisperEngineConfig, type WhisperEngineStats, type WhisperRequestSettings } from './whisper/engine.js';
import { downloadModel, isModelPath, ModelError, resolveModel } from './whisper/models.js';
import { ensureWhisperServer } from './whisper/whisper-build.js';

/** The provider configuration of `asr`, as a union: what the factory builds from. */
export type AsrProvider =
  | { readonly kind: 'local'; readonly model: string; readonly local: AsrConfig['local'] }
  | { readonly kind: 'remote'; readonly servers: readonly string[] };

export function asrProvider(asr: AsrConfig): AsrProvider {
  switch (asr.provider) {
    case 'local':
      return { kind: 'local', model: asr.model, local: asr.local };
    case 'remote':
      return { kind: 'remote', servers: asr.remote.servers };
  }
}

/** The recognizers of every model the gateway serves. */
export interface Recognizers {
  /** The configured model's. */
  readonly recognizer: SpeechRecognizer;
  /** A dialplan rule's `model` (started on first use where the provider can), or the configured one. */
  recognizerFor(model?: string): SpeechRecognizer;
  /** The configured model's queue and failure counters. */
  stats(): WhisperEngineStats;
  close(): Promise<void>;
}

/**
 * The configured model as a file: a path is used as it is; a catalogue name is downloaded into
 * `asr.modelDir` on first use (a fresh machine), with progress in the log.
 */
export async function ensureModel(asr: Pick<AsrConfig, 'model' | 'modelDir' | 'modelBaseUrl'>, log: Logger): Promise<string> {
  try {
    return resolveModel(asr.model, asr.modelDir);
  } catch (err) {
    // Only a catalogue model that is not downloaded yet is fetched; a bad path or name fails now.
    if (!(err instanceof ModelError) || err.code !== 'MODEL_MISSING' || isModelPath(asr.model)) throw err;
  }
  log.info({ model: asr.model, modelDir: asr.modelDir }, 'downloading Whisper model');
  let lastTenth = -1;
  return downloadModel(asr.model, {
    modelDir: asr.modelDir,
    baseUrl: asr.modelBaseUrl,
    onProgress: ({ receivedBytes, totalBytes }) => {
      const tenth = totalBytes ? Math.floor((10 * receivedBytes) / totalBytes) : -1;
      if (tenth === lastTenth) return;
      lastTenth = tenth;
      log.info({ model: asr.model, receivedBytes, totalBytes }, 'model download progress');
    },
  });
}

/** Starts the configured provider's recognizers. Fails (having stopped what it started) when they cannot start. */
export async function startRecognizers(asr: AsrConfig, log: Logger): Promise<Recognizers> {
  const settings: WhisperRequestSettings = { queueSize: asr.queueSize, timeoutMs: asr.timeoutMs, beamSize: asr.beamSize, audioContext: asr.audioContext };
  const provider = asrProvider(asr);
  const engineLog = log.child({ component: 'asr' });
  let engine: WhisperEngine;
  let router: ModelRouter;
  switch (provider.kind) {
    case 'local': {
      const { local } = provider;
      const binary = await ensureWhisperServer({ buildDir: local.buildDir, cuda: local.cuda, logger: log });
      const pool = async (model: string): Promise<WhisperEngineConfig> => ({
        ...settings,
        kind: 'local',
        modelPath: await ensureModel({ ...asr, model }, log),
        binary,
        poolSize: local.poolSize,
        threads: local.threads,
        buildDir: local.buildDir,
        cuda: local.cuda,
      });
      engine = await WhisperEngine.start(await pool(provider.model), engineLog);
      router = new ModelRouter(provider.model, engine, async (model) => {
        log.info({ model }, 'starting an engine for a dialplan rule model');
        return WhisperEngine.start(await pool(model), log.child({ component: 'asr', model }));
      });
      break;
    }
    case 'remote': {
      engine = await WhisperEngine.start({ ...settings, kind: 'remote', servers: provider.servers }, engineLog);
      const only = engine;
      // Remote servers carry their own model: every rule gets them.
      router = new ModelRouter(asr.model, engine, async () => only);
      break;
    }
  }
  return {
    recognizer: engine,
    recognizerFor: (model) => (provider.kind === 'remote' ? engine : router.recognizerFor(model)),
    stats: () => engine.stats(),
    close: async () => {
      await router.close();
      await engine.close();
    },
  };
}
