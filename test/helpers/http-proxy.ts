import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

/**
 * A real forward proxy on 127.0.0.1 (CONNECT tunnels, as squid and corporate proxies offer), that
 * records every tunnel it was asked for. It only tunnels to 127.0.0.1: tests never leave the host.
 */
export class TestHttpProxy {
  readonly tunnels: string[] = [];
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  url = '';

  async start(): Promise<this> {
    this.server = createServer((_req, res) => res.writeHead(405).end('CONNECT only'));
    this.server.on('connect', (req, client: Socket) => {
      const target = req.url ?? '';
      this.tunnels.push(target);
      this.sockets.add(client);
      const [host, port] = [target.replace(/:\d+$/, ''), Number(/:(\d+)$/.exec(target)?.[1])];
      if (host !== '127.0.0.1' || !port) {
        client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
        return;
      }
      const upstream = connect(port, host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(client);
        client.pipe(upstream);
      });
      this.sockets.add(upstream);
      const close = () => {
        upstream.destroy();
        client.destroy();
      };
      upstream.on('error', close).on('close', close);
      client.on('error', close).on('close', close);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }
}
