import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';

/** What `/health` reports; each part of the gateway contributes its own fields. */
export type HealthReport = Record<string, unknown> & { readonly status: 'ok' | 'degraded' };

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly health: () => HealthReport | Promise<HealthReport>;
  readonly logger: Logger;
}

/**
 * The gateway's HTTP endpoint. For now `/health` (200 when every part is up, 503 when one is
 * degraded, e.g. drachtio-server disconnected); the feeds add their routes here.
 */
export class GatewayHttpServer {
  private constructor(private readonly server: Server) {}

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
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `no route for ${req.method} ${path}` }));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new GatewayHttpServer(server);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
