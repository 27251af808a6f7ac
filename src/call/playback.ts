/**
 * Playback into a call: one owner per call, one queue per leg that can hear something.
 *
 * Whoever speaks into a call (an audio-stream consumer's playAudio, a spoken prompt, an IVR verb,
 * an interpretation) goes through here, so there is one place that orders audio, echoes marks,
 * and stops at once on barge-in. The media server does the sending (`MediaPlayer`: rtpengine
 * `play media`); this module decides what plays when.
 *
 * Contract (per leg):
 * - items play in the order queued, each to its end, chunk after chunk (a chunk is started when
 *   the previous one ends); a mark resolves `playout` when everything queued before it has played;
 * - `interrupt()` stops what plays at once (the player is stopped before it resolves), drops what
 *   is queued, and reports where the playing item stopped; dropped items resolve `cleared`, the
 *   stopped one `interrupted` with the audio that reached the leg. With an `owner`, only that
 *   owner's audio and marks are stopped or dropped;
 * - a dry queue keeps the player engaged `idleStopMs`, so items queued just late (streamed audio)
 *   play back to back without the far end coming back in between;
 * - the queue holds at most `maxQueuedMs` of clips; beyond it `play` rejects PLAYBACK_QUEUE_FULL;
 * - `close()` interrupts and refuses everything after (PLAYBACK_CLOSED). Idempotent.
 */
import { performance } from 'node:perf_hooks';
import { resampleClip } from '../audio/pcm.js';
import { Resampler } from '../audio/resampler.js';
import { WhisperlineError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MediaPlayer } from '../media/rtpengine/player.js';

/** The leg that hears the audio. */
export type PlaybackTarget = 'caller' | 'callee';

/** Audio to play: a whole clip, or a stream whose chunks come as they are made (speech synthesis). */
export type PlaybackSource =
  | { readonly pcm: Int16Array; readonly sampleRate: number }
  | { readonly stream: AsyncIterable<Int16Array>; readonly sampleRate: number };

export interface PlayOptions {
  /** Echoed in the outcome (e.g. the consumer's id of a playAudio). */
  readonly id?: string | number;
  /** Who asked (e.g. `audio-stream`, `prompt`): `interrupt({ owner })` stops only that owner's audio. */
  readonly owner?: string;
  /** Called once, when the media server has started the item's first chunk (its audio is going out). */
  readonly onStart?: () => void;
}

export interface PlayOutcome {
  readonly id?: string | number;
  /**
   * `played` to its end; `interrupted` while it played; `cleared` from the queue before it
   * played; `failed` when the media server refused it or its source threw.
   */
  readonly status: 'played' | 'interrupted' | 'cleared' | 'failed';
  /** Audio that reached the leg (ms). */
  readonly playedMs: number;
  /** The item's length (ms): a clip's at once, a stream's once it has ended; undefined otherwise. */
  readonly durationMs: number | undefined;
}

export interface InterruptReport {
  /** The item that was playing and where it stopped (ms into it). */
  readonly stopped?: { readonly id?: string | number; readonly owner?: string; readonly playedMs: number };
  readonly clearedItems: number;
  readonly clearedMarks: number;
}

export interface PlaybackStats {
  readonly itemsPlayed: number;
  readonly itemsInterrupted: number;
  readonly itemsCleared: number;
  readonly itemsFailed: number;
  readonly chunksPlayed: number;
  /** Items refused because the queue was full (or playback closed). */
  readonly refused: number;
  /** Clip audio waiting in the queue now (ms). */
  readonly queuedMs: number;
  readonly playing: boolean;
}

export interface LegPlaybackOptions {
  readonly logger: Logger;
  /** Clip audio the queue may hold (ms); default 300 000. */
  readonly maxQueuedMs?: number;
  /** How long a dry queue keeps the player engaged (ms); default 120. */
  readonly idleStopMs?: number;
}

interface AudioItem {
  readonly kind: 'audio';
  readonly options: PlayOptions;
  readonly reader: ChunkReader;
  /** Clip samples still counted in the queue bound. */
  queuedSamples: number;
  /** ms of chunks that finished playing. */
  playedBeforeMs: number;
  /** The chunk playing now (performance.now() start, length). */
  current: { startedAt: number; durationMs: number } | undefined;
  readonly resolve: (outcome: PlayOutcome) => void;
}

