/**
 * Audio ingest: the gateway as the speech engine of other platforms. Three WebSocket endpoints
 * feed the same speech pipeline as SIP calls and publish on the same event hub, so supervisors,
 * the store and alerts see ingested calls like any other:
 * - `/v1/listen`: jambonz `listen` / FreeSWITCH mod_audio_fork (see listen.ts);
 * - `/v1/stt`: the jambonz custom speech-to-text vendor API (stt.ts);
 * - `/v1/twilio`: Twilio Media Streams (twilio.ts).
 *
 * Each is refused before the upgrade: 403 for a browser's Origin that is not allowed, 401 without
 * a configured API key (when any is set), 503 over `maxConnections` or a client's
 * `maxConnectionsPerClient`, or while shutting down. Each connection is one call
 * (`ingest-<platform>-...`) from `call.started` to `call.ended`.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { rejectUpgrade, type UpgradeHandler } from '../http/server.js';
import { DEFAULT_OPTIONS, matchedKey, type AudioIngestDeps, type AudioIngestOptions, type IngestPlatform } from './common.js';
import type { IngestConnection } from './connection.js';
import { LISTEN_SUBPROTOCOLS, ListenConnection } from './listen.js';
import { SttConnection } from './stt.js';
import { TwilioConnection } from './twilio.js';

export type { AudioIngestDeps, AudioIngestOptions, IngestPlatform } from './common.js';
export { CloseCode } from './common.js';

export const INGEST_PATHS = { listen: '/v1/listen', stt: '/v1/stt', twilio: '/v1/twilio' } as const satisfies Record<IngestPlatform, string>;
export type IngestPath = (typeof INGEST_PATHS)[IngestPlatform];

export interface AudioIngestStats {
  /** Connections open now (until the socket is closed and the call has ended). */
  readonly connections: number;
  /** Upgrades accepted since start. */
  readonly accepted: number;
  /** Upgrades refused (401 no or unknown key, 503 over the limit or shutting down). */
  readonly refused: number;
  /** Connections ended for bad input (error message + close code, or a framing error). */
  readonly protocolErrors: number;
  /** The same per endpoint. */
  readonly byPlatform: Readonly<Record<IngestPlatform, { readonly connections: number; readonly accepted: number; readonly protocolErrors: number }>>;
}

export class AudioIngest {
  readonly upgrades: Readonly<Record<IngestPath, UpgradeHandler>>;
  /** @internal read by connections */
  readonly options: Required<AudioIngestOptions>;
  private readonly servers: Record<IngestPlatform, WebSocketServer>;
  private readonly live = new Set<IngestConnection>();
  private accepted = 0;
  private refused = 0;
  private protocolErrors = 0;
  private readonly perPlatform: Record<IngestPlatform, { connections: number; accepted: number; protocolErrors: number }> = {
    listen: { connections: 0, accepted: 0, protocolErrors: 0 },
    stt: { connections: 0, accepted: 0, protocolErrors: 0 },
    twilio: { connections: 0, accepted: 0, protocolErrors: 0 },
  };
  private closing: Promise<void> | undefined;
  private refusing = false;
  /** Open connections per client (API key or address). */
  private readonly perClient = new Map<string, number>();

  constructor(readonly deps: AudioIngestDeps) {
    this.options = { ...DEFAULT_OPTIONS, ...definedOnly(deps.options ?? {}) };
    const server = (handleProtocols?: (offered: Set<string>) => string | false): WebSocketServer =>
      new WebSocketServer({
        noServer: true,
        clientTracking: false,
        maxPayload: this.options.maxPayloadBytes,
        perMessageDeflate: false,
        ...(handleProtocols ? { handleProtocols } : {}),
      });
    // Listen: the platform's subprotocol when offered (either name), else the first offered, else none.
    const listenProtocols = (offered: Set<string>): string | false =>
      LISTEN_SUBPROTOCOLS.find((p) => offered.has(p)) ?? offered.values().next().value ?? false;
    this.servers = { listen: server(listenProtocols), stt: server(), twilio: server() };
    this.upgrades = {
      [INGEST_PATHS.listen]: (req, socket, head, url) => this.upgrade('listen', req, socket, head, url),
      [INGEST_PATHS.stt]: (req, socket, head, url) => this.upgrade('stt', req, socket, head, url),
      [INGEST_PATHS.twilio]: (req, socket, head, url) => this.upgrade('twilio', req, socket, head, url),
    } as Record<IngestPath, UpgradeHandler>;
  }

