import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import { equalSecret } from './auth.js';

/**
 * What `/health` reports; each part of the gateway contributes its own fields. `draining` (a
 * shutdown under way: new calls are refused) answers 503 like `degraded`, so a load balancer
 * stops sending before the gateway goes.
 */
export type HealthReport = Record<string, unknown> & { readonly status: 'ok' | 'degraded' | 'draining' };

/** A route's handler; `params` are the path pattern's capture groups, URI-decoded. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL, params: readonly string[]) => void | Promise<void>;

export interface HttpRoute {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** An exact path, or a pattern anchored at both ends whose groups become `params`. */
  readonly path: string | RegExp;
  readonly handle: RouteHandler;
}

/**
 * Takes over a WebSocket upgrade request for one path. The handler authenticates before it
 * completes the upgrade, and answers a refusal itself (see `rejectUpgrade`).
 */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => void;

/** Whether the request carries `Authorization: Bearer <token>` (compared in constant time). */
function bearerIs(req: IncomingMessage, token: string): boolean {
  const [scheme, value] = (req.headers.authorization ?? '').split(/\s+/, 2);
  return scheme?.toLowerCase() === 'bearer' && value !== undefined && equalSecret(value, token);
}

/** Writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * Refuses a WebSocket upgrade with a plain HTTP response (before any WebSocket frame exists):
 * the client sees the status, e.g. 401 for a missing token, and the socket is closed.
 */
export function rejectUpgrade(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: message });
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly health: () => HealthReport | Promise<HealthReport>;
  /** Prometheus exposition for `GET /metrics`. */
  readonly metrics?: () => Promise<{ readonly contentType: string; readonly body: string }>;
  /** When set, `GET /metrics` needs `Authorization: Bearer <this>` (`http.metricsToken`); unset = open. */
  readonly metricsToken?: string | undefined;
  /** More routes (supervisor page, history API...), tried in order after the built-in ones. */
  readonly routes?: readonly HttpRoute[];
  /** WebSocket endpoints by exact path (`/v1/supervisor`, `/v1/listen`...). */
  readonly upgrades?: Readonly<Record<string, UpgradeHandler>>;
  readonly logger: Logger;
}


/**
 * The gateway's HTTP endpoint: `/health` (200 when every part is up, 503 when one is degraded,
 * e.g. drachtio-server disconnected) and `/metrics`; the feeds add their routes (page, history
 * API) and WebSocket endpoints (supervisor feed, ingest) through `routes` and `upgrades`.
 */
export class GatewayHttpServer {
  private constructor(
    private readonly server: Server,
    /**
     * Sockets handed to an upgrade handler: from then on they are the handler's (WebSocket), and
     * `server.close()` neither waits for nor closes them, so close() destroys the ones still open.
     */
    private readonly upgraded: Set<Duplex>,
  ) {}

  static async start(options: HttpServerOptions): Promise<GatewayHttpServer> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && path === '/health') {
        Promise.resolve(options.health()).then(
          (report) => {
            res.writeHead(report.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
            res.end(JSON.stringify(report));
          },
          (err: unknown) => {
            options.logger.error({ err }, 'health check failed');
            res.writeHead(500, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ status: 'error' }));
          },
        );
        return;
      }
      if (req.method === 'GET' && path === '/metrics' && options.metrics) {
        if (options.metricsToken !== undefined && !bearerIs(req, options.metricsToken)) {
          sendJson(res, 401, { error: 'GET /metrics needs Authorization: Bearer <http.metricsToken>' }, { 'www-authenticate': 'Bearer realm="metrics"' });
          return;
        }
        options.metrics().then(
          ({ contentType, body }) => {
            res.writeHead(200, { 'content-type': contentType });
            res.end(body);
          },
          (err: unknown) => {
            options.logger.error({ err }, 'metrics collection failed');
            res.writeHead(500).end();
          },
        );
        return;
      }
      if (routeRequest(options, req, res, path ?? '/')) return;
      sendJson(res, 404, { error: `no route for ${req.method} ${path}` });
    });
    const upgraded = new Set<Duplex>();
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      upgraded.add(socket);
      socket.once('close', () => upgraded.delete(socket));
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://gateway');
      } catch {
        rejectUpgrade(socket, 400, 'malformed request target');
        return;
      }
      const handler = options.upgrades?.[url.pathname];
      if (!handler) {
        rejectUpgrade(socket, 404, `no WebSocket endpoint at ${url.pathname}`);
        return;
      }
      try {
        handler(req, socket, head, url);
      } catch (err) {
        options.logger.error({ err, path: url.pathname }, 'WebSocket upgrade failed');
        rejectUpgrade(socket, 500, 'upgrade failed');
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new GatewayHttpServer(server, upgraded);
  }

  /** The server's own port (the configured one, or the one the OS chose for port 0). */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * Stops listening and ends every connection still open: requests in flight, keep-alive sockets
   * and upgraded (WebSocket) sockets whose feeds did not close them. The feeds close theirs first
   * (with 1001) in the gateway's shutdown order; this only destroys what is left.
   */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const socket of this.upgraded) socket.destroy();
    this.upgraded.clear();
    return closed;
  }
}

/** Runs the first matching extra route; false when none matches. */
function routeRequest(options: HttpServerOptions, req: IncomingMessage, res: ServerResponse, path: string): boolean {
  for (const route of options.routes ?? []) {
    if (route.method !== req.method) continue;
    let params: string[];
    if (typeof route.path === 'string') {
      if (route.path !== path) continue;
      params = [];
    } else {
      const m = route.path.exec(path);
      if (!m) continue;
      try {
        params = m.slice(1).map((p) => decodeURIComponent(p ?? ''));
      } catch {
        sendJson(res, 400, { error: 'malformed percent-encoding in the path' });
        return true;
      }
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://gateway');
    } catch {
      sendJson(res, 400, { error: 'malformed request target' });
      return true;
    }
    Promise.resolve()
      .then(() => route.handle(req, res, url, params))
      .catch((err: unknown) => {
        options.logger.error({ err, path }, 'HTTP route failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    return true;
  }
  return false;
}