interface MarkItem {
  readonly kind: 'mark';
  readonly name: string;
  readonly owner: string | undefined;
  readonly resolve: (event: 'playout' | 'cleared') => void;
}

type Item = AudioItem | MarkItem;

const DEFAULT_MAX_QUEUED_MS = 300_000;
const DEFAULT_IDLE_STOP_MS = 120;

/** One leg's playback: its queue, its player, one runner at a time. */
export class LegPlayback {
  private readonly queue: Item[] = [];
  private queuedSamples = 0;
  private readonly maxQueuedSamples: number;
  private readonly idleStopMs: number;
  /** Bumped by interrupt/close: a runner step started under an older token stops. */
  private token = 0;
  private running = false;
  /** The player has been started and not stopped since. */
  private engaged = false;
  /** A stop of the player under way (close waits for it: the call's rtpengine session goes next). */
  private stopping: Promise<number | undefined> | undefined;
  private wake: (() => void) | undefined;
  /** The item whose chunk the player is being asked to start right now. */
  private starting: AudioItem | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly counters = { itemsPlayed: 0, itemsInterrupted: 0, itemsCleared: 0, itemsFailed: 0, chunksPlayed: 0, refused: 0 };

  constructor(
    readonly target: PlaybackTarget,
    private readonly player: MediaPlayer,
    private readonly options: LegPlaybackOptions,
  ) {
    this.maxQueuedSamples = ((options.maxQueuedMs ?? DEFAULT_MAX_QUEUED_MS) * player.sampleRate) / 1000;
    this.idleStopMs = options.idleStopMs ?? DEFAULT_IDLE_STOP_MS;
  }

  /** The rate clips are played at (others are resampled to it). */
  get sampleRate(): number {
    return this.player.sampleRate;
  }

  stats(): PlaybackStats {
    return { ...this.counters, queuedMs: Math.round((this.queuedSamples * 1000) / this.player.sampleRate), playing: this.engaged };
  }

  /** Queues audio; resolves when it has played, been interrupted or cleared. Rejects at once when refused. */
  play(source: PlaybackSource, options: PlayOptions = {}): Promise<PlayOutcome> {
    if (this.closed) {
      this.counters.refused++;
      return Promise.reject(new WhisperlineError('PLAYBACK_CLOSED', `playback to the ${this.target} has ended`));
    }
    const reader = ChunkReader.of(source, this.player.sampleRate);
    const samples = reader.clipSamples;
    if (this.queuedSamples + samples > this.maxQueuedSamples) {
      this.counters.refused++;
      const queuedMs = Math.round((this.queuedSamples * 1000) / this.player.sampleRate);
      this.options.logger.warn({ target: this.target, queuedMs }, 'playback queue full: audio refused');
      return Promise.reject(new WhisperlineError('PLAYBACK_QUEUE_FULL', `playback queue to the ${this.target} is full (${queuedMs} ms waiting)`));
    }
    this.queuedSamples += samples;
    return new Promise<PlayOutcome>((resolve) => {
      this.queue.push({ kind: 'audio', options, reader, queuedSamples: samples, playedBeforeMs: 0, current: undefined, resolve });
      this.run();
    });
  }

  /** Queues a mark: `playout` once everything queued before it has played, `cleared` if dropped first. */
  mark(name: string, options: { owner?: string } = {}): Promise<'playout' | 'cleared'> {
    if (this.closed) return Promise.resolve('cleared');
    return new Promise((resolve) => {
      this.queue.push({ kind: 'mark', name, owner: options.owner, resolve });
      this.run();
    });
  }

  /** Drops the queued marks (of `owner`, or all), resolving them `cleared`; returns how many. */
  clearMarks(owner?: string): number {
    const cleared = this.queue.filter((item): item is MarkItem => item.kind === 'mark' && (owner === undefined || item.owner === owner));
    if (cleared.length === 0) return 0;
    this.queue.splice(0, this.queue.length, ...this.queue.filter((item) => !cleared.includes(item as MarkItem)));
    // In queue order, as a consumer expects the echoes.
    for (const mark of cleared) mark.resolve('cleared');
    return cleared.length;
  }

