/**
 * Audio fork out: one call's audio streamed to a WebSocket consumer in the jambonz `listen` /
 * FreeSWITCH mod_audio_fork format, and audio from the consumer played into the call.
 *
 * Contract:
 * - on every connection the first frame is one text frame of JSON call metadata (with
 *   `sampleRate` and `mixType`), then binary frames of raw little-endian L16 at `sampleRate`, one
 *   per 20 ms: `mono` = the left (caller) channel, `mixed` = both summed and clipped, `stereo` =
 *   interleaved left/right. A channel without a party, or whose party sends nothing, is silence.
 *   The two parties' frames are aligned by their call-clock `startMs`; a slot one party lacks is
 *   sent with silence for it once the other party is `MAX_SKEW_MS` ahead.
 * - while the socket is not open or not writable (`bufferedAmount` over `highWaterBytes`), up to
 *   `bufferMs` of audio is held; beyond it the OLDEST is dropped, and each such overrun episode
 *   is logged once at warn, counted once, and reported to the consumer once it is writable again
 *   as `{type:'event', data:{event:'buffer_overrun', droppedMs}}`.
 * - a socket that closes or fails while the fork lives is reopened after reconnectMinMs, doubling
 *   up to reconnectMaxMs (reset once a connection opens); the consumer's `disconnect` and
 *   `close()` end it for good. Connecting is asynchronous: nothing here delays the call.
 * - from the consumer (text JSON `{type, data}`), played through the call's playback owner
 *   (`LegPlayback`, the caller's leg), of which the fork is one client: `playAudio` (base64 raw
 *   L16 or WAV) is queued and played, then acknowledged with `playDone`; `killAudio` interrupts
 *   this fork's audio now and drops what it queued (its plays get `playDone` with
 *   `interrupted: true`, its queued marks are echoed `cleared`); `mark` is echoed
 *   `{name, event:'playout'}` when playback reaches it; `clearMarks` echoes the queued marks
 *   `cleared`; `disconnect` closes the socket for good. With `bidirectional`, binary L16 frames at
 *   `sampleRate` are played too (streamed). Anything else is counted in `badMessages` and logged
 *   at warn (the first few), never thrown.
 * - `close()` is idempotent: it flushes the last aligned audio, stops this fork's playback,
 *   cancels timers and closes the socket with 1000 (waiting at most `CLOSE_WAIT_MS` for the
 *   consumer's reply).
 */
