import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A node of the fake cluster. */
export interface FakeNode {
  name: string;
  arch: string;
  /** Default true. */
  ready?: boolean;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
  unschedulable?: boolean;
  /** 'none': the DaemonSet controller places no pod there; 'pending': a pod that never runs. */
  pod?: 'running' | 'none' | 'pending';
  /** Default true: its whoami pod answers HTTP (a real server on the pod's 127.x address). */
  reachable?: boolean;
  /** What answers on the pod's IP says its name is (default: the pod's own name). */
  answersAs?: string;
}

const TOKEN = 'fake-admin-token';

/**
 * An HTTPS server on 127.0.0.1 answering the Kubernetes API paths `pi-prep verify` uses, with
 * bodies shaped like a real cluster's (Node, Namespace, DaemonSet, Pod, Job, pod log). No
 * scheduler runs: a DaemonSet gets one pod per node at once, as configured per node. Each
 * running whoami pod gets an address in 127.0.0.0/8 with a real HTTP server on port 80 that
 * answers as whoami does; the probe Job's script is run for real (busybox sh and wget on this
 * machine) against those addresses, and its output is the Job pod's log.
 */
export class FakeKubeApi {
  readonly requests: string[] = [];
  readonly namespaces = new Set<string>();
  readonly deleted: string[] = [];
  /** Called for each request before it is answered (hold the run, change the world). */
  onRequest?: (method: string, path: string) => void | Promise<void>;
  url = '';
  kubeconfig = '';
  private server?: Server;
  private sockets = new Set<Socket>();
  private readonly dir = mkdtempSync(join(tmpdir(), 'pi-prep-kube-'));
  private pods: Record<string, unknown>[] = [];
  private whoami: HttpServer[] = [];
  private job?: { name: string; command: string[]; log?: string };
  private readonly net = `127.${10 + Math.floor(Math.random() * 200)}.${Math.floor(Math.random() * 250)}`;

  constructor(readonly nodes: FakeNode[]) {}