  /**
   * Stops now: the playing item (of `owner`, when given) is stopped at the leg before this
   * resolves, the queue (that owner's part of it) is dropped. Reports where it stopped.
   */
  async interrupt(filter: { owner?: string } = {}): Promise<InterruptReport> {
    const mine = (item: Item): boolean => filter.owner === undefined || (item.kind === 'mark' ? item.owner : item.options.owner) === filter.owner;
    const head = this.queue[0];
    const dropped = this.queue.filter(mine);
    if (dropped.length === 0) return { clearedItems: 0, clearedMarks: 0 };
    this.queue.splice(0, this.queue.length, ...this.queue.filter((item) => !mine(item)));
    let stopped: InterruptReport['stopped'];
    if (head !== undefined && head.kind === 'audio' && mine(head)) {
      // The runner's current step belongs to the head: it must not go on with it.
      this.token++;
      this.wake?.();
      const started = head.current !== undefined || this.starting === head;
      let positionMs: number | undefined;
      if (this.engaged) {
        this.engaged = false;
        positionMs = await this.stopPlayer();
      }
      if (started) {
        const playedMs = Math.round(this.positionOf(head, positionMs));
        stopped = { ...(head.options.id !== undefined ? { id: head.options.id } : {}), ...(head.options.owner !== undefined ? { owner: head.options.owner } : {}), playedMs };
      }
    }
    let clearedItems = 0;
    let clearedMarks = 0;
    for (const item of dropped) {
      if (item.kind === 'mark') {
        clearedMarks++;
        item.resolve('cleared');
        continue;
      }
      this.release(item);
      item.reader.cancel();
      if (item === head && stopped) {
        this.counters.itemsInterrupted++;
        item.resolve(this.outcome(item, 'interrupted', stopped.playedMs));
      } else {
        clearedItems++;
        this.counters.itemsCleared++;
        item.resolve(this.outcome(item, 'cleared', 0));
      }
    }
    // Whatever the filter kept (another owner's items) goes on playing.
    if (this.queue.length > 0 && !this.closed) this.run();
    return { ...(stopped ? { stopped } : {}), clearedItems, clearedMarks };
  }

  /** Interrupts everything and refuses what comes after. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      this.closed = true;
      await this.interrupt();
      if (this.engaged) {
        this.engaged = false;
        await this.stopPlayer();
      }
      // A stop the runner began itself (its queue ran dry) ends before the call's media goes.
      await this.stopping;
    })());
  }

  // ------------------------------------------------------------------------------------------

  private run(): void {
    if (this.running) {
      this.wake?.(); // an idle runner waiting to stop picks the new item up
      return;
    }
    this.running = true;
    void this.loop().finally(() => {
      this.running = false;
      // An item queued while the runner was returning.
      if (this.queue.length > 0 && !this.closed) this.run();
    });
  }

  private async loop(): Promise<void> {
    let nextStart = 0;
    for (;;) {
      const token = this.token;
      const item = this.queue[0];
      if (!item) {
        if (!this.engaged) return;
        // Dry: keep the player engaged a moment, so audio queued just late plays back to back.
        await this.sleep(Math.max(this.idleStopMs, nextStart - performance.now()), true);
        if (token !== this.token || this.queue.length > 0) continue;
        // close() stopped the player meanwhile: a second stop would reach rtpengine after the call is gone.
        if (!this.engaged) return;
        this.engaged = false;
        await this.stopPlayer();
        continue;
      }
      if (item.kind === 'mark') {
        this.queue.shift();
        item.resolve('playout');
        continue;
      }
      let chunk: Int16Array | undefined;
      try {
        chunk = await item.reader.next(this.player.maxChunkSamples, nextStart);
      } catch (err) {
        this.options.logger.warn({ err, target: this.target }, 'playback source failed');
        this.finish(item, 'failed');
        continue;
      }
      if (token !== this.token || this.queue[0] !== item) continue;
      if (chunk === undefined) {
        // The source has ended: the item is done once its last chunk has played.
        const ends = nextStart - performance.now();
        if (ends > 0) await this.sleep(ends, false);
        if (token !== this.token || this.queue[0] !== item) continue;
        this.finish(item, 'played');
        continue;
      }
      const wait = nextStart - performance.now();
      if (wait > 0) {
        await this.sleep(wait, false);
        if (token !== this.token || this.queue[0] !== item) continue;
      }
      const startedAt = performance.now();
      this.engaged = true;
      let durationMs: number;
      this.starting = item;
      try {
        ({ durationMs } = await this.player.play(chunk));
      } catch (err) {
        this.starting = undefined;
        if (token !== this.token) continue;
        this.options.logger.warn({ err, target: this.target }, 'playback chunk could not be played');
        this.finish(item, 'failed');
        nextStart = performance.now();
        continue;
      }
      this.starting = undefined;
      this.counters.chunksPlayed++;
      const taken = Math.min(item.queuedSamples, chunk.length);
      item.queuedSamples -= taken;
      this.queuedSamples -= taken;
      if (item.current) item.playedBeforeMs += item.current.durationMs;
      else item.options.onStart?.();
      item.current = { startedAt, durationMs };
      if (token !== this.token) {
        // Interrupted while the media server was starting it: make sure it does not play on.
        if (!this.engaged) await this.stopPlayer();
        continue;
      }
      nextStart = startedAt + durationMs;
    }
  }

  private finish(item: AudioItem, status: 'played' | 'failed'): void {
    if (this.queue[0] === item) this.queue.shift();
    this.release(item);
    if (status === 'played') this.counters.itemsPlayed++;
    else this.counters.itemsFailed++;
    const playedMs = status === 'played' ? item.playedBeforeMs + (item.current?.durationMs ?? 0) : this.positionOf(item, undefined);
    item.resolve(this.outcome(item, status, playedMs));
  }

  private release(item: AudioItem): void {
    this.queuedSamples -= item.queuedSamples;
    item.queuedSamples = 0;
  }

  private outcome(item: AudioItem, status: PlayOutcome['status'], playedMs: number): PlayOutcome {
    return {
      ...(item.options.id !== undefined ? { id: item.options.id } : {}),
      status,
      playedMs: Math.round(playedMs),
      durationMs: item.reader.durationMs,
    };
  }

  /** Where playback of `item` is now: its finished chunks plus the current one's progress. */
  private positionOf(item: AudioItem, reportedMs: number | undefined): number {
    const current = item.current;
    if (!current) return item.playedBeforeMs;
    const elapsed = reportedMs ?? performance.now() - current.startedAt;
    return item.playedBeforeMs + Math.max(0, Math.min(current.durationMs, elapsed));
  }

