import { WebSocket, type RawData } from 'ws';
import type { CallEndReason } from '../transcripts/events.js';
import type { Logger } from '../log.js';
import { IngestCall, type IngestCallOptions } from './call.js';
import { closeReason, CloseCode, ProtocolError, type AudioIngestDeps, type AudioIngestOptions, type IngestPlatform } from './common.js';

/** What a connection needs from the `AudioIngest` that accepted it. */
export interface ConnectionHost {
  readonly deps: AudioIngestDeps;
  readonly options: Required<AudioIngestOptions>;
  /** Counts one client that broke its protocol. */
  protocolError(platform: IngestPlatform): void;
}

/**
 * One accepted ingest WebSocket and (once its start message came) its call. Subclasses parse their
 * platform's messages in `handle` and throw `ProtocolError` on bad input; this class turns that into
 * an error message and a close code, and guarantees on every path (client close, bad input,
 * dead peer, shutdown, a bug) that the call ends exactly once, its finals out before `call.ended`,
 * and that `done` resolves once the socket is closed and the call has ended.
 */
export abstract class IngestConnection {
  protected call: IngestCall | undefined;
  protected log: Logger;
  /** Whether messages are still taken (false once the session is stopping, failed or closed). */
  private accepting = true;
  private socketClosed = false;
  private endReason: CallEndReason = 'hangup';
  private finishing: Promise<void> | undefined;
  private readonly startTimer: NodeJS.Timeout;
  private pingTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private alive = true;
  private resolveClosed!: () => void;
  /** Resolves once the socket is closed and the call (if any) has ended. */
  readonly done: Promise<void>;

  constructor(
    protected readonly ws: WebSocket,
    protected readonly host: ConnectionHost,
    readonly platform: IngestPlatform,
  ) {
    this.log = host.deps.logger.child({ ingest: platform });
    const closed = new Promise<void>((resolve) => (this.resolveClosed = resolve));
    this.done = closed.then(() => this.finish(this.endReason));
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('error', (err) => this.onError(err));
    ws.on('close', () => this.onClose());
    ws.on('pong', () => (this.alive = true));
    const { startTimeoutMs, pingIntervalMs } = host.options;
    this.startTimer = setTimeout(() => {
      if (this.call === undefined) this.fail(CloseCode.policy, `no start message within ${startTimeoutMs} ms`);
    }, startTimeoutMs);
    this.startTimer.unref();
    if (pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => this.heartbeat(), pingIntervalMs);
      this.pingTimer.unref();
    }
  }

  /** Parses one message; throws `ProtocolError` for bad input. */
  protected abstract handle(data: Buffer, isBinary: boolean): void;

  /** Creates the call (once the start message is valid). */
  protected startCall(options: IngestCallOptions): IngestCall {
    if (this.call) throw new ProtocolError(CloseCode.policy, 'the session has already started');
    const call = new IngestCall(this.host.deps, options);
    this.call = call;
    this.log = call.log.child({ ingest: this.platform });
    clearTimeout(this.startTimer);
    return call;
  }

  /** Sends a JSON text message if the socket is open and not backed up. */
  protected send(message: unknown): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (this.ws.bufferedAmount > this.host.options.maxBufferedBytes) return;
    this.ws.send(JSON.stringify(message));
  }

  /**
   * The client ended the session (`stop`): no more input; once every final is out the server
   * closes the socket (1000).
   */
  protected async stop(): Promise<void> {
    if (!this.accepting) return;
    this.accepting = false;
    await this.finish('hangup');
    this.closeSocket(CloseCode.normal, 'session ended');
  }

  /** The gateway shuts down: no more input, the last finals go out, then 1001. */
  async shutdown(): Promise<void> {
    if (this.accepting) {
      this.accepting = false;
      await this.finish('shutdown');
      this.closeSocket(CloseCode.goingAway, 'server shutting down');
    } else if (!this.socketClosed) {
      // Already stopping (stop or a failure); make sure the socket does not outlive the gateway.
      void this.finish(this.endReason).then(() => this.closeSocket(CloseCode.goingAway, 'server shutting down'));
    }
    await this.done;
  }

  /** Bad input: error message, close code, and the call ends with what it already had. */
  protected fail(code: CloseCode, message: string): void {
    if (!this.accepting) return;
    this.accepting = false;
    this.endReason = 'failed';
    this.host.protocolError(this.platform);
    this.log.info({ code, error: message }, 'ingest protocol error');
    this.send({ type: 'error', error: message });
    this.closeSocket(code, message);
    void this.finish('failed');
  }

  private onMessage(raw: RawData, isBinary: boolean): void {
    if (!this.accepting) return;
    const data = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
    try {
      this.handle(data, isBinary);
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.fail(err.code, err.message);
      } else {
        this.log.error({ err }, 'ingest message handling failed');
        this.fail(CloseCode.internal, 'internal error');
      }
    }
  }

  /** Errors `ws` found in the framing (too big, invalid UTF-8...): it closes the socket itself. */
  private onError(err: Error & { code?: string }): void {
    if (this.accepting) {
      this.accepting = false;
      this.endReason = 'failed';
      this.host.protocolError(this.platform);
      this.log.info({ err: { message: err.message, code: err.code } }, 'ingest WebSocket error');
    }
    void this.finish(this.endReason);
  }

  private onClose(): void {
    this.socketClosed = true;
    this.accepting = false;
    clearTimeout(this.startTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.killTimer);
    this.resolveClosed();
  }

  private heartbeat(): void {
    if (!this.alive) {
      this.log.info('ingest peer stopped answering pings');
      if (this.accepting) {
        this.accepting = false;
        this.endReason = 'failed';
      }
      this.ws.terminate();
      return;
    }
    this.alive = false;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.ping();
  }

  /** Starts the close handshake; a peer that does not finish it in time is cut off. */
  private closeSocket(code: CloseCode, message: string): void {
    if (this.socketClosed) return;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, closeReason(message));
    if (!this.killTimer) {
      this.killTimer = setTimeout(() => this.ws.terminate(), this.host.options.closeTimeoutMs);
      this.killTimer.unref();
    }
  }

  /** Ends the call once (first reason wins). */
  private finish(reason: CallEndReason): Promise<void> {
    return (this.finishing ??= (async () => {
      clearTimeout(this.startTimer);
      await this.call?.end(reason);
    })());
  }
}
