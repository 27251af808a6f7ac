/**
 * rtpengine ng control client over UDP.
 *
 * Contract:
 * - every request gets a cookie unique to this client instance (random prefix + counter), so a
 *   restarted gateway never collides with replies rtpengine still caches for an older cookie;
 * - replies are matched by cookie only; a reply nobody waits for (late, duplicate, foreign) and a
 *   datagram that cannot be parsed are counted and logged at debug level, never thrown;
 * - a request is retransmitted with the same cookie (rtpengine answers a repeated cookie from its
 *   reply cache instead of running the command twice) and rejected with RtpengineTimeoutError
 *   after `timeoutMs` in total;
 * - `result: "error"` rejects with RtpengineError carrying rtpengine's `error-reason`;
 * - `close()` is idempotent and rejects everything pending with code 'RTPENGINE_CLOSED'; a socket
 *   'error' event does the same (with the error as cause) instead of crashing the process;
 * - an idle client does not keep the process alive (the socket is ref'd only while requests are pending).
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { WhisperlineError } from '../../errors.js';
import { decodeBencode, encodeBencode, isBencodeDict, type BencodeDict } from './bencode.js';
import type {
  NgAnswerReply,
  NgAnswerRequest,
  NgBlockMediaRequest,
  NgDeleteReply,
  NgDeleteRequest,
  NgDictReply,
  NgListReply,
  NgListRequest,
  NgOfferReply,
  NgOfferRequest,
  NgOkReply,
  NgParams,
  NgPlayMediaReply,
  NgPlayMediaRequest,
  NgPongReply,
  NgQueryReply,
  NgQueryRequest,
  NgStatisticsReply,
  NgStopMediaReply,
  NgStopMediaRequest,
  NgSubscribeAnswerRequest,
  NgSubscribeRequestReply,
  NgSubscribeRequestRequest,
  NgUnblockMediaRequest,
  NgUnsubscribeRequest,
} from './types.js';

/** The largest UDP payload over IPv4; a bigger ng message cannot be sent at all. */
export const MAX_NG_DATAGRAM_BYTES = 65_507;

/** The subset of a pino logger the client uses. */
export interface RtpengineLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface RtpengineClientOptions {
  /** Address of rtpengine's `--listen-ng`. */
  readonly host: string;
  readonly port: number;
  /** Total time a request may take, retransmissions included. Default 2000 ms. */
  readonly timeoutMs?: number;
  /**
   * Retransmissions of an unanswered request, spread evenly over `timeoutMs`
   * (2 → sent at 0, timeoutMs/3 and 2·timeoutMs/3). Default 2; 0 disables them.
   */
  readonly retransmits?: number;
  readonly logger?: RtpengineLogger;
}

export interface RtpengineRequestOptions {
  /** Overrides the client's `timeoutMs` for this request. */
  readonly timeoutMs?: number;
}

/** Counters since the client was created (a snapshot; the client keeps counting). */
export interface RtpengineClientCounters {
  /** Requests sent (retransmissions not included). */
  readonly sent: number;
  readonly retransmits: number;
  readonly timeouts: number;
  /** Replies rtpengine marked `result: "error"`. */
  readonly errors: number;
  /** Replies whose cookie matched no pending request: late, duplicate or foreign. */
  readonly lateReplies: number;
  /** Datagrams that were not `cookie SP bencoded-dict`, or whose reply did not have the promised shape. */
  readonly malformedReplies: number;
}

/**
 * The `error-reason`s with which rtpengine refuses an SDP it cannot use (rtpengine 10.5's own
 * strings: they are its wire protocol): code RTPENGINE_SDP, which the SIP edge answers 488.
 */
const SDP_REASONS: ReadonlySet<string> = new Set(['Failed to parse SDP', 'Incomplete SDP specification', 'Error rewriting SDP']);

/** rtpengine answered `result: "error"` (or `load limit`). Branch on `code`, show `errorReason`. */
export class RtpengineError extends WhisperlineError {
  /** rtpengine's `error-reason`, verbatim (e.g. "Unknown call-id"). */
  readonly errorReason: string;
  /** The ng command that failed, e.g. "subscribe answer". */
  readonly command: string;

  constructor(command: string, errorReason: string, options: { retryable?: boolean } = {}) {
    super(SDP_REASONS.has(errorReason) ? 'RTPENGINE_SDP' : 'RTPENGINE_ERROR', `rtpengine ${command} failed: ${errorReason}`, options);
    this.command = command;
    this.errorReason = errorReason;
  }
}

/** No reply within the timeout, retransmissions included. Retryable: the cookie made it safe. */
export class RtpengineTimeoutError extends WhisperlineError {
  readonly command: string;
  readonly timeoutMs: number;