  private stopPlayer(): Promise<number | undefined> {
    const stopping = (async () => {
      try {
        return (await this.player.stop()).positionMs;
      } catch (err) {
        this.options.logger.warn({ err, target: this.target }, 'playback stop failed');
        return undefined;
      }
    })();
    this.stopping = stopping;
    void stopping.finally(() => {
      if (this.stopping === stopping) this.stopping = undefined;
    });
    return stopping;
  }

  /** Waits `ms`, or until interrupted; `wakeable`: a new queue item ends the wait too. */
  private sleep(ms: number, wakeable: boolean): Promise<void> {
    const token = this.token;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wake === wake) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      const wake = (): void => {
        if (wakeable || token !== this.token) done();
      };
      this.wake = wake;
    });
  }
}

/**
 * A call's playback: the legs that can hear audio (none for a recording, the caller for an
 * answered call, both for a bridge). Closed with the call, before rtpengine forgets it.
 */
export class CallPlayback {
  private closing: Promise<void> | undefined;

  constructor(private readonly legs: Partial<Record<PlaybackTarget, LegPlayback>>) {}

  /** The leg's playback, when the call has that leg. */
  to(target: PlaybackTarget): LegPlayback | undefined {
    return this.legs[target];
  }

  get targets(): PlaybackTarget[] {
    return (Object.keys(this.legs) as PlaybackTarget[]).filter((t) => this.legs[t] !== undefined);
  }

  close(): Promise<void> {
    return (this.closing ??= Promise.all(Object.values(this.legs).map((leg) => leg?.close())).then(() => undefined));
  }
}

/**
 * Cuts a source into chunks at the player's rate. A clip is resampled once and sliced; a stream
 * is resampled as it comes and handed over in chunks of up to `max` samples, or less when the
 * previous chunk is about to end (so audio that is late from its source still plays as early as
 * it can).
 */
abstract class ChunkReader {
  static of(source: PlaybackSource, rate: number): ChunkReader {
    return 'pcm' in source ? new ClipReader(resampleClip(source.pcm, source.sampleRate, rate), rate) : new StreamReader(source.stream, source.sampleRate, rate);
  }

