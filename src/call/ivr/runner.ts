/**
 * Runs a jambonz application's verbs on one answered call: in order, each to its end; a verb's
 * `actionHook` result goes to the application and its reply replaces the remaining verbs; a
 * `redirect` command pushed by the application replaces them at once (stopping the verb that
 * runs). Every verb, hook (with its latency), gather result and error is an `app` event, so a
 * supervisor sees what the IVR did. A verb that is invalid or not supported is reported to the
 * application (naming the verb and the field) and skipped; an application that cannot be reached
 * ends the call with a reason on record, never a silent hang.
 */
import { performance } from 'node:perf_hooks';
import { parseWav } from '../../audio/wav.js';
import { WhisperlineError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { AppEvent, TranscriptEvent } from '../../transcripts/events.js';
import { Mp3Decoder } from '../../tts/jambonz/mp3.js';
import type { AppChannel, AppCommand, CallAttributes, Verb } from '../app-channel.js';
import type { CallPlayback } from '../playback.js';
import type { DialOutcome, DialRequest } from '../dial.js';
import { isCallEnded } from '../errors.js';
import type { AudioForkPlan } from '../rule.js';
import type { CallSpeaker } from '../speaker.js';
import { dialTargetUri, MAX_DIAL_TARGETS, type DialRouting } from './dial-target.js';
import { Gather, type GatherResult, type GatherSpec, type PromptControl } from './gather.js';

/** The verbs this gateway runs (others valid in jambonz are reported as not supported). */
export const SUPPORTED_VERBS = ['say', 'play', 'gather', 'pause', 'hangup', 'redirect', 'config', 'tag', 'transcribe', 'listen', 'dial'] as const;

export interface IvrDefaults {
  readonly language?: string;
  readonly voice?: string;
  /** Barge-in off unless a gather says so (jambonz's default). */
  readonly bargein?: boolean;
}

export interface IvrRunnerDeps {
  readonly channel: AppChannel;
  readonly speaker: CallSpeaker;
  readonly playback: CallPlayback;
  readonly attributes: CallAttributes;
  readonly publish: (event: Omit<AppEvent, 'kind' | 'callId' | 'seq'>) => void;
  /** The application hung up (or can no longer be reached): end the call with this reason. */
  readonly hangUp: (why: 'hangup' | 'failed', cause?: WhisperlineError) => Promise<void>;
  /** Checks verbs against jambonz's schemas and the supported list; a message per invalid verb. */
  readonly validate?: (verbs: readonly Verb[]) => readonly { readonly index: number; readonly message: string }[];
  readonly defaults?: IvrDefaults;
  readonly logger: Logger;
  /** Audio for `play`: fetched once per URL. */
  readonly fetchAudio?: (url: string, signal: AbortSignal) => Promise<{ pcm: Int16Array; sampleRate: number }>;
  /** `listen`: streams the call's audio to a WebSocket (the audio fork, jambonz listen format) until the returned close. */
  readonly listen?: (plan: AudioForkPlan, metadata: Readonly<Record<string, unknown>>) => { close(): Promise<void> };
  /** `dial`: bridges the caller to the first target that answers, until that leg ends (absent: dial is refused). */
  readonly dial?: (request: DialRequest) => Promise<DialOutcome>;
  /** Where `dial`'s phone targets go, and what it may dial. */
  readonly dialRouting?: DialRouting;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A gather and the prompt nested in it: the prompt says how it can be stopped and resumed. */
interface GatherPrompt {
  readonly gather: Gather;
  prompt?: PromptControl;
}

/** A verb ended early because the application replaced the verbs (a redirect). */
class Replaced extends Error {}

export class IvrRunner {
  private queue: Verb[] = [];
  private session: { language?: string; voice?: string; bargein?: boolean } = {};
  private customerData: unknown;
  /** A `transcribe` verb's hook: every transcript of the caller goes there from then on. */
  private transcriptionHook: string | { url: string } | undefined;
  private interimTranscripts = false;
  /** A running `dial`'s dtmfCapture: the caller's keys matched against its sequences. */
  private dialDtmf: ((digit: string) => void) | undefined;
  /** A running `listen` with a finishOnKey. */
  private finishListen: { key: string; stop: () => void } | undefined;
  private ended = false;
  private current: { abort: AbortController; gather?: Gather } | undefined;
  private readonly audioCache = new Map<string, Promise<{ pcm: Int16Array; sampleRate: number }>>();

  constructor(private readonly deps: IvrRunnerDeps) {
    this.session = { ...deps.defaults };
    deps.channel.onCommand((c) => this.command(c));
  }

  /** session:new, then the verbs until there are none, or the call ends. Never rejects. */
  async run(): Promise<void> {
    const started = performance.now();
    try {
      this.queue = await this.deps.channel.start(this.attributes());
      this.status('in-progress');
      this.deps.publish({ what: 'hook', hook: 'session:new', latencyMs: Math.round(performance.now() - started), status: 'ok' });
    } catch (err) {
      const cause = asAppError(err);
      this.deps.publish({ what: 'error', hook: 'session:new', message: cause.message });
      await this.deps.hangUp('failed', cause);
      return;
    }
    await this.drain();
  }

  /** The caller's speech started (barge-in). */
  speechStarted(): void {
    this.current?.gather?.speechStarted();
  }

  /** The caller's utterance ended. */
  speechEnded(): void {
    this.current?.gather?.speechEnded();
  }

  /** A transcript of the caller's (gather's speech input; a `transcribe` verb's hook). */
  transcript(event: TranscriptEvent): void {
    this.current?.gather?.transcript(event);
    const hook = this.transcriptionHook;
    if (hook === undefined || this.ended || (event.kind === 'partial' && !this.interimTranscripts) || event.text.trim() === '') return;
    // Background transcription: each result to the application; what it replies is not run (as in jambonz).
    const payload = {
      ...this.attributes(),
      speech: { language_code: event.language, channel_tag: 1, is_final: event.kind === 'final', alternatives: [{ transcript: event.text.trim(), confidence: event.confidence }] },
    };
    const started = performance.now();
    const name = typeof hook === 'string' ? hook : hook.url;
    this.deps.channel.hook(hook, payload).then(
      () => this.deps.publish({ what: 'hook', hook: name, latencyMs: Math.round(performance.now() - started), status: 'transcription' }),
      (err: unknown) => this.deps.publish({ what: 'error', hook: name, message: asAppError(err).message }),
    );
  }

  /** A DTMF key from the caller. */
  dtmf(digit: string): void {
    this.current?.gather?.digit(digit);
    if (this.finishListen?.key === digit) this.finishListen.stop();
    this.dialDtmf?.(digit);
  }

  /** The call's status changed (jambonz's call:status): in-progress at the start, completed at the end. */
  status(callStatus: CallAttributes['call_status'], extra: Readonly<Record<string, unknown>> = {}): void {
    this.deps.channel.status({ ...this.attributes(), call_status: callStatus, ...extra });
  }

  /** The call ended: the verb that runs stops, nothing more is run. Idempotent. */
  close(): void {
    this.ended = true;
    this.queue = [];
    this.current?.gather?.cancel();
    this.current?.abort.abort();
  }

  private attributes(): CallAttributes {
    return { ...this.deps.attributes, ...(this.customerData !== undefined ? { customerData: this.customerData } : {}) };
  }

  private async drain(): Promise<void> {
    while (!this.ended) {
      const problems = this.deps.validate?.(this.queue) ?? [];
      for (const p of problems.slice().reverse()) {
        const verb = this.queue[p.index];
        this.deps.publish({ what: 'error', verb: verb?.verb, message: p.message });
        this.deps.channel.error(p.message, { verb: verb?.verb });
        this.queue.splice(p.index, 1);
      }
      const verb = this.queue.shift();
      if (!verb) break;
      const abort = new AbortController();
      this.current = { abort };
      try {
        const next = await this.execute(verb, abort.signal);
        if (this.ended) return;
        this.deps.publish({ what: 'verb', verb: verb.verb, status: 'done' });
        if (next) this.queue = next;
      } catch (err) {
        if (err instanceof Replaced) {
          this.deps.publish({ what: 'verb', verb: verb.verb, status: 'replaced' });
          continue;
        }
        if (this.ended) return;
        const cause = asAppError(err);
        this.deps.publish({ what: 'error', verb: verb.verb, message: cause.message });
        this.deps.channel.error(cause.message, { verb: verb.verb });
        if (cause.code === 'APP_FAILED') {
          // The application is gone: nobody is left to tell the call what to do.
          await this.deps.hangUp('failed', cause);
          return;
        }
      } finally {
        this.current = undefined;
      }
    }
    // No verbs left: jambonz hangs up.
    if (!this.ended) await this.deps.hangUp('hangup');
  }

  /** Runs one verb; resolves with replacement verbs (from its actionHook) or undefined. */
  private async execute(verb: Verb, signal: AbortSignal): Promise<Verb[] | undefined> {
    switch (verb.verb) {
      case 'say':
        await this.say(verb, signal);
        return undefined;
      case 'play':
        await this.play(verb, signal);
        return undefined;
      case 'pause':
        await sleep((num(verb.length) ?? 1) * 1000, signal);
        return undefined;
      case 'hangup':
        this.ended = true;
        await this.deps.hangUp('hangup');
        return undefined;
      case 'redirect':
        return this.callHook(verb.actionHook, {});
      case 'config':
        this.configure(verb);
        return undefined;
      case 'tag':
        this.customerData = verb.data;
        return undefined;
      case 'transcribe': {
        // Runs in the background: the verb itself ends at once, as jambonz's does.
        const hook = verb.transcriptionHook;
        if (typeof hook === 'string' || (hook && typeof (hook as { url?: unknown }).url === 'string')) this.transcriptionHook = hook as string | { url: string };
        const recognizer = verb.recognizer as { interim?: unknown } | undefined;
        this.interimTranscripts = recognizer?.interim === true;
        return undefined;
      }
      case 'gather':
        return this.gather(verb, signal);
      case 'listen':
        return this.listen(verb, signal);
      case 'dial':
        return this.dial(verb, signal);
      default:
        throw new WhisperlineError('APP_FAILED', `${verb.verb}: not supported by whisperline (supported: ${SUPPORTED_VERBS.join(', ')})`, { retryable: false });
    }
  }

  private configure(verb: Verb): void {
    const synth = verb.synthesizer as { language?: unknown; voice?: unknown } | undefined;
    const recognizer = verb.recognizer as { language?: unknown } | undefined;
    const bargeIn = verb.bargeIn as { enable?: unknown } | undefined;
    this.session = {
      ...this.session,
      ...(str(synth?.language) ? { language: shortLanguage(str(synth!.language)!) } : {}),
      ...(str(synth?.voice) ? { voice: str(synth!.voice)! } : {}),
      ...(str(recognizer?.language) && !str(synth?.language) ? { language: shortLanguage(str(recognizer!.language)!) } : {}),
      ...(typeof bargeIn?.enable === 'boolean' ? { bargein: bargeIn.enable } : {}),
    };
  }

  private texts(verb: Verb): string[] {
    const text = verb.text;
    return Array.isArray(text) ? text.filter((t): t is string => typeof t === 'string') : typeof text === 'string' ? [text] : [];
  }

  private sayOptions(verb: Verb): { language?: string; voice?: string } {
    const synth = verb.synthesizer as { language?: unknown; voice?: unknown } | undefined;
    const language = str(synth?.language) ?? this.session.language;
    const voice = str(synth?.voice) ?? this.session.voice;
    return { ...(language ? { language: shortLanguage(language) } : {}), ...(voice ? { voice } : {}) };
  }

  private async say(verb: Verb, signal: AbortSignal, control?: GatherPrompt): Promise<void> {
    const loops = Math.max(1, num(verb.loop) ?? 1);
    const texts = this.texts(verb);
    for (let l = 0; l < loops && !signal.aborted; l++) {
      for (const text of texts) {
        if (signal.aborted) return;
        await this.sayOne(text, this.sayOptions(verb), signal, control);
      }
    }
  }

  /** One text; inside a gather its barge-in can stop it, and a false interruption resume it. */
  private async sayOne(text: string, options: { language?: string; voice?: string }, signal: AbortSignal, control?: GatherPrompt, startAtMs = 0): Promise<void> {
    const ssml = /^\s*<speak[\s>]/.test(text);
    control?.gather.promptStarted(text);
    let resumeAt: number | undefined;
    let resumed: (() => void) | undefined;
    const resumeSignal = new Promise<void>((r) => (resumed = r));
    const prompt: PromptControl = {
      interrupt: async () => {
        const report = await this.deps.playback.to('caller')?.interrupt({ owner: 'prompt' });
        return startAtMs + (report?.stopped?.playedMs ?? 0);
      },
      resume: (fromMs) => {
        resumeAt = fromMs;
        resumed?.();
      },
    };
    if (control) control.prompt = prompt;
    const outcome = await this.deps.speaker.say('caller', { text, ...options, ...(ssml ? { ssml: true } : {}), purpose: 'prompt', ...(startAtMs > 0 ? { startAtMs } : {}) });
    if (signal.aborted) return;
    if (outcome.status === 'interrupted' && control) {
      // Barge-in: either words follow (the gather resolves) or it was noise (resume).
      const settled = await Promise.race([control.gather.result.then(() => 'answered' as const), resumeSignal.then(() => 'resume' as const)]);
      if (settled === 'resume' && resumeAt !== undefined && !signal.aborted) {
        await this.sayOne(text, options, signal, control, resumeAt);
        return;
      }
    }
    if (outcome.status === 'failed') throw outcome.error ?? new WhisperlineError('TTS_FAILED', `say: could not speak "${text.slice(0, 40)}"`);
  }

  private async play(verb: Verb, signal: AbortSignal, control?: GatherPrompt): Promise<void> {
    const urls = Array.isArray(verb.url) ? verb.url.filter((u): u is string => typeof u === 'string') : typeof verb.url === 'string' ? [verb.url] : [];
    const loops = Math.max(1, num(verb.loop) ?? 1);
    const playback = this.deps.playback.to('caller');
    if (!playback) return;
    // Inside a gather: barge-in stops the clip (a played file is not resumed).
    if (control) control.prompt = { interrupt: async () => (await playback.interrupt({ owner: 'prompt' })).stopped?.playedMs ?? 0, resume: () => undefined };
    for (let l = 0; l < loops && !signal.aborted; l++) {
      for (const url of urls) {
        const clip = await this.audio(url, signal);
        control?.gather.promptStarted('');
        const outcome = await playback.play(clip, { owner: 'prompt', id: url });
        if (outcome.status === 'interrupted' || signal.aborted) return;
      }
    }
  }

  private audio(url: string, signal: AbortSignal): Promise<{ pcm: Int16Array; sampleRate: number }> {
    let cached = this.audioCache.get(url);
    if (!cached) {
      cached = (this.deps.fetchAudio ?? fetchAudio)(url, signal);
      this.audioCache.set(url, cached);
      cached.catch(() => this.audioCache.delete(url));
    }
    return cached;
  }

  /**
   * `listen`: the call's audio to `url` (jambonz listen format: a JSON metadata message, then binary
   * L16 frames; with `bidirectionalAudio.enabled` L16 frames sent back are played to the caller),
   * until `maxLength` seconds, the caller's `finishOnKey`, a redirect, or the end of the call;
   * then its actionHook.
   */
  private async listen(verb: Verb, signal: AbortSignal): Promise<Verb[] | undefined> {
    if (!this.deps.listen) throw new WhisperlineError('APP_FAILED', 'listen: audio streams out are not available in this gateway');
    const url = str(verb.url);
    if (!url) throw new WhisperlineError('APP_FAILED', 'listen: "url" is missing');
    const mix = verb.mixType === 'mono' || verb.mixType === 'mixed' || verb.mixType === 'stereo' ? verb.mixType : 'mono';
    const rate = num(verb.sampleRate) === 16000 ? 16000 : 8000;
    const bidirectional = (verb.bidirectionalAudio as { enabled?: unknown } | undefined)?.enabled === true;
    const stream = this.deps.listen({ url, mix, sampleRate: rate, bidirectional }, { ...this.attributes(), ...((verb.metadata as object | undefined) ?? {}) });
    const finish = new AbortController();
    this.finishListen = str(verb.finishOnKey) !== undefined ? { key: str(verb.finishOnKey)!, stop: () => finish.abort() } : undefined;
    try {
      const limit = num(verb.maxLength);
      await sleep(limit !== undefined && limit > 0 ? limit * 1000 : 24 * 3_600_000, AbortSignal.any([signal, finish.signal]));
    } finally {
      this.finishListen = undefined;
      await stream.close();
    }
    if (signal.aborted) throw new Replaced();
    return verb.actionHook === undefined ? undefined : this.callHook(verb.actionHook, {});
  }

  /**
   * `dial`: the caller bridged to the first of `target` to answer (sip URIs; phone numbers through
   * the rule's trunk; user@domain), ringing for `timeout` seconds (60), for at most `timeLimit`
   * seconds; `callerId` and `headers` go into the INVITE, `dialMusic` plays to the caller while
   * it rings, the caller's `dtmfCapture` sequences go to `dtmfHook`. The callee is transcribed as
   * its own party. When the dialed leg is over, `actionHook` gets jambonz's dial_call_status,
   * dial_sip_status and dial_call_sid, and its verbs go on with the caller.
   */
  private async dial(verb: Verb, signal: AbortSignal): Promise<Verb[] | undefined> {
    if (!this.deps.dial) throw new WhisperlineError('APP_FAILED', 'dial: this call cannot dial out');
    const targets: string[] = [];
    let refusal: { problem: string; sipStatus: number } | undefined;
    for (const target of (Array.isArray(verb.target) ? verb.target : []).slice(0, MAX_DIAL_TARGETS)) {
      const resolved = dialTargetUri(target, this.deps.dialRouting ?? {});
      if ('uri' in resolved) {
        if (!targets.includes(resolved.uri)) targets.push(resolved.uri);
        continue;
      }
      refusal = resolved;
      // Reported, not fatal: the application hears the outcome in its actionHook.
      this.deps.publish({ what: 'error', verb: 'dial', message: `dial: ${resolved.problem}` });
      this.deps.channel.error(`dial: ${resolved.problem}`, { verb: 'dial' });
    }
    const headers = verb.headers !== null && typeof verb.headers === 'object' ? Object.fromEntries(Object.entries(verb.headers as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string')) : undefined;
    const callerId = str(verb.callerId);
    let outcome: DialOutcome;
    if (targets.length === 0) {
      outcome = { callStatus: 'failed', sipStatus: refusal?.sipStatus ?? 400 };
    } else {
      this.deps.publish({ what: 'dial', status: 'dialing', target: targets.join(', ') });
      const music = str(verb.dialMusic);
      const ringing = new AbortController();
      if (music !== undefined) void this.ringback(music, AbortSignal.any([signal, ringing.signal]));
      this.dialDtmf = this.dtmfCapture(verb);
      try {
        outcome = await this.deps.dial({
          targets,
          ringTimeoutMs: (num(verb.timeout) ?? 60) * 1000,
          ...(num(verb.timeLimit) !== undefined ? { timeLimitMs: num(verb.timeLimit)! * 1000 } : {}),
          options: { ...(callerId !== undefined ? { callingNumber: callerId } : {}), ...(headers ? { headers } : {}) },
          signal,
          onAnswered: ({ party, target }) => {
            ringing.abort();
            this.deps.publish({ what: 'dial', status: 'answered', target, ...(party !== undefined ? { party } : {}) });
          },
        });
      } catch (err) {
        if (signal.aborted || isCallEnded(err)) throw new Replaced();
        throw err;
      } finally {
        ringing.abort();
        this.dialDtmf = undefined;
      }
    }
    if (signal.aborted) throw new Replaced();
    this.deps.publish({ what: 'dial', status: outcome.callStatus, sipStatus: outcome.sipStatus, ...(outcome.target !== undefined ? { target: outcome.target } : {}), ...(outcome.party !== undefined ? { party: outcome.party } : {}) });
    if (verb.actionHook === undefined) return undefined;
    return this.callHook(verb.actionHook, {
      dial_call_status: outcome.callStatus,
      dial_sip_status: outcome.sipStatus,
      ...(outcome.callSid !== undefined ? { dial_call_sid: outcome.callSid } : {}),
    });
  }

  /** `dialMusic`: the clip again and again to the caller until the dial is answered or over. */
  private async ringback(url: string, signal: AbortSignal): Promise<void> {
    const playback = this.deps.playback.to('caller');
    if (!playback) return;
    signal.addEventListener('abort', () => void playback.interrupt({ owner: 'ringback' }), { once: true });
    try {
      const clip = await this.audio(url, signal);
      while (!signal.aborted) {
        const outcome = await playback.play(clip, { owner: 'ringback', id: url });
        if (outcome.status !== 'played') return;
      }
    } catch (err) {
      this.deps.publish({ what: 'error', verb: 'dial', message: `dial: dialMusic ${url}: ${asAppError(err).message}` });
    }
  }

  /** `dtmfCapture` (an array of key sequences, or `{parentCall: [...]}`): the caller's matches go to `dtmfHook`, a notification. */
  private dtmfCapture(verb: Verb): ((digit: string) => void) | undefined {
    const hook = verb.dtmfHook as string | { url: string } | undefined;
    const capture = verb.dtmfCapture as unknown;
    const patterns = (Array.isArray(capture) ? capture : Array.isArray((capture as { parentCall?: unknown } | undefined)?.parentCall) ? (capture as { parentCall: unknown[] }).parentCall : []).filter(
      (p): p is string => typeof p === 'string' && p !== '',
    );
    if (hook === undefined || patterns.length === 0) return undefined;
    const longest = Math.max(...patterns.map((p) => p.length));
    let keys = '';
    return (digit) => {
      keys = (keys + digit).slice(-longest);
      const match = patterns.find((p) => keys.endsWith(p));
      if (!match) return;
      keys = '';
      const name = typeof hook === 'string' ? hook : hook.url;
      this.deps.channel.hook(hook, { ...this.attributes(), dtmf: match }).then(
        () => this.deps.publish({ what: 'hook', hook: name, status: 'dtmf' }),
        (err: unknown) => this.deps.publish({ what: 'error', hook: name, message: asAppError(err).message }),
      );
    };
  }

  private async gather(verb: Verb, signal: AbortSignal): Promise<Verb[] | undefined> {
    const input = Array.isArray(verb.input) ? (verb.input.filter((i) => i === 'speech' || i === 'digits') as ('speech' | 'digits')[]) : ['digits' as const];
    const spec: GatherSpec = {
      input,
      timeoutMs: (num(verb.timeout) ?? 15) * 1000,
      bargein: typeof verb.bargein === 'boolean' ? verb.bargein : (this.session.bargein ?? false),
      dtmfBargein: typeof verb.dtmfBargein === 'boolean' ? verb.dtmfBargein : input.includes('digits'),
      minBargeinWordCount: num(verb.minBargeinWordCount) ?? 1,
      listenDuringPrompt: typeof verb.listenDuringPrompt === 'boolean' ? verb.listenDuringPrompt : true,
      ...(num(verb.numDigits) !== undefined ? { numDigits: num(verb.numDigits)! } : {}),
      minDigits: num(verb.minDigits) ?? 1,
      ...(num(verb.maxDigits) !== undefined ? { maxDigits: num(verb.maxDigits)! } : {}),
      ...(str(verb.finishOnKey) !== undefined ? { finishOnKey: str(verb.finishOnKey)! } : {}),
      interDigitTimeoutMs: (num(verb.interDigitTimeout) ?? 5) * 1000,
      falseInterruptionMs: 2000,
    };
    const nested = (verb.say as Verb | undefined) ?? (verb.play as Verb | undefined);
    // The gather asks the prompt through this holder: the say or play below fills in how.
    const holder: { prompt?: PromptControl } = {};
    const gather = new Gather(spec, nested ? { interrupt: () => holder.prompt?.interrupt() ?? Promise.resolve(0), resume: (ms) => holder.prompt?.resume(ms) } : undefined);
    const control: GatherPrompt = Object.assign(holder, { gather });
    this.current!.gather = gather;
    const partialHook = verb.partialResultHook as string | { url: string } | undefined;
    if (partialHook !== undefined) {
      const original = gather.transcript.bind(gather);
      gather.transcript = (event) => {
        original(event);
        if (event.kind === 'partial') void this.deps.channel.hook(partialHook, this.speechPayload({ reason: 'speechDetected', transcript: event.text, confidence: event.confidence, language: event.language }, false)).catch(() => undefined);
      };
    }
    signal.addEventListener('abort', () => gather.cancel(), { once: true });
    if (nested) {
      const prompting = verb.say ? this.say({ ...(verb.say as object), verb: 'say' } as Verb, signal, control) : this.play({ ...(verb.play as object), verb: 'play' } as Verb, signal, control);
      void prompting.catch((err: unknown) => this.deps.logger.warn({ err }, 'gather prompt failed')).finally(() => gather.promptEnded());
    }
    const result = await gather.result;
    // The answer came: whatever of the prompt still plays stops.
    if (nested) await this.deps.playback.to('caller')?.interrupt({ owner: 'prompt' });
    if (signal.aborted) throw new Replaced();
    this.deps.publish({ what: 'gather', reason: result.reason, ...(result.reason === 'speechDetected' ? { transcript: result.transcript } : {}), ...('digits' in result && result.digits ? { digits: result.digits } : {}) });
    if (verb.actionHook === undefined) return undefined;
    return this.callHook(verb.actionHook, this.speechPayload(result, true));
  }

  private speechPayload(result: GatherResult, isFinal: boolean): Record<string, unknown> {
    if (result.reason === 'speechDetected') {
      return {
        reason: 'speechDetected',
        speech: { language_code: result.language, channel_tag: 1, is_final: isFinal, alternatives: [{ transcript: result.transcript, confidence: result.confidence }] },
      };
    }
    if (result.reason === 'dtmfDetected') return { reason: 'dtmfDetected', digits: result.digits };
    return { reason: 'timeout', ...(result.digits ? { digits: result.digits } : {}) };
  }

  private async callHook(hook: unknown, payload: Record<string, unknown>): Promise<Verb[] | undefined> {
    if (typeof hook !== 'string' && !(hook && typeof (hook as { url?: unknown }).url === 'string')) return undefined;
    const started = performance.now();
    const name = typeof hook === 'string' ? hook : (hook as { url: string }).url;
    const verbs = await this.deps.channel.hook(hook as string | { url: string }, { ...this.attributes(), ...payload });
    this.deps.publish({ what: 'hook', hook: name, latencyMs: Math.round(performance.now() - started), status: verbs ? 'verbs' : 'none' });
    return verbs;
  }

  private command(c: AppCommand): void {
    if (this.ended) return;
    if (c.command === 'redirect' && Array.isArray(c.data)) {
      this.queue = c.data as Verb[];
      this.deps.publish({ what: 'verb', verb: 'redirect', status: 'command' });
      const current = this.current;
      if (current) {
        current.gather?.cancel();
        current.abort.abort();
        void this.deps.playback.to('caller')?.interrupt({ owner: 'prompt' });
      }
      return;
    }
    this.deps.channel.error(`command ${c.command}: not supported by whisperline`, { command: c.command });
  }
}

/** jambonz tags (en-US) to the ISO 639-1 the synthesizers take. */
function shortLanguage(tag: string): string {
  return tag.split(/[-_]/)[0]!.toLowerCase();
}

function asAppError(err: unknown): WhisperlineError {
  return err instanceof WhisperlineError ? err : new WhisperlineError('APP_FAILED', `the application failed: ${(err as Error).message}`, { cause: err });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}

/** A `play` URL's audio: WAV (16-bit PCM) or MP3, mono (the first channel). */
export async function fetchAudio(url: string, signal: AbortSignal): Promise<{ pcm: Int16Array; sampleRate: number }> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
  } catch (err) {
    throw new WhisperlineError('APP_FAILED', `play: ${url} could not be fetched (${(err as Error).message})`, { retryable: true, cause: err });
  }
  if (!res.ok) throw new WhisperlineError('APP_FAILED', `play: ${url} answered ${res.status}`, { retryable: res.status >= 500 });
  const body = new Uint8Array(await res.arrayBuffer());
  const type = res.headers.get('content-type') ?? '';
  if (/mpeg|mp3/.test(type) || /\.mp3(\?|$)/.test(url)) {
    const decoder = await Mp3Decoder.create(`play ${url}`);
    try {
      const pcm = decoder.push(body);
      return { pcm, sampleRate: decoder.sampleRate ?? 16000 };
    } finally {
      decoder.free();
    }
  }
  try {
    const wav = parseWav(body);
    return { pcm: wav.channels[0]!, sampleRate: wav.sampleRate };
  } catch (err) {
    throw new WhisperlineError('APP_FAILED', `play: ${url} is not a WAV or MP3 file (${(err as Error).message})`, { cause: err });
  }
}