  constructor(command: string, timeoutMs: number) {
    super('RTPENGINE_TIMEOUT', `rtpengine ${command}: no reply within ${timeoutMs} ms`, { retryable: true });
    this.command = command;
    this.timeoutMs = timeoutMs;
  }
}

interface Pending {
  readonly cookie: string;
  readonly command: string;
  readonly message: Buffer;
  readonly resolve: (reply: BencodeDict) => void;
  readonly reject: (error: Error) => void;
  readonly timers: NodeJS.Timeout[];
}

type MutableCounters = { -readonly [K in keyof RtpengineClientCounters]: RtpengineClientCounters[K] };

const noopLogger: RtpengineLogger = { debug() {}, warn() {} };

export class RtpengineClient {
  private readonly host: string;
  private readonly port: number;
  private readonly timeoutMs: number;
  private readonly retransmits: number;
  private readonly logger: RtpengineLogger;
  private readonly socket: dgram.Socket;
  /** Resolves once the socket is connected to rtpengine's address (sends wait for it). */
  private readonly connected: Promise<void>;
  private readonly pending = new Map<string, Pending>();
  /** Random per instance: cookies must not repeat across restarts (rtpengine caches replies per cookie). */
  private readonly cookiePrefix = randomBytes(6).toString('hex');
  private sequence = 0;
  private closing: Promise<void> | undefined;
  private readonly stats: MutableCounters = {
    sent: 0,
    retransmits: 0,
    timeouts: 0,
    errors: 0,
    lateReplies: 0,
    malformedReplies: 0,
  };