  /** Samples known up front (a clip's length), for the queue bound. */
  abstract readonly clipSamples: number;
  abstract readonly durationMs: number | undefined;
  /** The next chunk, or undefined once the source has ended. `due`: when the previous chunk ends (performance.now()). */
  abstract next(max: number, due: number): Promise<Int16Array | undefined>;
  abstract cancel(): void;
}

class ClipReader extends ChunkReader {
  private offset = 0;
  readonly clipSamples: number;
  readonly durationMs: number;

  constructor(
    private readonly pcm: Int16Array,
    rate: number,
  ) {
    super();
    this.clipSamples = pcm.length;
    this.durationMs = Math.round((pcm.length * 1000) / rate);
  }

  async next(max: number): Promise<Int16Array | undefined> {
    if (this.offset >= this.pcm.length) return undefined;
    const chunk = this.pcm.subarray(this.offset, this.offset + max);
    this.offset += chunk.length;
    return chunk;
  }

  cancel(): void {
    this.offset = this.pcm.length;
  }
}

/** The least of a stream handed over early (ms): smaller chunks cost a `play media` each. */
const MIN_EARLY_CHUNK_MS = 60;

class StreamReader extends ChunkReader {
  readonly clipSamples = 0;
  private readonly iterator: AsyncIterator<Int16Array>;
  private readonly resampler: Resampler | undefined;
  private buffered: Int16Array[] = [];
  private bufferedSamples = 0;
  private pending: Promise<IteratorResult<Int16Array>> | undefined;
  private ended = false;
  private totalSamples = 0;
  /** Settles when the item is dropped: a runner waiting on the source stops waiting. */
  private readonly cancelled: Promise<undefined>;
  private onCancel!: () => void;

  constructor(
    stream: AsyncIterable<Int16Array>,
    private readonly from: number,
    private readonly rate: number,
  ) {
    super();
    this.iterator = stream[Symbol.asyncIterator]();
    this.resampler = from === rate ? undefined : new Resampler(from, rate);
    this.cancelled = new Promise((resolve) => (this.onCancel = () => resolve(undefined)));
  }

  get durationMs(): number | undefined {
    return this.ended ? Math.round((this.totalSamples * 1000) / this.rate) : undefined;
  }

  async next(max: number, due: number): Promise<Int16Array | undefined> {
    const early = Math.round((MIN_EARLY_CHUNK_MS * this.rate) / 1000);
    while (!this.ended && this.bufferedSamples < max) {
      this.pending ??= this.iterator.next();
      const wait = due - performance.now();
      const result = this.bufferedSamples >= early && wait <= 0 ? undefined : await this.raceDue(this.pending, this.bufferedSamples >= early ? wait : Infinity);
      if (this.ended) return undefined; // cancelled meanwhile
      if (result === undefined) break; // the previous chunk ends: hand over what there is
      this.pending = undefined;
      if (result.done) {
        this.ended = true;
        if (this.resampler) this.push(this.resampler.process(new Int16Array(this.resampler.delaySamples * 2)));
        break;
      }
      const pcm = this.resampler ? this.resampler.process(result.value) : result.value;
      this.push(pcm);
    }
    if (this.bufferedSamples === 0) return undefined;
    const take = Math.min(max, this.bufferedSamples);
    const out = new Int16Array(take);
    let at = 0;
    while (at < take) {
      const head = this.buffered[0]!;
      const n = Math.min(head.length, take - at);
      out.set(head.subarray(0, n), at);
      at += n;
      if (n === head.length) this.buffered.shift();
      else this.buffered[0] = head.subarray(n);
    }
    this.bufferedSamples -= take;
    return out;
  }

  cancel(): void {
    if (this.ended && this.bufferedSamples === 0) return;
    this.ended = true;
    this.buffered = [];
    this.bufferedSamples = 0;
    this.onCancel();
    // Tells a generator to finish (its `finally` runs); a source that ignores it is left alone.
    void Promise.resolve(this.iterator.return?.()).catch(() => undefined);
  }

  private push(pcm: Int16Array): void {
    if (pcm.length === 0) return;
    this.buffered.push(pcm);
    this.bufferedSamples += pcm.length;
    this.totalSamples += pcm.length;
  }

  /** `p`, or undefined after `ms` or once cancelled. */
  private raceDue<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => resolve(undefined), Math.max(0, ms)) : undefined;
      void this.cancelled.then(() => {
        clearTimeout(timer);
        resolve(undefined);
      });
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }
}
