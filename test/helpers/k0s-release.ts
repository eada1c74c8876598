import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { k0sStandIn } from './k0s-standin.js';
import { TestHttpServer } from './http-server.js';
import { encodeJoinToken } from '../../src/lib/k0s/token.js';

export const TAG = 'v1.34.1+k0s.0';

/** A k0s "release" on a local HTTP server: the stand-in per arch, sha256sums.txt, stable.txt. */
export async function k0sReleaseServer(): Promise<{ server: TestHttpServer; assets: Record<string, string> }> {
  const server = await new TestHttpServer().start();
  const assets: Record<string, string> = {};
  const sums: string[] = [];
  for (const arch of ['amd64', 'arm64', 'arm']) {
    const body = k0sStandIn(TAG) + `# k0s stand-in for ${arch}\n`;
    const name = `k0s-${TAG}-${arch}`;
    assets[arch] = body;
    server.routes.set(`/${TAG}/${name}`, { body });
    sums.push(`${createHash('sha256').update(body).digest('hex')} *${name}`);
  }
  server.routes.set(`/${TAG}/sha256sums.txt`, { body: sums.join('\n') + '\n' });
  server.routes.set('/stable.txt', { body: `${TAG}\n` });
  return { server, assets };
}

export const sampleWorkerToken = () =>
  encodeJoinToken({ server: 'https://127.0.0.1:6443', user: 'kubelet-bootstrap', token: 'abcdef.0123456789abcdef' });
export const sampleControllerToken = () =>
  encodeJoinToken({ server: 'https://127.0.0.1:6443', user: 'controller-bootstrap', token: 'ghijkl.0123456789ghijkl' });

/** Kernel config with every option a k0s worker needs (optionally without some). */
export function kernelConfig(without: string[] = []): string {
  const opts = ['CGROUPS', 'CGROUP_SCHED', 'FAIR_GROUP_SCHED', 'CFS_BANDWIDTH', 'BLK_CGROUP', 'NAMESPACES', 'UTS_NS', 'IPC_NS',
    'PID_NS', 'NET_NS', 'NET', 'INET', 'NETFILTER', 'NETFILTER_ADVANCED', 'NF_CONNTRACK', 'NETFILTER_XTABLES',
    'NETFILTER_XT_TARGET_REDIRECT', 'NETFILTER_XT_MATCH_COMMENT', 'EXT4_FS', 'PROC_FS', 'MEMCG', 'CPUSETS'];
  return opts.map((o) => (without.includes(o) ? `# CONFIG_${o} is not set` : `CONFIG_${o}=y`)).join('\n') + '\n';
}

/** What every join test starts from: a k0s release on 127.0.0.1, a work directory, a worker token file (0600). */
export interface JoinWorkspace {
  server: TestHttpServer;
  work: string;
  tokenFile: string;
  stop(): Promise<void>;
}

export async function joinWorkspace(name: string): Promise<JoinWorkspace> {
  const { server } = await k0sReleaseServer();
  const work = mkdtempSync(join(tmpdir(), `pi-prep-${name}-`));
  const tokenFile = join(work, 'worker.token');
  writeFileSync(tokenFile, (await sampleWorkerToken()) + '\n', { mode: 0o600 });
  return {
    server, work, tokenFile,
    async stop() {
      await server.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
