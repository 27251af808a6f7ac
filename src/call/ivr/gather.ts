/**
 * jambonz's `gather`: collect speech and/or DTMF digits from the caller, optionally while a
 * nested `say`/`play` prompt plays, with barge-in. Result as jambonz reports it: `reason`
 * speechDetected / dtmfDetected / timeout, `speech {alternatives, is_final, language_code}`,
 * `digits`.
 *
 * Timing users of jambonz asked for:
 * - the `timeout` (default 15 s) runs from the end of the prompt, and stops as soon as speech is
 *   heard: once the caller is talking the gather waits for the final, it never times out
 *   mid-sentence;
 * - `minBargeinWordCount` applies only while the prompt plays: a one-word answer after the prompt
 *   ended is accepted;
 * - barge-in: speech held for the VAD's minimum (vad.minSpeechMs) stops the prompt at once; if the
 *   utterance ends and no words come within `falseInterruptionMs` (2 s) after it, it was noise,
 *   and the prompt resumes where it stopped; a transcript that is the prompt's own words
 *   (speakerphone echo) is not an answer.
 */
import type { TranscriptEvent } from '../../transcripts/events.js';

export interface GatherSpec {
  readonly input: readonly ('speech' | 'digits')[];
  readonly timeoutMs: number;
  readonly bargein: boolean;
  readonly dtmfBargein: boolean;
  readonly minBargeinWordCount: number;
  readonly listenDuringPrompt: boolean;
  readonly numDigits?: number;
  readonly minDigits: number;
  readonly maxDigits?: number;
  readonly finishOnKey?: string;
  readonly interDigitTimeoutMs: number;
  readonly falseInterruptionMs: number;
}

export type GatherResult =
  | { readonly reason: 'speechDetected'; readonly transcript: string; readonly confidence: number; readonly language: string }
  | { readonly reason: 'dtmfDetected'; readonly digits: string }
  | { readonly reason: 'timeout'; readonly digits?: string };

/** What the gather asks of the prompt while it runs. */
export interface PromptControl {
  /** Stops the prompt now; resolves with how far it had played (ms). */
  interrupt(): Promise<number>;
  /** Plays the rest of the prompt from `ms` (after a false interruption). */
  resume(fromMs: number): void;
}

