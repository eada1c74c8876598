import { createHash } from 'node:crypto';
import { TestHttpServer } from '../http-server.js';
import { TAG } from '../k0s-release.js';
import { simK0s } from './alpine-standins.js';

/** A k0s release on 127.0.0.1 whose arm64 binary is the simulator's k0s (it acts on the node's files). */
export async function simK0sRelease(): Promise<TestHttpServer> {
  const server = await new TestHttpServer().start();
  const name = `k0s-${TAG}-arm64`;
  const body = simK0s(TAG);
  server.routes.set(`/${TAG}/${name}`, { body });
  server.routes.set(`/${TAG}/sha256sums.txt`, { body: `${createHash('sha256').update(body).digest('hex')} *${name}\n` });
  return server;
}
