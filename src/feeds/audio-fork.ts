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
 * - from the consumer (text JSON `{type, data}`): `playAudio` (base64 raw L16 or WAV) is queued
 *   and played into the call, then acknowledged with `playDone`; `killAudio` stops playback now
 *   and drops what is queued (interrupted plays get `playDone` with `interrupted: true`, queued
 *   marks are echoed `cleared`); `mark` is echoed `{name, event:'playout'}` when playback reaches
 *   it; `clearMarks` echoes the queued marks `cleared`; `disconnect` closes the socket for good.
 *   With `bidirectional`, binary L16 frames at `sampleRate` are played too (streamed). Anything
 *   else is counted in `badMessages` and logged at warn (the first few), never thrown.
 * - `close()` is idempotent: it flushes the last aligned audio, stops playback, cancels timers
 *   and closes the socket with 1000 (waiting at most `CLOSE_WAIT_MS` for the consumer's reply).
 */
import { performance } from 'node:perf_hooks';
import { WebSocket, type RawData } from 'ws';
import { FRAME_MS, FRAME_SAMPLES, type AudioFrame } from '../audio/frame.js';
import { leToPcm, pcmToLe, resampleClip } from '../audio/pcm.js';
import { Resampler } from '../audio/resampler.js';
import { parseWav } from '../audio/wav.js';
import type { FeedsConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { CallPlayer } from '../media/rtpengine/player.js';

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
  /** Plays the consumer's audio into the call; absent: playback is refused (e.g. SIPREC). */
  readonly player?: CallPlayer;
  readonly logger: Logger;
  /** `ws.bufferedAmount` above which the socket counts as not writable. Default 64 KiB. */
  readonly highWaterBytes?: number;
  /** Streamed (bidirectional) audio is played in chunks of this length. Default 300 ms. */
  readonly streamChunkMs?: number;
  /** Time allowed for the WebSocket handshake before the attempt counts as failed. Default 5000 ms. */
  readonly handshakeTimeoutMs?: number;
}

export interface AudioForkStats {
  /** 20 ms frames of audio handed to the socket. */
  readonly framesSent: number;
  /** 20 ms frames dropped from a full buffer. */
  readonly framesDropped: number;
  /** Overrun episodes (a run of drops until the consumer is writable again). */
  readonly overruns: number;
  /** Connection attempts after a lost or failed one. */
  readonly reconnects: number;
  /** Connections opened. */
  readonly connects: number;
  readonly messagesIn: number;
  readonly badMessages: number;
  /** Frames arriving after their slot had been sent (with silence in their place). */
  readonly lateFrames: number;
  /** Chunks handed to the player. */
  readonly chunksPlayed: number;
  /** Play requests refused because the call has nothing to play into, or failed. */
  readonly playsRefused: number;
  /** 20 ms frames waiting for the socket now. */
  readonly bufferedFrames: number;
  readonly connected: boolean;
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
/** A dry play queue is kept engaged this long, so streamed chunks arriving just late play back to back. */
const IDLE_STOP_MS = 120;
/** Partial streamed audio is played once no binary frame has arrived for this long. */
const STREAM_FLUSH_MS = 80;
/** Queued playback beyond this is refused (a consumer streaming far faster than real time). */
const MAX_QUEUED_MS = 300_000;
/** The largest message taken from the consumer (a playAudio of ~8 min of 8 kHz audio in base64). */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Bad messages logged at warn per fork; later ones are only counted. */
const BAD_LOG_LIMIT = 20;

type PlayItem =
  | { readonly kind: 'audio'; readonly pcm: Int16Array; offset: number; readonly done?: (interrupted: boolean) => void }
  | { readonly kind: 'mark'; readonly name: string };

type Slot = [Int16Array | undefined, Int16Array | undefined];

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class AudioForkOut {
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

  // --- playback
  private readonly playQueue: PlayItem[] = [];
  private queuedSamples = 0;
  /** Bumped by killAudio / close: a playback run started under an older token stops. */
  private playToken = 0;
  private runningToken = -1;
  /** The player has been started and not stopped since. */
  private engaged = false;
  private wake: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private readonly stream: { pieces: Int16Array[]; samples: number; resampler: Resampler | undefined; timer: NodeJS.Timeout | undefined; carry: number | undefined };
  private readonly streamChunkSamples: number;

  private readonly counters = {
    framesSent: 0,
    framesDropped: 0,
    overruns: 0,
    reconnects: 0,
    connects: 0,
    messagesIn: 0,
    badMessages: 0,
    lateFrames: 0,
    chunksPlayed: 0,
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
    const playRate = options.player?.sampleRate ?? options.sampleRate;
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
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
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
    await this.killPlayback(false);
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
      if (!this.options.player) return this.refuse('stream');
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
        void this.killPlayback(true);
        return;
      case 'mark':
        if (typeof body.name !== 'string' || body.name === '') return this.bad('mark without a name', { type: 'mark' });
        this.playQueue.push({ kind: 'mark', name: body.name });
        this.runPlayback();
        return;
      case 'clearMarks':
        this.clearMarks();
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
    if (!this.options.player) return this.refuse('playAudio');
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
    const playRate = this.options.player.sampleRate;
    const clip = resampleClip(pcm, rate, playRate);
    const durationMs = Math.round((clip.length * 1000) / playRate);
    const id = typeof data.id === 'string' || typeof data.id === 'number' ? data.id : undefined;
    if (!this.admit(clip.length)) return;
    this.playQueue.push({
      kind: 'audio',
      pcm: clip,
      offset: 0,
      done: (interrupted) => this.sendJson({ type: 'playDone', data: { ...(id !== undefined ? { id } : {}), durationMs, ...(interrupted ? { interrupted: true } : {}) } }),
    });
    this.runPlayback();
  }

  /** Whether `samples` more fit the play queue; a refusal is counted and logged. */
  private admit(samples: number): boolean {
    const limit = (MAX_QUEUED_MS * this.options.player!.sampleRate) / 1000;
    if (this.queuedSamples + samples <= limit) {
      this.queuedSamples += samples;
      return true;
    }
    this.counters.playsRefused++;
    this.log.warn({ queuedMs: Math.round((this.queuedSamples * 1000) / this.options.player!.sampleRate) }, 'audio fork play queue full: audio dropped');
    return false;
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
    const playRate = this.options.player!.sampleRate;
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
    if (!this.admit(pcm.length)) return;
    this.playQueue.push({ kind: 'audio', pcm, offset: 0 });
    this.runPlayback();
  }

  private clearMarks(): void {
    const marks = this.playQueue.filter((item) => item.kind === 'mark');
    if (marks.length === 0) return;
    this.playQueue.splice(0, this.playQueue.length, ...this.playQueue.filter((item) => item.kind !== 'mark'));
    for (const mark of marks) this.sendJson({ type: 'mark', data: { name: mark.name, event: 'cleared' } });
  }

  private async disconnect(): Promise<void> {
    if (this.disconnected || this.closed) return;
    this.disconnected = true;
    this.log.info('audio fork disconnected by the consumer');
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.queue.length = 0;
    this.pending.clear();
    await this.killPlayback(false);
    await this.closeSocket('disconnect');
  }

  // ------------------------------------------------------------------------------------------
  // playback

  /** Plays the queue in order, one chunk at a time, each started when the previous one ends. */
  private runPlayback(): void {
    const token = this.playToken;
    if (this.runningToken === token || this.closed) {
      this.wake?.resolve(); // an idle run waiting to stop picks the new item up
      return;
    }
    this.runningToken = token;
    void this.playLoop(token).finally(() => {
      if (this.runningToken === token) this.runningToken = -1;
    });
  }

  private async playLoop(token: number): Promise<void> {
    const player = this.options.player;
    let nextStart = 0;
    for (;;) {
      if (token !== this.playToken) return;
      const item = this.playQueue[0];
      if (!item) {
        if (!this.engaged) return;
        // Dry: keep the player engaged a moment, so streamed audio plays back to back.
        await this.sleep(Math.max(IDLE_STOP_MS, nextStart - performance.now()), token);
        if (token !== this.playToken) return;
        if (this.playQueue.length > 0) continue;
        this.engaged = false;
        await player?.stop().catch((err: unknown) => this.log.warn({ err }, 'audio fork playback stop failed'));
        if (this.playQueue.length > 0 && token === this.playToken) continue;
        return;
      }
      if (item.kind === 'mark') {
        this.playQueue.shift();
        this.sendJson({ type: 'mark', data: { name: item.name, event: 'playout' } });
        continue;
      }
      if (!player || item.offset >= item.pcm.length) {
        this.playQueue.shift();
        item.done?.(false);
        continue;
      }
      const wait = nextStart - performance.now();
      if (wait > 0) {
        await this.sleep(wait, token, false);
        if (token !== this.playToken) return;
      }
      const chunk = item.pcm.subarray(item.offset, item.offset + player.maxChunkSamples);
      item.offset += chunk.length;
      this.queuedSamples -= chunk.length;
      const startedAt = performance.now();
      try {
        this.engaged = true;
        const { durationMs } = await player.play(chunk, player.sampleRate);
        this.counters.chunksPlayed++;
        nextStart = startedAt + durationMs;
      } catch (err) {
        this.counters.playsRefused++;
        this.log.warn({ err }, 'audio fork chunk could not be played');
        nextStart = performance.now();
      }
      if (token !== this.playToken) {
        // Killed while rtpengine was starting it: make sure it does not play on (unless a newer
        // run has started playing since; its own chunk replaced this one).
        if (this.runningToken === token || this.runningToken === -1) await player.stop().catch(() => undefined);
        return;
      }
      if (item.offset >= item.pcm.length) {
        // Done once its last chunk has played.
        const ends = nextStart - performance.now();
        if (ends > 0) await this.sleep(ends, token, false);
        if (token !== this.playToken) return;
        if (this.playQueue[0] === item) this.playQueue.shift();
        item.done?.(false);
      }
    }
  }

  /** Waits `ms`, or until killed; `wakeable` lets new queue items end the wait early. */
  private sleep(ms: number, token: number, wakeable = true): Promise<'elapsed' | 'woken'> {
    return new Promise((resolve) => {
      if (token !== this.playToken) return resolve('woken');
      const finish = (how: 'elapsed' | 'woken'): void => {
        clearTimeout(timer);
        if (this.wake?.timer === timer) this.wake = undefined;
        resolve(how);
      };
      const timer = setTimeout(() => finish('elapsed'), Math.max(0, ms));
      this.wake = { timer, resolve: () => (wakeable || token !== this.playToken ? finish('woken') : undefined) };
    });
  }

  /** Stops playback now and drops what is queued; `report`: interrupted plays and marks are told to the consumer. */
  private async killPlayback(report: boolean): Promise<void> {
    this.playToken++;
    const wake = this.wake;
    this.wake = undefined;
    wake?.resolve();
    const s = this.stream;
    if (s.timer) clearTimeout(s.timer);
    s.timer = undefined;
    s.pieces = [];
    s.samples = 0;
    s.resampler?.reset();
    const dropped = this.playQueue.splice(0);
    this.queuedSamples = 0;
    if (report) {
      for (const item of dropped) {
        if (item.kind === 'mark') this.sendJson({ type: 'mark', data: { name: item.name, event: 'cleared' } });
        else item.done?.(true);
      }
    }
    if (this.engaged) {
      this.engaged = false;
      await this.options.player?.stop().catch((err: unknown) => this.log.warn({ err }, 'audio fork playback stop failed'));
    }
  }
}