  async start(): Promise<this> {
    const key = join(this.dir, 'key.pem');
    const cert = join(this.dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=kube-apiserver', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    this.server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        void this.answer(req.method ?? 'GET', req.url ?? '/', req.headers.authorization, body).then(([status, payload, type]) => {
          res.writeHead(status, { 'content-type': type ?? 'application/json' });
          res.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
        });
      });
    });
    this.server.on('connection', (s: Socket) => (this.sockets.add(s), s.on('close', () => this.sockets.delete(s))));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.kubeconfig = join(this.dir, 'admin.conf');
    writeFileSync(this.kubeconfig, [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: k0s',
      '  cluster:',
      `    server: ${this.url}`,
      `    certificate-authority-data: ${readFileSync(cert).toString('base64')}`,
      'contexts:',
      '- name: k0s',
      '  context: { cluster: k0s, user: admin }',
      'current-context: k0s',
      'users:',
      '- name: admin',
      `  user: { token: ${TOKEN} }`,
      '',
    ].join('\n'), { mode: 0o600 });
    return this;
  }

  /** The API goes away: listening stops and open connections are cut. */
  async goAway(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    const closed = new Promise((r) => s.close(r));
    for (const sock of this.sockets) sock.destroy();
    await closed;
  }

  async stop(): Promise<void> {
    await this.goAway();
    await Promise.all(this.whoami.map((w) => new Promise((r) => w.close(r))));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async answer(method: string, url: string, auth: string | undefined, body: string): Promise<[number, unknown, string?]> {
    const [path, query = ''] = url.split('?');
    this.requests.push(`${method} ${path}`);
    await this.onRequest?.(method, path!);
    if (auth !== `Bearer ${TOKEN}`) return [401, status(401, 'Unauthorized')];
    const selector = new URLSearchParams(query).get('labelSelector') ?? '';
    let m: RegExpExecArray | null;
    if (method === 'GET' && path === '/api/v1/nodes') return [200, list('NodeList', 'v1', this.nodes.map(node))];
    if (method === 'GET' && (m = /^\/api\/v1\/nodes\/([^/]+)$/.exec(path!))) {
      const n = this.nodes.find((x) => x.name === m![1]);
      return n ? [200, node(n)] : [404, status(404, `nodes "${m[1]}" not found`)];
    }
    if (method === 'POST' && path === '/api/v1/namespaces') {
      const ns = JSON.parse(body) as { metadata: { name: string } };
      this.namespaces.add(ns.metadata.name);
      return [201, { kind: 'Namespace', apiVersion: 'v1', ...ns, status: { phase: 'Active' } }];
    }
    if (method === 'DELETE' && (m = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path!))) {
      this.deleted.push(m[1]!);
      this.namespaces.delete(m[1]!);
      // Everything in it goes: the pods (and their whoami servers), the Job.
      await Promise.all(this.whoami.splice(0).map((w) => new Promise((r) => w.close(r))));
      this.pods = [];
      this.job = undefined;
      return [200, { kind: 'Namespace', apiVersion: 'v1', metadata: { name: m[1] }, status: { phase: 'Terminating' } }];
    }
    if (method === 'POST' && (m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/daemonsets$/.exec(path!))) {
      const ds = JSON.parse(body) as { metadata: { name: string }; spec: { template: { spec: { containers: { image: string }[] } } } };
      await this.placePods(m[1]!, ds.metadata.name);
      return [201, { kind: 'DaemonSet', apiVersion: 'apps/v1', ...ds, metadata: { ...ds.metadata, namespace: m[1], generation: 1 } }];
    }
    if (method === 'GET' && (m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/daemonsets\/([^/]+)$/.exec(path!))) {
      const want = this.nodes.filter((n) => (n.pod ?? 'running') !== 'none').length;
      const ready = this.pods.filter((p) => (p.status as { phase: string }).phase === 'Running').length;
      return [200, {
        kind: 'DaemonSet', apiVersion: 'apps/v1', metadata: { name: m[2], namespace: m[1], generation: 1 },
        spec: {}, status: { observedGeneration: 1, desiredNumberScheduled: want, currentNumberScheduled: want, numberReady: ready, numberAvailable: ready, numberMisscheduled: 0 },
      }];
    }
    if (method === 'GET' && (m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path!))) {
      if (selector.startsWith('job-name=')) return [200, list('PodList', 'v1', this.job ? [jobPod(m[1]!, this.job.name)] : [])];
      return [200, list('PodList', 'v1', this.pods)];
    }
    if (method === 'POST' && (m = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs$/.exec(path!))) {
      const job = JSON.parse(body) as { metadata: { name: string }; spec: { template: { spec: { containers: { command: string[] }[] } } } };
      this.job = { name: job.metadata.name, command: job.spec.template.spec.containers[0]!.command };
      return [201, { kind: 'Job', apiVersion: 'batch/v1', ...job }];
    }
    if (method === 'GET' && (m = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs\/([^/]+)$/.exec(path!))) {
      // The Job's pod runs to completion on first look: its script, for real, on this machine.
      if (this.job && this.job.log === undefined) this.job.log = await this.runProbe(this.job.command);
      return [200, { kind: 'Job', apiVersion: 'batch/v1', metadata: { name: m[2], namespace: m[1] }, status: { succeeded: 1, active: 0 } }];
    }
    if (method === 'GET' && /\/pods\/[^/]+\/log$/.test(path!)) return [200, this.job?.log ?? '', 'text/plain'];
    return [404, status(404, `the server could not find the requested resource (${method} ${path})`)];
  }

  /** One pod per node as configured; a running, reachable one gets a real whoami on its IP. */
  private async placePods(namespace: string, ds: string): Promise<void> {
    let i = 1;
    for (const n of this.nodes) {
      const mode = n.pod ?? 'running';
      if (mode === 'none') continue;
      const name = `${ds}-${n.name.replace(/[^a-z0-9]/g, '').slice(0, 5)}${i}`;
      const ip = `${this.net}.${++i}`;
      if (mode === 'running' && n.reachable !== false) this.whoami.push(await whoamiServer(ip, n.answersAs ?? name));
      this.pods.push({
        kind: 'Pod', apiVersion: 'v1',
        metadata: { name, namespace, labels: { app: ds } },
        spec: { nodeName: n.name, containers: [{ name: 'whoami', image: 'traefik/whoami:v1.10' }] },
        status: mode === 'running'
          ? { phase: 'Running', podIP: ip, containerStatuses: [{ name: 'whoami', ready: true, restartCount: 0, image: 'traefik/whoami:v1.10', imageID: '', state: { running: {} } }] }
          : { phase: 'Pending', containerStatuses: [{ name: 'whoami', ready: false, restartCount: 0, image: 'traefik/whoami:v1.10', imageID: '', state: { waiting: { reason: 'ErrImagePull', message: 'no match for platform in manifest' } } }] },
      });
    }
  }

  /** Async: the whoami servers it fetches from answer from this same event loop. */
  private async runProbe(command: string[]): Promise<string> {
    const [sh, ...args] = command;
    if (sh !== 'sh') throw new Error(`the probe Job runs ${sh}, not sh`);
    const { stdout } = await promisify(execFile)('/bin/busybox', ['sh', ...args], { encoding: 'utf8', env: { PATH: this.busyboxPath() } });
    return stdout;
  }

  /** A PATH whose tools are busybox applets only, as in the busybox image. */
  private busyboxPath(): string {
    const bin = join(this.dir, 'bin');
    try {
      execFileSync('/bin/busybox', ['mkdir', '-p', bin]);
      for (const tool of ['sh', 'wget', 'sed', 'head', 'echo', 'timeout']) execFileSync('ln', ['-sf', '/bin/busybox', join(bin, tool)]);
    } catch {
      // already there
    }
    return bin;
  }
}