import { WebSocket, type RawData } from 'ws';
import { FRAME_MS, FRAME_SAMPLES, type AudioFrame } from '../audio/frame.js';
import { leToPcm, pcmToLe } from '../audio/pcm.js';
import { Resampler } from '../audio/resampler.js';
import { parseWav } from '../audio/wav.js';
import type { FeedsConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { AudioFork, AudioForkOpener, AudioForkStats } from '../call/ports.js';
import type { LegPlayback, PlayOutcome } from '../call/playback.js';

export type ForkMix = 'mono' | 'mixed' | 'stereo';

export interface AudioForkOptions {
  /** Gateway-wide counters this fork adds to. */
  readonly totals?: ForkTotals;
  readonly url: string;
  readonly mix: ForkMix;
  readonly sampleRate: 8000 | 16000;
  /** Play binary L16 frames received from the consumer into the call. */
  readonly bidirectional: boolean;
  /**
   * Party names of the left (caller) and right (callee) channels, in the names `AudioFrame.party`
   * carries; `undefined`: that channel is silence (e.g. the gateway itself answered).
   */
  readonly channels: readonly [string | undefined, string | undefined];
  /** Call metadata for the first text frame of every connection (`sampleRate` and `mixType` are added). */
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly config: FeedsConfig['fork'];
  /** Plays the consumer's audio into the call (the caller's leg); absent: playback is refused (e.g. SIPREC). */
  readonly playback?: LegPlayback;
  readonly logger: Logger;
  /** `ws.bufferedAmount` above which the socket counts as not writable. Default 64 KiB. */
  readonly highWaterBytes?: number;
  /** Streamed (bidirectional) audio is played in chunks of this length. Default 300 ms. */
  readonly streamChunkMs?: number;
  /** Time allowed for the WebSocket handshake before the attempt counts as failed. Default 5000 ms. */
  readonly handshakeTimeoutMs?: number;
}

/** Gateway-wide fork counters for /metrics: every fork adds to them, so ended calls still count. */
export class ForkTotals {
  open = 0;
  framesDropped = 0;
  overruns = 0;
  reconnects = 0;
}

/** How far one party may run ahead before the other's missing frames are sent as silence. */
export const MAX_SKEW_MS = 200;
/** How long `close()` waits for the consumer to answer the close frame before dropping the socket. */
const CLOSE_WAIT_MS = 250;
/** Partial streamed audio is played once no binary frame has arrived for this long. */
const STREAM_FLUSH_MS = 80;
/** The largest message taken from the consumer (a playAudio of ~8 min of 8 kHz audio in base64). */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Bad messages logged at warn per fork; later ones are only counted. */
const BAD_LOG_LIMIT = 20;

/** The fork's items in the playback owner's queue: `killAudio` and `disconnect` stop only these. */
const OWNER = 'audio-stream';

type Slot = [Int16Array | undefined, Int16Array | undefined];

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The call's audio fork out: implements the call level's `AudioFork` port. */
export class AudioForkOut implements AudioFork {
  private ws: WebSocket | undefined;
  private closed = false;
  private disconnected = false;
  private closing: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private readonly log: Logger;
  private readonly highWaterBytes: number;

  // --- outgoing audio
  /** Channels whose party sends frames (mono: the left one only). */
  private readonly live: number[];
  private readonly pending = new Map<number, Slot>();
  /** The lowest slot not yet sent (slots are FRAME_MS long on the call clock). */
  private nextSlot: number | undefined;
  private newestSlot = -Infinity;
  private readonly resamplers: Resampler[];
  private readonly queue: Buffer[] = [];
  private readonly capacity: number;
  private overrun: { droppedMs: number } | undefined;

  // --- playback (through the call's playback owner)
  private readonly stream: { pieces: Int16Array[]; samples: number; resampler: Resampler | undefined; timer: NodeJS.Timeout | undefined; carry: number | undefined };
  private readonly streamChunkSamples: number;
  /** Set while the fork's own playback is stopped at close or disconnect: nothing is reported then. */
  private muted = false;

  private readonly counters = {
    framesSent: 0,
    framesDropped: 0,
    overruns: 0,
    reconnects: 0,
    connects: 0,
    messagesIn: 0,
    badMessages: 0,
    lateFrames: 0,
    playsQueued: 0,
    playsDone: 0,
    playsRefused: 0,
  };

  constructor(private readonly options: AudioForkOptions) {
    this.log = options.logger.child({ fork: options.url });
    this.highWaterBytes = options.highWaterBytes ?? 64 * 1024;
    this.capacity = Math.max(1, Math.floor(options.config.bufferMs / FRAME_MS));
    const [left, right] = options.channels;
    this.live = options.mix === 'mono' ? (left !== undefined ? [0] : []) : [left, right].flatMap((p, i) => (p !== undefined ? [i] : []));
    const outChannels = options.mix === 'stereo' ? 2 : 1;
    this.resamplers = options.sampleRate === 16000 ? [] : Array.from({ length: outChannels }, () => new Resampler(16000, options.sampleRate));
    const playRate = options.playback?.sampleRate ?? options.sampleRate;
    this.streamChunkSamples = Math.round(((options.streamChunkMs ?? 300) * playRate) / 1000);
    this.stream = { pieces: [], samples: 0, resampler: undefined, timer: undefined, carry: undefined };
    if (options.totals) options.totals.open++;
    this.connect();
  }

  stats(): AudioForkStats {
    return { ...this.counters, bufferedFrames: this.queue.length, connected: this.ws?.readyState === WebSocket.OPEN };
  }

  /** One 20 ms 16 kHz frame of a call party; frames of parties on no channel are ignored. */
  push(frame: AudioFrame): void {
    if (this.closed || this.disconnected) return;
    const [left, right] = this.options.channels;
    const channel = frame.party === left ? 0 : frame.party === right ? 1 : undefined;
    if (channel === undefined || !this.live.includes(channel)) return;
    const slot = Math.round(frame.startMs / FRAME_MS);
    if (this.nextSlot !== undefined && slot < this.nextSlot) {
      this.counters.lateFrames++;
      return;
    }
    let entry = this.pending.get(slot);
    if (!entry) {
      entry = [undefined, undefined];
      this.pending.set(slot, entry);
    }
    entry[channel] = frame.samples;
    if (slot > this.newestSlot) this.newestSlot = slot;
    this.drainSlots(false);
    this.flush();
  }

  /** Ends the fork: last audio out, playback stopped, socket closed with 1000, no reconnect. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ------------------------------------------------------------------------------------------
  // outgoing audio

  /** Sends the slots that are complete, or that the newest slot has left `MAX_SKEW_MS` behind (all of them when `all`). */
  private drainSlots(all: boolean): void {
    const skew = Math.ceil(MAX_SKEW_MS / FRAME_MS);
    while (this.pending.size > 0) {
      let lowest = Infinity;
      for (const k of this.pending.keys()) if (k < lowest) lowest = k;
      const entry = this.pending.get(lowest)!;
      const complete = this.live.every((c) => entry[c] !== undefined);
      if (!all && !complete && lowest > this.newestSlot - skew) return;
      this.pending.delete(lowest);
      this.nextSlot = lowest + 1;
      this.enqueue(this.render(entry));
    }
  }

  /** One slot as L16 bytes at the output rate and layout. */
  private render([left, right]: Slot): Buffer {
    const { mix } = this.options;
    const silence = (): Int16Array => new Int16Array(FRAME_SAMPLES);
    let channels: Int16Array[];
    if (mix === 'mono') channels = [left ?? silence()];
    else if (mix === 'stereo') channels = [left ?? silence(), right ?? silence()];
    else {
      const sum = new Int16Array(FRAME_SAMPLES);
      for (let i = 0; i < FRAME_SAMPLES; i++) {
        const s = (left?.[i] ?? 0) + (right?.[i] ?? 0);
        sum[i] = s > 32767 ? 32767 : s < -32768 ? -32768 : s;
      }
      channels = [sum];
    }
    if (this.resamplers.length > 0) channels = channels.map((c, i) => this.resamplers[i]!.process(c));
    if (channels.length === 1) return pcmToLe(channels[0]!);
    const [l, r] = channels as [Int16Array, Int16Array];
    const n = Math.min(l.length, r.length);
    const out = new Int16Array(2 * n);
    for (let i = 0; i < n; i++) {
      out[2 * i] = l[i]!;
      out[2 * i + 1] = r[i]!;
    }
    return pcmToLe(out);
  }

  private writable(): boolean {
    const ws = this.ws;
    return ws !== undefined && ws.readyState === WebSocket.OPEN && ws.bufferedAmount <= this.highWaterBytes;
  }

  private enqueue(frame: Buffer): void {
    this.queue.push(frame);
    if (this.queue.length <= this.capacity) return;
    this.queue.shift();
    this.counters.framesDropped++;
    if (this.options.totals) this.options.totals.framesDropped++;
    if (!this.overrun) {
      this.overrun = { droppedMs: 0 };
      this.counters.overruns++;
      if (this.options.totals) this.options.totals.overruns++;
      this.log.warn({ bufferMs: this.options.config.bufferMs, connected: this.ws?.readyState === WebSocket.OPEN }, 'audio fork buffer overrun: dropping the oldest audio');
    }
    this.overrun.droppedMs += FRAME_MS;
  }

  /** Sends what the buffer holds while the socket takes it; reports a finished overrun first. */
  private flush(): void {
    if (!this.writable()) return;
    if (this.overrun) {
      this.sendJson({ type: 'event', data: { event: 'buffer_overrun', droppedMs: this.overrun.droppedMs } });
      this.log.info({ droppedMs: this.overrun.droppedMs }, 'audio fork writable again after an overrun');
      this.overrun = undefined;
    }
    while (this.queue.length > 0 && this.writable()) {
      this.ws!.send(this.queue.shift()!, { binary: true });
      this.counters.framesSent++;
    }
  }

  private sendJson(message: unknown): void {
    const ws = this.ws;
    if (!this.muted && ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  // ------------------------------------------------------------------------------------------
  // connection

  private connect(): void {
    if (this.closed || this.disconnected) return;
    const { url, config } = this.options;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, config.subprotocol, { handshakeTimeout: this.options.handshakeTimeoutMs ?? 5000, perMessageDeflate: false, maxPayload: MAX_MESSAGE_BYTES });
    } catch (err) {
      this.log.warn({ err }, 'audio fork could not connect');
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.counters.connects++;
      this.log.info({ connects: this.counters.connects }, 'audio fork connected');
      ws.send(JSON.stringify({ ...this.options.metadata, sampleRate: this.options.sampleRate, mixType: this.options.mix }));
      this.flush();
    });
    ws.on('message', (data, isBinary) => {
      if (this.ws === ws) this.onMessage(data, isBinary);
    });
    let failure: Error | undefined;
    ws.on('error', (err) => {
      failure = err; // 'close' follows and reports it
    });
    ws.on('close', (code) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (this.closed || this.disconnected) return;
      this.log.warn({ code, ...(failure ? { err: failure } : {}), attempt: this.attempt + 1 }, 'audio fork socket closed: reconnecting');
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.closed || this.disconnected || this.reconnectTimer) return;
    const { reconnectMinMs, reconnectMaxMs } = this.options.config;
    const delay = Math.min(reconnectMaxMs, reconnectMinMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.counters.reconnects++;
      if (this.options.totals) this.options.totals.reconnects++;
      this.connect();
    }, delay);
  }

  /** Closes the socket with 1000, waiting at most CLOSE_WAIT_MS for the consumer's close frame. */
  private async closeSocket(reason: string): Promise<void> {
    const ws = this.ws;
    this.ws = undefined;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    if (ws.readyState === WebSocket.CONNECTING) {
      ws.terminate(); // aborts the handshake: nothing to say goodbye to
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, CLOSE_WAIT_MS);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, reason);
    });
  }

  private async shutdown(): Promise<void> {
    const wasDisconnected = this.disconnected;
    this.closed = true;
    if (this.options.totals) this.options.totals.open--;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (!wasDisconnected) {
      this.drainSlots(true);
      this.flush();
    }
    await this.stopPlayback(false);
    await this.closeSocket('call ended');
    if (this.overrun) this.log.info({ droppedMs: this.overrun.droppedMs }, 'audio fork closed during an overrun');
    this.log.info({ ...this.counters }, 'audio fork closed');
  }

  // ------------------------------------------------------------------------------------------
  // messages from the consumer

  private bad(reason: string, fields: Record<string, unknown> = {}): void {
    this.counters.badMessages++;
    if (this.counters.badMessages <= BAD_LOG_LIMIT) this.log.warn({ reason, ...fields }, 'audio fork message from the consumer ignored');
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.counters.messagesIn++;
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      if (!this.options.bidirectional) return this.bad('binary audio without bidirectional streaming', { bytes: bytes.length });
      if (!this.options.playback) return this.refuse('stream');
      this.streamIn(bytes);
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(bytes.toString('utf8'));
    } catch {
      return this.bad('not JSON', { bytes: bytes.length });
    }
    if (!isRecord(message) || typeof message.type !== 'string') return this.bad('no message type');
    const body = isRecord(message.data) ? message.data : {};
    switch (message.type) {
      case 'playAudio':
        return this.playAudio(body);
      case 'killAudio':
        void this.stopPlayback(true);
        return;
      case 'mark':
        if (typeof body.name !== 'string' || body.name === '') return this.bad('mark without a name', { type: 'mark' });
        return this.mark(body.name);
      case 'clearMarks':
        this.options.playback?.clearMarks(OWNER);
        return;
      case 'disconnect':
        void this.disconnect();
        return;
      default:
        return this.bad('unknown message type', { type: message.type.slice(0, 64) });
    }
  }

  private refuse(what: string): void {
    this.counters.playsRefused++;
    if (this.counters.playsRefused <= BAD_LOG_LIMIT) this.log.warn({ what }, 'audio fork playback refused: this call has no party to play to');
  }

  private playAudio(data: Record<string, unknown>): void {
    const playback = this.options.playback;
    if (!playback) return this.refuse('playAudio');
    const { audioContent, audioContentType = 'raw' } = data;
    if (typeof audioContent !== 'string') return this.bad('playAudio without audioContent', { type: 'playAudio' });
    const bytes = Buffer.from(audioContent, 'base64');
    let pcm: Int16Array;
    let rate: number;
    if (audioContentType === 'wav' || audioContentType === 'audio/wav') {
      try {
        const wav = parseWav(bytes);
        pcm = wav.channels[0]!;
        rate = wav.sampleRate;
      } catch (err) {
        return this.bad('playAudio WAV not readable', { type: 'playAudio', error: (err as Error).message });
      }
    } else if (audioContentType === 'raw' || audioContentType === 'audio/l16') {
      rate = data.sampleRate === undefined ? this.options.sampleRate : Number(data.sampleRate);
      if (!Number.isInteger(rate) || rate < 8000 || rate > 48000) return this.bad('playAudio sample rate not supported', { type: 'playAudio', sampleRate: data.sampleRate });
      pcm = leToPcm(bytes);
    } else {
      return this.bad('playAudio content type not supported', { type: 'playAudio', audioContentType: String(audioContentType).slice(0, 64) });
    }
    const id = typeof data.id === 'string' || typeof data.id === 'number' ? data.id : undefined;
    this.queuePlay(playback, { pcm, sampleRate: rate }, (outcome) =>
      this.sendJson({
        type: 'playDone',
        data: { ...(id !== undefined ? { id } : {}), durationMs: outcome.durationMs ?? Math.round((pcm.length * 1000) / rate), ...(outcome.status === 'played' || outcome.status === 'failed' ? {} : { interrupted: true }) },
      }),
    );
  }

  /** Hands one item to the playback owner; `done` sees its outcome (played, interrupted, cleared, failed). */
  private queuePlay(playback: LegPlayback, source: { pcm: Int16Array; sampleRate: number }, done?: (outcome: PlayOutcome) => void): void {
    this.counters.playsQueued++;
    playback.play(source, { owner: OWNER }).then(
      (outcome) => {
        if (outcome.status === 'failed') this.counters.playsRefused++;
        else this.counters.playsDone++;
        done?.(outcome);
      },
      (err: unknown) => {
        // Refused at once: the queue is full or the call's playback has ended.
        this.counters.playsRefused++;
        if (this.counters.playsRefused <= BAD_LOG_LIMIT) this.log.warn({ err }, 'audio fork playback refused');
      },
    );
  }

  private mark(name: string): void {
    const playback = this.options.playback;
    // With nothing to play into, the mark is reached at once.
    if (!playback) return this.sendJson({ type: 'mark', data: { name, event: 'playout' } });
    void playback.mark(name, { owner: OWNER }).then((event) => this.sendJson({ type: 'mark', data: { name, event } }));
  }

  /**
   * Streamed (bidirectional) audio: collected into `streamChunkMs` chunks played back to back.
   * Added latency: up to one chunk (300 ms by default) of collection, or STREAM_FLUSH_MS after
   * the consumer pauses, plus rtpengine's start (~2 ms on loopback); a chunk that arrives while
   * the previous one plays waits for its end.
   */
  private streamIn(bytes: Buffer): void {
    const s = this.stream;
    let input: Uint8Array = bytes;
    if (s.carry !== undefined) {
      input = Buffer.concat([Buffer.from([s.carry]), bytes]);
      s.carry = undefined;
    }
    if (input.length % 2 === 1) s.carry = input[input.length - 1];
    let pcm = leToPcm(input);
    const playRate = this.options.playback!.sampleRate;
    if (this.options.sampleRate !== playRate) {
      s.resampler ??= new Resampler(this.options.sampleRate, playRate);
      pcm = s.resampler.process(pcm);
    }
    s.pieces.push(pcm);
    s.samples += pcm.length;
    if (s.timer) clearTimeout(s.timer);
    s.timer = undefined;
    if (s.samples >= this.streamChunkSamples) this.flushStream();
    else s.timer = setTimeout(() => this.flushStream(), STREAM_FLUSH_MS);
  }

  private flushStream(): void {
    const s = this.stream;
    if (s.timer) clearTimeout(s.timer);
    s.timer = undefined;
    if (s.samples === 0) return;
    const pcm = new Int16Array(s.samples);
    let at = 0;
    for (const p of s.pieces) {
      pcm.set(p, at);
      at += p.length;
    }
    s.pieces = [];
    s.samples = 0;
    const playback = this.options.playback;
    if (playback) this.queuePlay(playback, { pcm, sampleRate: playback.sampleRate });
  }

  private async disconnect(): Promise<void> {
    if (this.disconnected || this.closed) return;
    this.disconnected = true;
    this.log.info('audio fork disconnected by the consumer');
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.queue.length = 0;
    this.pending.clear();
    await this.stopPlayback(false);
    await this.closeSocket('disconnect');
  }

  /**
   * Stops this fork's audio now and drops what it queued (the playback owner reports each as
   * interrupted or cleared: `report` sends their playDone and mark echoes, else they are silent).
   */
  private async stopPlayback(report: boolean): Promise<void> {
    const s = this.stream;
    if (s.timer) clearTimeout(s.timer);
    s.timer = undefined;
    s.pieces = [];
    s.samples = 0;
    s.resampler?.reset();
    if (!report) this.muted = true;
    try {
      await this.options.playback?.interrupt({ owner: OWNER });
    } finally {
      if (!report) this.muted = false;
    }
  }
}

/**
 * The call level's `AudioForkOpener` over this class: each rule's fork plan and the gateway's
 * fork settings; audio from the consumer plays through the call's playback (when it has one).
 */
export function audioForkOpener(config: FeedsConfig['fork'], totals?: ForkTotals): AudioForkOpener {
  return (spec, playback, logger) =>
    new AudioForkOut({
      url: spec.plan.url,
      mix: spec.plan.mix,
      sampleRate: spec.plan.sampleRate,
      bidirectional: spec.plan.bidirectional && playback !== undefined,
      channels: spec.channels,
      metadata: spec.metadata,
      config,
      ...(totals ? { totals } : {}),
      ...(playback ? { playback } : {}),
      logger,
    });
}