const words = (text: string): string[] => text.toLowerCase().replace(/[^\p{L}\p{N}\s']/gu, ' ').split(/\s+/).filter(Boolean);

/**
 * One gather's state machine. The runner feeds it the caller's speech start, transcripts and
 * digits, and the prompt's start and end; it resolves `result` once.
 */
export class Gather {
  readonly result: Promise<GatherResult>;
  private resolve!: (r: GatherResult) => void;
  private done = false;
  private digits = '';
  private promptPlaying = false;
  private promptText = '';
  private timer: NodeJS.Timeout | undefined;
  private digitTimer: NodeJS.Timeout | undefined;
  private falseTimer: NodeJS.Timeout | undefined;
  private heardSpeech = false;
  /** The caller's last utterance has ended (no speech in progress). */
  private speechOver = true;
  /** Where an interrupted prompt stopped, while a barge-in awaits its words. */
  private interruptedAt: number | undefined;

  constructor(
    private readonly spec: GatherSpec,
    private readonly prompt: PromptControl | undefined,
  ) {
    this.result = new Promise((resolve) => (this.resolve = resolve));
    if (!prompt) this.startTimeout();
  }

  private get speech(): boolean {
    return this.spec.input.includes('speech');
  }

  private get wantsDigits(): boolean {
    return this.spec.input.includes('digits');
  }

  /** The nested prompt started playing (its text, to recognise its own echo). */
  promptStarted(text: string): void {
    this.promptPlaying = true;
    this.promptText = text;
  }

  /** The nested prompt ended (played out, or interrupted for good): the timeout starts now. */
  promptEnded(): void {
    this.promptPlaying = false;
    if (this.interruptedAt === undefined) this.startTimeout();
  }

  /** The caller started speaking (held for the VAD's minimum). */
  speechStarted(): void {
    if (this.done || !this.speech) return;
    if (this.promptPlaying && !this.spec.listenDuringPrompt) return;
    this.heardSpeech = true;
    this.clearTimeout();
    if (this.promptPlaying && this.spec.bargein && this.prompt && this.interruptedAt === undefined) {
      void this.prompt.interrupt().then((at) => {
        if (this.done) return;
        this.interruptedAt = at;
        this.promptPlaying = false;
        if (this.speechOver) this.armFalseInterruption();
      });
    }
    this.speechOver = false;
  }

  /**
   * The caller's utterance ended. After a barge-in, its words must come within
   * `falseInterruptionMs` (recognition time): without any it was a cough or a door, not an
   * answer, and the prompt goes on where it stopped.
   */
  speechEnded(): void {
    this.speechOver = true;
    if (this.interruptedAt !== undefined && !this.done) this.armFalseInterruption();
  }

  private armFalseInterruption(): void {
    if (this.falseTimer) clearTimeout(this.falseTimer);
    this.falseTimer = setTimeout(() => this.falseInterruption(), this.spec.falseInterruptionMs);
  }

  /** A transcript of the caller's (partials barge in; finals answer). */
  transcript(event: TranscriptEvent): void {
    if (this.done || !this.speech) return;
    if (this.promptPlaying && !this.spec.listenDuringPrompt) return;
    const said = words(event.text);
    if (said.length === 0) return;
    if (this.isEcho(said)) return;
    // While the prompt plays, an answer needs minBargeinWordCount words; after it, any word.
    const duringPrompt = this.promptPlaying || this.interruptedAt !== undefined;
    if (duringPrompt && said.length < Math.max(1, this.spec.minBargeinWordCount)) return;
    this.heardSpeech = true;
    this.clearTimeout();
    if (this.falseTimer) {
      clearTimeout(this.falseTimer);
      this.falseTimer = undefined;
    }
    if (this.promptPlaying && this.spec.bargein && this.prompt) void this.prompt.interrupt();
    if (event.kind !== 'final') return;
    this.finish({ reason: 'speechDetected', transcript: event.text.trim(), confidence: event.confidence, language: event.language });
  }

  /** A DTMF digit from the caller. */
  digit(key: string): void {
    if (this.done || !this.wantsDigits) return;
    if (this.promptPlaying && this.spec.dtmfBargein && this.prompt) void this.prompt.interrupt();
    this.clearTimeout();
    if (this.spec.finishOnKey !== undefined && key === this.spec.finishOnKey) {
      this.finish(this.digits.length >= this.spec.minDigits && this.digits.length > 0 ? { reason: 'dtmfDetected', digits: this.digits } : { reason: 'timeout', digits: this.digits });
      return;
    }
    this.digits += key;
    const max = this.spec.numDigits ?? this.spec.maxDigits;
    if (max !== undefined && this.digits.length >= max) {
      this.finish({ reason: 'dtmfDetected', digits: this.digits });
      return;
    }
    if (this.digitTimer) clearTimeout(this.digitTimer);
    this.digitTimer = setTimeout(() => {
      if (this.spec.numDigits === undefined && this.digits.length >= Math.max(1, this.spec.minDigits)) this.finish({ reason: 'dtmfDetected', digits: this.digits });
      else this.finish({ reason: 'timeout', digits: this.digits });
    }, this.spec.interDigitTimeoutMs);
  }

  /** The call ended or the gather was replaced (a redirect). */
  cancel(): void {
    this.finish({ reason: 'timeout' });
  }

  private falseInterruption(): void {
    this.falseTimer = undefined;
    const at = this.interruptedAt;
    this.interruptedAt = undefined;
    if (this.done || at === undefined) return;
    this.heardSpeech = false;
    this.prompt?.resume(at);
  }

  /** The caller's microphone picking up the prompt (speakerphone): its words are the prompt's. */
  private isEcho(said: readonly string[]): boolean {
    if (!this.promptText) return false;
    const prompt = new Set(words(this.promptText));
    const inPrompt = said.filter((w) => prompt.has(w)).length;
    return said.length >= 3 && inPrompt / said.length >= 0.8;
  }

  private startTimeout(): void {
    if (this.done || this.heardSpeech || this.timer) return;
    this.timer = setTimeout(() => this.finish(this.digits.length > 0 && this.digits.length >= this.spec.minDigits ? { reason: 'dtmfDetected', digits: this.digits } : { reason: 'timeout' }), this.spec.timeoutMs);
  }

  private clearTimeout(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private finish(result: GatherResult): void {
    if (this.done) return;
    this.done = true;
    this.clearTimeout();
    if (this.digitTimer) clearTimeout(this.digitTimer);
    if (this.falseTimer) clearTimeout(this.falseTimer);
    this.resolve(result);
  }
}
