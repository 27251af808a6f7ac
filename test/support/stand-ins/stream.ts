/**
 * The common part of the TTS stand-in servers: a node:http server on 127.0.0.1 (port 0) that
 * records every request and sends a reply body in pieces, with the knobs the tests turn (pieces
 * of odd sizes, a pause between them, a reply held before its first byte or after its first
 * piece until the test releases it, a connection dropped mid-body). What each request saw on the
 * server's side (all bytes written, or the connection closed early) is what tests assert instead
 * of timings.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  /** Bytes per piece of the body (default 4800). */
  readonly pieceBytes?: number;
  /** Pause between pieces, ms (default 10): the body is spread out as a real server's is. */
  readonly pauseMs?: number;
  /** Nothing (not even the headers) is sent until this settles: a slow first byte. */
  readonly holdFirstByte?: Promise<void>;
  /** After the first piece, the rest waits for this: proves the client reads as the body streams. */
  readonly holdAfterFirstPiece?: Promise<void>;
  /** The connection is destroyed after this many pieces: a reply cut mid-body. */
  readonly dropAfterPieces?: number;
}

export interface RecordedRequest {
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: unknown;
  /** The body bytes the server wrote (of the whole reply it meant to send). */
  readonly sent: Buffer[];
  /** The whole body was written. */
  sentAll: boolean;
  /** The client went away before the reply was complete (abort, break, timeout). */
  closedEarly: boolean;
  /** Settles when the exchange is over, whichever way. */
  readonly over: Promise<void>;
}

export interface StandInServer {
  readonly url: string;
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

export type Handler = (request: RecordedRequest, res: ServerResponse) => Promise<void>;

export async function startStandIn(handler: Handler): Promise<StandInServer> {
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        body = undefined;
      }
      let over!: () => void;
      const record: RecordedRequest = { url: req.url ?? '', headers: req.headers, body, sent: [], sentAll: false, closedEarly: false, over: new Promise((r) => (over = r)) };
      requests.push(record);
      res.on('close', () => {
        if (!res.writableFinished) record.closedEarly = true;
        over();
      });
      handler(record, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A JSON reply with `status`. */
export function replyJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Sends `body` (chunked, no Content-Length, as a streaming server does) the way `delivery` says. */
export async function deliver(record: RecordedRequest, res: ServerResponse, contentType: string, body: Buffer, delivery: Delivery = {}): Promise<void> {
  if (delivery.holdFirstByte) await delivery.holdFirstByte;
  if (res.destroyed) return;
  res.writeHead(200, { 'content-type': contentType });
  const size = delivery.pieceBytes ?? 4800;
  let pieces = 0;
  for (let at = 0; at < body.length; at += size) {
    if (res.destroyed) return;
    if (delivery.dropAfterPieces !== undefined && pieces === delivery.dropAfterPieces) {
      res.socket?.destroy();
      return;
    }
    const piece = body.subarray(at, Math.min(body.length, at + size));
    await new Promise<void>((resolve) => res.write(piece, () => resolve()));
    record.sent.push(Buffer.from(piece));
    pieces++;
    if (pieces === 1 && delivery.holdAfterFirstPiece) await delivery.holdAfterFirstPiece;
    await new Promise((r) => setTimeout(r, delivery.pauseMs ?? 10));
  }
  if (res.destroyed) return;
  record.sentAll = true;
  res.end();
}
