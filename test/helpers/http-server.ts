import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Route {
  body: Buffer | string;
  /** Send fewer bytes than Content-Length says, then close. */
  truncateTo?: number;
  status?: number;
  /** No Content-Length; send `body` over and over until the client goes away. */
  endless?: boolean;
  /** Send this many bytes of `body` (Content-Length says all of it), then nothing, never closing. */
  stallAfter?: number;
  /** Answer only once this settles: the test holds the client at this request. */
  gate?: Promise<void>;
}

/** A real HTTP server on 127.0.0.1 that records every path it was asked for. */
export class TestHttpServer {
  readonly routes = new Map<string, Route>();
  readonly requests: string[] = [];
  private server?: Server;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
      this.requests.push(path);
      const route = this.routes.get(path);
      if (!route) {
        res.writeHead(404).end('not found');
        return;
      }
      if (route.gate) {
        const { gate, ...rest } = route;
        void gate.then(() => this.answer(res, rest));
        return;
      }
      this.answer(res, route);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  private answer(res: ServerResponse, route: Route): void {
    const body = Buffer.from(route.body);
    if (route.endless) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const more = () => {
        while (!res.destroyed && res.write(body));
        if (!res.destroyed) res.once('drain', more);
      };
      more();
      return;
    }
    res.writeHead(route.status ?? 200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    if (route.truncateTo !== undefined) {
      res.write(body.subarray(0, route.truncateTo), () => res.destroy());
      return;
    }
    if (route.stallAfter !== undefined) {
      res.write(body.subarray(0, route.stallAfter));
      return;
    }
    res.end(body);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }
}