function node(n: FakeNode): Record<string, unknown> {
  const ready = n.ready ?? true;
  return {
    kind: 'Node', apiVersion: 'v1',
    metadata: { name: n.name, labels: { 'kubernetes.io/arch': n.arch, 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': n.name } },
    spec: n.unschedulable ? { unschedulable: true } : {},
    status: {
      nodeInfo: { architecture: n.arch, operatingSystem: 'linux', kubeletVersion: 'v1.34.1+k0s', containerRuntimeVersion: 'containerd://1.7.28', kernelVersion: '6.6.51-v8+', osImage: 'Debian GNU/Linux 12 (bookworm)', bootID: '', machineID: '', systemUUID: '', kubeProxyVersion: '' },
      conditions: n.conditions ?? [
        { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory' },
        { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure' },
        { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID' },
        ready
          ? { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }
          : { type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'container runtime network not ready: NetworkReady=false' },
      ],
    },
  };
}

function jobPod(namespace: string, job: string): Record<string, unknown> {
  return { kind: 'Pod', apiVersion: 'v1', metadata: { name: `${job}-x7k2p`, namespace, labels: { 'job-name': job } }, spec: { containers: [{ name: 'probe' }] }, status: { phase: 'Succeeded' } };
}

function list(kind: string, apiVersion: string, items: unknown[]): Record<string, unknown> {
  return { kind, apiVersion, metadata: { resourceVersion: '1' }, items };
}

function status(code: number, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, code };
}

/** What traefik/whoami answers on GET /: Hostname first, then IPs and the request. */
async function whoamiServer(ip: string, hostname: string): Promise<HttpServer> {
  const s = createHttpServer((req, res) => {
    res.end(`Hostname: ${hostname}\nIP: 127.0.0.1\nIP: ${ip}\nRemoteAddr: ${req.socket.remoteAddress}:${req.socket.remotePort}\nGET ${req.url} HTTP/1.1\nHost: ${req.headers.host}\n`);
  });
  await new Promise<void>((r, j) => (s.once('error', j), s.listen(80, ip, r)));
  return s;
}
