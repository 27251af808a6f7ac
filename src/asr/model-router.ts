import { WhisperlineError } from '../errors.js';
import type { RecognitionRequest, RecognitionResult, RecognizerCapabilities, SpeechRecognizer } from './recognizer.js';

/**
 * Serves dialplan rules that ask for a model other than the configured one: each model's engine
 * is started on first use (loading a model costs seconds and memory, so nothing is started for
 * rules no call has hit) and then shared by every call of that model.
 */
export class ModelRouter {
  private readonly engines = new Map<string, Promise<SpeechRecognizer>>();
  private closed = false;

  constructor(
    private readonly defaultModel: string,
    private readonly defaultEngine: SpeechRecognizer,
    private readonly startEngine: (model: string) => Promise<SpeechRecognizer>,
  ) {}

  /** The recognizer for `model` (the default one when absent or the same). */
  recognizerFor(model?: string): SpeechRecognizer {
    if (model === undefined || model === this.defaultModel) return this.defaultEngine;
    return new LazyRecognizer(this.defaultEngine.capabilities, () => this.engine(model));
  }

  /** Models whose engines were started (besides the default). */
  get startedModels(): string[] {
    return [...this.engines.keys()];
  }

  async close(): Promise<void> {
    this.closed = true;
    const started = [...this.engines.values()];
    this.engines.clear();
    await Promise.all(started.map((p) => p.then((e) => e.close(), () => undefined)));
  }

  private engine(model: string): Promise<SpeechRecognizer> {
    if (this.closed) return Promise.reject(new WhisperlineError('ASR_CLOSED', 'the recognizers are closed'));
    let engine = this.engines.get(model);
    if (!engine) {
      engine = this.startEngine(model);
      // A model that failed to start is retried by the next call, not cached as failed.
      engine.catch(() => this.engines.delete(model));
      this.engines.set(model, engine);
    }
    return engine;
  }
}

/** A recognizer whose engine exists only once something is recognised with it. */
class LazyRecognizer implements SpeechRecognizer {
  private engine: SpeechRecognizer | undefined;

  constructor(
    readonly capabilities: RecognizerCapabilities,
    private readonly get: () => Promise<SpeechRecognizer>,
  ) {}

  async recognize(request: RecognitionRequest): Promise<RecognitionResult> {
    this.engine ??= await this.get();
    return this.engine.recognize(request);
  }

  hasSpareCapacity(): boolean {
    return this.engine?.hasSpareCapacity() ?? false;
  }

  /** The shared engine is the router's to close. */
  async close(): Promise<void> {}
}
