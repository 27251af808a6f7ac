import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WhisperlineError } from '../errors.js';
import type { Logger } from '../log.js';
import { EXPORT_FORMATS, type ExportFormat } from '../transcripts/export.js';

/** What `/health` reports; each part of the gateway contributes its own fields. */
export type HealthReport = Record<string, unknown> & { readonly status: 'ok' | 'degraded' };

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly health: () => HealthReport | Promise<HealthReport>;
  /** Prometheus exposition for `GET /metrics`. */
  readonly metrics?: () => Promise<{ readonly contentType: string; readonly body: string }>;
  /** A stored call as a document (throws NOT_FOUND for an unknown call). */
  readonly exportCall?: (callId: string, format: ExportFormat) => string;
  readonly logger: Logger;
}

const CONTENT_TYPES: Readonly<Record<ExportFormat, string>> = {
  json: 'application/json',
  vtt: 'text/vtt; charset=utf-8',
  srt: 'application/x-subrip; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
};

/**
 * The gateway's HTTP endpoint: `/health` (200 when every part is up, 503 when one is degraded,
 * e.g. drachtio-server disconnected) and `GET /v1/calls/:id/export?format=json|vtt|srt|txt`
 * from the transcript store; the feeds add their routes here.
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
      if (req.method === 'GET' && path === '/metrics' && options.metrics) {
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
      const exported = /^\/v1\/calls\/([^/]+)\/export$/.exec(path ?? '');
      if (req.method === 'GET' && exported && options.exportCall) {
        const format = (new URL(req.url ?? '/', 'http://gateway').searchParams.get('format') ?? 'txt') as ExportFormat;
        if (!EXPORT_FORMATS.includes(format)) {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: `format must be one of ${EXPORT_FORMATS.join(', ')}` }));
          return;
        }
        try {
          const body = options.exportCall(decodeURIComponent(exported[1]!), format);
          res.writeHead(200, { 'content-type': CONTENT_TYPES[format] });
          res.end(body);
        } catch (err) {
          const notFound = err instanceof WhisperlineError && err.code === 'NOT_FOUND';
          if (!notFound) options.logger.error({ err }, 'export failed');
          res.writeHead(notFound ? 404 : 500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: notFound ? err.message : 'export failed' }));
        }
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