  constructor(options: RtpengineClientOptions) {
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65_535) {
      throw new RangeError(`rtpengine ng port must be 1-65535, got ${options.port}`);
    }
    this.host = options.host;
    this.port = options.port;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.retransmits = options.retransmits ?? 2;
    this.logger = options.logger ?? noopLogger;
    this.socket = dgram.createSocket(isIPv6(options.host) ? 'udp6' : 'udp4');
    this.socket.on('message', (datagram) => this.onDatagram(datagram));
    this.socket.on('error', (error) => this.onSocketError(error));
    // Connected to rtpengine's address: the kernel then delivers replies from there only, so a
    // datagram from anywhere else that carries a pending cookie cannot answer a request. (An
    // unconnected socket bound to 0.0.0.0 took replies from any host that could guess a cookie.)
    this.connected = new Promise<void>((resolve) => {
      this.socket.connect(this.port, this.host, () => resolve());
      // A host that does not resolve fails here (an 'error' event, as before).
    });
    this.socket.unref();
  }

  /** Requests sent and not yet answered, timed out or rejected. */
  get pendingCount(): number {
    return this.pending.size;
  }

  get counters(): RtpengineClientCounters {
    return { ...this.stats };
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  ping(options?: RtpengineRequestOptions): Promise<NgPongReply> {
    return this.send('ping', {}, options).then((reply) => {
      if (reply.result !== 'pong') throw this.malformed('ping', 'result is not "pong"');
      return { result: 'pong' };
    });
  }

  offer(request: NgOfferRequest, options?: RtpengineRequestOptions): Promise<NgOfferReply> {
    return this.sendOk('offer', request, options, requireSdp);
  }

  answer(request: NgAnswerRequest, options?: RtpengineRequestOptions): Promise<NgAnswerReply> {
    return this.sendOk('answer', request, options, requireSdp);
  }

  delete(request: NgDeleteRequest, options?: RtpengineRequestOptions): Promise<NgDeleteReply> {
    return this.sendOk('delete', request, options, (reply) => reply);
  }

  query(request: NgQueryRequest, options?: RtpengineRequestOptions): Promise<NgQueryReply> {
    return this.sendOk('query', request, options, (reply) => {
      if (typeof reply.created !== 'number') return 'no "created" timestamp';
      if (!isBencodeDict(reply.tags)) return '"tags" is not a dictionary';
      return reply;
    });
  }

  list(request: NgListRequest = {}, options?: RtpengineRequestOptions): Promise<NgListReply> {
    return this.sendOk('list', request, options, (reply) =>
      isStringList(reply.calls) ? reply : '"calls" is not a list of strings',
    );
  }

  subscribeRequest(request: NgSubscribeRequestRequest, options?: RtpengineRequestOptions): Promise<NgSubscribeRequestReply> {
    return this.sendOk('subscribe request', request, options, (reply) => {
      if (typeof reply.sdp !== 'string') return 'no "sdp"';
      if (typeof reply['to-tag'] !== 'string') return 'no "to-tag"';
      if (!isStringList(reply['from-tags'])) return '"from-tags" is not a list of strings';
      return reply;
    });
  }

  subscribeAnswer(request: NgSubscribeAnswerRequest, options?: RtpengineRequestOptions): Promise<NgOkReply> {
    return this.sendOk('subscribe answer', request, options, (reply) => reply);
  }

  unsubscribe(request: NgUnsubscribeRequest, options?: RtpengineRequestOptions): Promise<NgOkReply> {
    return this.sendOk('unsubscribe', request, options, (reply) => reply);
  }

  playMedia(request: NgPlayMediaRequest, options?: RtpengineRequestOptions): Promise<NgPlayMediaReply> {
    return this.sendOk('play media', request, options, (reply) =>
      reply.duration === undefined || typeof reply.duration === 'number' ? reply : '"duration" is not an integer',
    );
  }

  stopMedia(request: NgStopMediaRequest, options?: RtpengineRequestOptions): Promise<NgStopMediaReply> {
    return this.sendOk('stop media', request, options, (reply) => reply);
  }

  blockMedia(request: NgBlockMediaRequest, options?: RtpengineRequestOptions): Promise<NgOkReply> {
    return this.sendOk('block media', request, options, (reply) => reply);
  }

  unblockMedia(request: NgUnblockMediaRequest, options?: RtpengineRequestOptions): Promise<NgOkReply> {
    return this.sendOk('unblock media', request, options, (reply) => reply);
  }

  statistics(options?: RtpengineRequestOptions): Promise<NgStatisticsReply> {
    return this.sendOk('statistics', {}, options, (reply) =>
      isBencodeDict(reply.statistics) ? reply : '"statistics" is not a dictionary',
    );
  }

  /** Any ng command, untyped (e.g. `play DTMF`, `silence media`). Rejects on `result: "error"`. */
  command(command: string, params: NgParams, options?: RtpengineRequestOptions): Promise<NgDictReply> {
    return this.sendOk(command, params, options, (reply) => reply);
  }

  /** Rejects everything pending with 'RTPENGINE_CLOSED' and closes the socket. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown(new WhisperlineError('RTPENGINE_CLOSED', 'rtpengine client closed'));
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Sends a command whose success reply is `result: "ok"`, then checks the reply's shape:
   * `check` returns the reply typed, or a description of what is wrong with it.
   */
  private async sendOk<R>(
    command: string,
    request: object,
    options: RtpengineRequestOptions | undefined,
    check: (reply: BencodeDict) => BencodeDict | string,
  ): Promise<R> {
    const reply = await this.send(command, request, options);
    if (reply.result !== 'ok') throw this.malformed(command, `result is ${JSON.stringify(reply.result)}, not "ok"`);
    const checked = check(reply);
    if (typeof checked === 'string') throw this.malformed(command, checked);
    // The shape promised by R was checked above as far as the gateway relies on it.
    return checked as unknown as R;
  }

  /** Resolves with the reply dict unless it is an error reply. */
  private send(command: string, request: object, options: RtpengineRequestOptions | undefined): Promise<BencodeDict> {
    if (this.closing) {
      return Promise.reject(new WhisperlineError('RTPENGINE_CLOSED', `rtpengine client closed; ${command} not sent`));
    }
    const cookie = `${this.cookiePrefix}_${++this.sequence}`;
    let message: Buffer;
    try {
      // Request types are closed interfaces; the encoder validates every value at runtime.
      const body = encodeBencode({ ...(request as NgParams), command });
      message = Buffer.concat([Buffer.from(`${cookie} `, 'latin1'), body]);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new WhisperlineError('RTPENGINE_PROTOCOL', String(error)));
    }
    if (message.length > MAX_NG_DATAGRAM_BYTES) {
      return Promise.reject(
        new WhisperlineError(
          'RTPENGINE_PROTOCOL',
          `rtpengine ${command}: message of ${message.length} bytes exceeds the UDP limit of ${MAX_NG_DATAGRAM_BYTES}`,
        ),
      );
    }

    const timeoutMs = options?.timeoutMs ?? this.timeoutMs;
    return new Promise<BencodeDict>((resolve, reject) => {
      const pending: Pending = { cookie, command, message, resolve, reject, timers: [] };
      if (this.pending.size === 0) this.socket.ref();
      this.pending.set(cookie, pending);
      this.stats.sent++;
      this.transmit(pending, false);
      for (let i = 1; i <= this.retransmits; i++) {
        pending.timers.push(
          setTimeout(() => {
            this.stats.retransmits++;
            this.logger.debug({ command, cookie, attempt: i + 1 }, 'rtpengine ng retransmit');
            this.transmit(pending, true);
          }, (timeoutMs * i) / (this.retransmits + 1)),
        );
      }
      pending.timers.push(
        setTimeout(() => {
          if (!this.settle(cookie)) return;
          this.stats.timeouts++;
          this.logger.warn({ command, cookie, timeoutMs }, 'rtpengine ng request timed out');
          reject(new RtpengineTimeoutError(command, timeoutMs));
        }, timeoutMs),
      );
    });
  }

  private transmit(pending: Pending, retransmission: boolean): void {
    void this.connected.then(() => {
      if (this.pending.get(pending.cookie) !== pending) return; // settled while connecting
      this.sendConnected(pending, retransmission);
    });
  }

  private sendConnected(pending: Pending, retransmission: boolean): void {
    this.socket.send(pending.message, (error) => {
      if (!error) return;
      if (retransmission) {
        // The first copy went out; a failed resend only costs this attempt.
        this.logger.debug({ command: pending.command, cookie: pending.cookie, err: error }, 'rtpengine ng resend failed');
        return;
      }
      if (!this.settle(pending.cookie)) return;
      pending.reject(
        new WhisperlineError('RTPENGINE_UNREACHABLE', `rtpengine ${pending.command}: send failed: ${error.message}`, {
          retryable: true,
          cause: error,
        }),
      );
    });
  }

  /** Removes a pending request and its timers; false when it was already settled. */
  private settle(cookie: string): boolean {
    const pending = this.pending.get(cookie);
    if (!pending) return false;
    for (const timer of pending.timers) clearTimeout(timer);
    this.pending.delete(cookie);
    if (this.pending.size === 0 && !this.closing) this.socket.unref();
    return true;
  }

  private onDatagram(datagram: Buffer): void {
    const space = datagram.indexOf(0x20);
    if (space <= 0) {
      this.stats.malformedReplies++;
      this.logger.debug({ bytes: datagram.length }, 'rtpengine ng datagram without cookie ignored');
      return;
    }
    const cookie = datagram.toString('latin1', 0, space);
    const pending = this.pending.get(cookie);
    if (!pending) {
      this.stats.lateReplies++;
      this.logger.debug({ cookie }, 'rtpengine ng reply without pending request ignored');
      return;
    }
    this.settle(cookie);
    let dict: BencodeDict;
    try {
      const reply = decodeBencode(datagram.subarray(space + 1));
      if (!isBencodeDict(reply) || typeof reply.result !== 'string') {
        throw new Error('reply is not a dictionary with a "result"');
      }
      dict = reply;
    } catch (error) {
      pending.reject(this.malformed(pending.command, error instanceof Error ? error.message : String(error)));
      return;
    }
    if (dict.result === 'error' || dict.result === 'load limit') {
      this.stats.errors++;
      const reason = dict.result === 'error' ? dict['error-reason'] : (dict.message ?? 'load limit');
      pending.reject(
        new RtpengineError(pending.command, typeof reason === 'string' ? reason : 'no error-reason given', {
          retryable: dict.result === 'load limit',
        }),
      );
      return;
    }
    if (typeof dict.warning === 'string') {
      this.logger.debug({ command: pending.command, warning: dict.warning }, 'rtpengine ng warning');
    }
    pending.resolve(dict);
  }

  private malformed(command: string, detail: string): WhisperlineError {
    this.stats.malformedReplies++;
    return new WhisperlineError('RTPENGINE_PROTOCOL', `rtpengine ${command}: malformed reply: ${detail}`);
  }

  private onSocketError(error: Error): void {
    // On a connected socket, an ICMP port unreachable (rtpengine not running, or restarting) is
    // reported as ECONNREFUSED: the request it belongs to times out or is retransmitted; the
    // client stays usable for when rtpengine is back.
    if ((error as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
      this.logger.debug({ err: error }, 'rtpengine ng port unreachable');
      return;
    }
    this.logger.warn({ err: error }, 'rtpengine ng socket failed');
    this.closing ??= this.shutdown(
      new WhisperlineError('RTPENGINE_CLOSED', `rtpengine ng socket failed: ${error.message}`, {
        retryable: true,
        cause: error,
      }),
    );
  }

  private shutdown(reason: WhisperlineError): Promise<void> {
    for (const pending of [...this.pending.values()]) {
      this.settle(pending.cookie);
      pending.reject(reason);
    }
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // already closed (e.g. after a socket error)
      }
    });
  }
}

function requireSdp(reply: BencodeDict): BencodeDict | string {
  return typeof reply.sdp === 'string' ? reply : 'no "sdp"';
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

