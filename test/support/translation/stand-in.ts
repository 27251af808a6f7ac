/**
 * The frame the translation STAND-IN servers share: a node:http server on 127.0.0.1, port 0,
 * recording every request, with the failure modes a real server shows (a slow reply that never
 * comes, a dropped connection). Each stand-in (chat.ts, libretranslate.ts, deepl.ts next to this
 * file) speaks its protocol as its documentation describes it; none is the real server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  /** The parsed JSON body (undefined when there was none or it was not JSON). */
  readonly body: unknown;
  readonly raw: string;
}

/** How the stand-in answers the next requests: as the protocol says, or failing in a way a server fails. */
export type StandInMode = 'ok' | 'slow' | 'drop';

export interface StandInReply {
  readonly status: number;
  readonly body: unknown;
}

export interface StandIn {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Requests whose client went away (aborted) before the stand-in answered. */
  readonly abandoned: RecordedRequest[];
  mode: StandInMode;
  /** Resolves once `n` requests have arrived (a test waits for the request to be in flight). */
  received(n: number): Promise<void>;
  close(): Promise<void>;
}

export type Handler = (request: RecordedRequest) => StandInReply;

export async function startStandIn(handler: Handler): Promise<StandIn> {
  const requests: RecordedRequest[] = [];
  const abandoned: RecordedRequest[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const state: { mode: StandInMode } = { mode: 'ok' };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = raw === '' ? undefined : (JSON.parse(raw) as unknown);
      } catch {
        body = undefined;
      }
      const recorded: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, raw };
      requests.push(recorded);
      for (const w of waiters.splice(0)) {
        if (requests.length >= w.n) w.resolve();
        else waiters.push(w);
      }
      if (state.mode === 'drop') {
        req.socket.destroy();
        return;
      }
      if (state.mode === 'slow') {
        // Never answers: the client has to give up (abort, time out).
        res.on('close', () => abandoned.push(recorded));
        return;
      }
      let reply: StandInReply;
      try {
        reply = handler(recorded);
      } catch (err) {
        // A bug in a stand-in answers 500 rather than crashing the test run.
        reply = { status: 500, body: { error: `stand-in failed: ${String(err)}` } };
      }
      const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    abandoned,
    get mode() {
      return state.mode;
    },
    set mode(mode: StandInMode) {
      state.mode = mode;
    },
    received: (n) =>
      new Promise<void>((resolve) => {
        if (requests.length >= n) resolve();
        else waiters.push({ n, resolve });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Closes every stand-in a test file started (call from afterAll). */
export class StandIns {
  private readonly started: StandIn[] = [];

  track<T extends StandIn>(standIn: T): T {
    this.started.push(standIn);
    return standIn;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.started.splice(0).map((s) => s.close()));
  }
}