  stats(): AudioIngestStats {
    return {
      connections: this.live.size,
      accepted: this.accepted,
      refused: this.refused,
      protocolErrors: this.protocolErrors,
      byPlatform: {
        listen: { ...this.perPlatform.listen },
        stt: { ...this.perPlatform.stt },
        twilio: { ...this.perPlatform.twilio },
      },
    };
  }

  /** @internal */
  protocolError(platform: IngestPlatform): void {
    this.protocolErrors++;
    this.perPlatform[platform].protocolErrors++;
  }

  /**
   * The gateway is draining: new connections are refused (503 with Retry-After, as SIP's new
   * INVITEs are), the open ones go on until close().
   */
  refuseNew(): void {
    this.refusing = true;
  }

  /**
   * Refuses new connections, ends every open one (its last finals sent, then close code 1001) and
   * resolves once every call has published `call.ended`. Call it before the speech engine closes.
   */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      await Promise.all([...this.live].map((c) => c.shutdown()));
      for (const wss of Object.values(this.servers)) wss.close();
    })());
  }

  private upgrade(platform: IngestPlatform, req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    const { config, logger } = this.deps;
    if (this.closing || this.refusing) {
      this.refused++;
      rejectUpgrade(socket, 503, 'the gateway is shutting down', { 'Retry-After': '30' });
      return;
    }
    // A browser always sends Origin; the platforms never do. Without this check any web page, opened
    // on any machine that can reach the gateway, could stream audio in (cross-site WebSocket).
    const origin = req.headers.origin;
    if (origin !== undefined && !config.allowedOrigins.includes(origin)) {
      this.refused++;
      logger.info({ ingest: platform, origin, remote: req.socket.remoteAddress }, 'ingest connection refused: web origin not allowed');
      rejectUpgrade(socket, 403, `origin ${origin} is not allowed (feeds.ingest.allowedOrigins)`);
      return;
    }
    const key = matchedKey(req, url, config.apiKeys);
    if (key === undefined) {
      this.refused++;
      logger.info({ ingest: platform, remote: req.socket.remoteAddress }, 'ingest connection refused: no valid API key');
      rejectUpgrade(socket, 401, 'missing or unknown API key', { 'WWW-Authenticate': 'Bearer realm="whisperline"' });
      return;
    }
    if (this.live.size >= config.maxConnections) {
      this.refused++;
      logger.warn({ ingest: platform, maxConnections: config.maxConnections }, 'ingest connection refused: at the connection limit');
      rejectUpgrade(socket, 503, 'too many ingest connections', { 'Retry-After': '5' });
      return;
    }
    // A client is its API key, or its address where no keys are configured.
    const client = key >= 0 ? `key:${key}` : `address:${req.socket.remoteAddress ?? '?'}`;
    const held = this.perClient.get(client) ?? 0;
    if (held >= config.maxConnectionsPerClient) {
      this.refused++;
      logger.warn({ ingest: platform, client: key >= 0 ? `API key #${key + 1}` : req.socket.remoteAddress, maxConnectionsPerClient: config.maxConnectionsPerClient }, 'ingest connection refused: the client is at its connection limit');
      rejectUpgrade(socket, 503, `this client already holds ${held} ingest connections (feeds.ingest.maxConnectionsPerClient)`, { 'Retry-After': '5' });
      return;
    }
    // ws completes the handshake synchronously (no verifyClient), so the limit checks above hold;
    // a malformed handshake is answered by ws itself (400) and never reaches the callback.
    this.servers[platform].handleUpgrade(req, socket, head, (ws) => this.accept(platform, ws, url, client));
  }

  private accept(platform: IngestPlatform, ws: WebSocket, url: URL, client: string): void {
    this.accepted++;
    const stats = this.perPlatform[platform];
    stats.accepted++;
    stats.connections++;
    const connection =
      platform === 'listen'
        ? new ListenConnection(ws, this, url)
        : platform === 'stt'
          ? new SttConnection(ws, this)
          : new TwilioConnection(ws, this);
    this.live.add(connection);
    this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
    const release = (): void => {
      this.live.delete(connection);
      stats.connections--;
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left > 0) this.perClient.set(client, left);
      else this.perClient.delete(client);
    };
    connection.done.then(release, release);
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
