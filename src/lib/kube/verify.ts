import { randomBytes } from 'node:crypto';
import type * as K8s from '@kubernetes/client-node';
import { api, type Kube } from './client.js';

const APP = 'pi-prep-whoami';
const PROBE = 'pi-prep-probe';
const MANAGED = { 'app.kubernetes.io/managed-by': 'pi-prep' };

export interface VerifyOptions {
  image: string;
  probeImage: string;
  timeoutSeconds: number;
  /** Seconds between polls. */
  pollSeconds: number;
  progress: (line: string) => void;
}

export interface NodeRow {
  node: string;
  arch: string;
  ready: boolean;
  /** Why no pod is expected there (cordoned, tainted, not Ready). */
  noPodExpected?: string;
  /** The node's conditions that are not as they should be, e.g. `Ready=False (KubeletNotReady)`. */
  conditions: string;
  pod?: string;
  ip?: string;
  phase?: string;
  reachable: 'yes' | 'no' | 'no pod' | 'not expected' | 'not tested' | 'wrong answer';
  answer?: string;
}

export interface VerifyReport {
  ok: boolean;
  namespace: string;
  image: string;
  nodes: NodeRow[];
  problems: string[];
}

/** The namespace a run works in; everything it creates lives there, so removing it removes all. */
export function newNamespace(): string {
  return `pi-prep-verify-${randomBytes(3).toString('hex')}`;
}

/**
 * The seed's closing check: every node listed with its architecture and Ready state; a DaemonSet
 * of a multi-arch image gets a Running pod on each schedulable worker; a Job's pod fetches
 * every such pod by IP and prints what answered (its log is the answer, no exec needed).
 * The caller removes the namespace afterwards (removeNamespace), on failure and signals too.
 */
export async function verifyCluster(kube: Kube, namespace: string, o: VerifyOptions): Promise<VerifyReport> {
  const problems: string[] = [];
  const nodes = (await api(kube, 'listing nodes', () => kube.core.listNode())).items.map(nodeRow);
  if (nodes.length === 0) problems.push('the cluster has no nodes');
  for (const n of nodes) if (!n.ready) problems.push(`node ${n.node} is not Ready: ${n.conditions}`);

  o.progress(`creating namespace ${namespace} with DaemonSet ${APP} (${o.image})`);
  await api(kube, `creating namespace ${namespace}`, () => kube.core.createNamespace({ body: { metadata: { name: namespace, labels: MANAGED } } }));
  await api(kube, `creating DaemonSet ${APP}`, () => kube.apps.createNamespacedDaemonSet({ namespace, body: daemonSet(o.image) }));

  const pods = await waitDaemonSet(kube, namespace, o, problems);
  for (const n of nodes) {
    const pod = pods.find((p) => p.spec?.nodeName === n.node);
    if (pod) {
      n.pod = pod.metadata?.name;
      n.ip = pod.status?.podIP;
      n.phase = pod.status?.phase;
      n.reachable = running(pod) ? 'not tested' : 'no';
      if (!running(pod)) problems.push(`pod ${n.pod} on ${n.node} is ${n.phase ?? 'not running'}${waitingReason(pod)}`);
    } else {
      n.reachable = n.noPodExpected ? 'not expected' : 'no pod';
      if (!n.noPodExpected) problems.push(`node ${n.node} (${n.arch}) got no ${APP} pod within ${o.timeoutSeconds}s`);
    }
  }

  const targets = nodes.filter((n) => n.reachable === 'not tested' && n.ip);
  if (targets.length) {
    o.progress(`probing ${targets.length} whoami pod${targets.length === 1 ? '' : 's'} from a Job (${o.probeImage})`);
    const answers = await probe(kube, namespace, targets.map((n) => n.ip!), o, problems);
    for (const n of targets) {
      const a = answers.get(n.ip!);
      if (!a) continue;
      n.answer = a.hostname;
      n.reachable = !a.ok ? 'no' : a.hostname === n.pod ? 'yes' : 'wrong answer';
      if (n.reachable === 'no') problems.push(`pod ${n.pod} on ${n.node} (${n.ip}) did not answer the probe`);
      if (n.reachable === 'wrong answer') problems.push(`${n.ip} answered as ${a.hostname || 'nothing'}, not as ${n.pod}`);
    }
  }
  return { ok: problems.length === 0, namespace, image: o.image, nodes, problems };
}

/** Delete the namespace (and with it the DaemonSet, the Job and their pods). */
export async function removeNamespace(kube: Kube, namespace: string): Promise<void> {
  await api(kube, `removing namespace ${namespace} (remove it with \`kubectl delete namespace ${namespace}\`)`, () =>
    kube.core.deleteNamespace({ name: namespace, propagationPolicy: 'Background' }),
  );
}

function nodeRow(n: K8s.V1Node): NodeRow {
  const conds = n.status?.conditions ?? [];
  const ready = conds.find((c) => c.type === 'Ready')?.status === 'True';
  const taint = (n.spec?.taints ?? []).find((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
  return {
    node: n.metadata?.name ?? '?',
    arch: n.metadata?.labels?.['kubernetes.io/arch'] ?? n.status?.nodeInfo?.architecture ?? '?',
    ready,
    conditions: describeConditions(conds),
    ...(n.spec?.unschedulable ? { noPodExpected: 'cordoned' } : taint ? { noPodExpected: `taint ${taint.key}:${taint.effect}` } : !ready ? { noPodExpected: 'not Ready' } : {}),
    reachable: 'not tested',
  };
}

/** `Ready=True` when all is well; otherwise every condition that is off, with its reason. */
export function describeConditions(conds: K8s.V1NodeCondition[]): string {
  const off = conds.filter((c) => (c.type === 'Ready' ? c.status !== 'True' : c.status !== 'False'));
  if (off.length === 0) return conds.length ? 'Ready=True' : 'no conditions reported yet';
  return off.map((c) => `${c.type}=${c.status}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : ''}`).join(', ');
}

function daemonSet(image: string): K8s.V1DaemonSet {
  const labels = { app: APP, ...MANAGED };
  return {
    metadata: { name: APP, labels },
    spec: {
      selector: { matchLabels: { app: APP } },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: 'whoami', image, ports: [{ containerPort: 80 }] }], terminationGracePeriodSeconds: 1 },
      },
    },
  };
}

const running = (p: K8s.V1Pod) => p.status?.phase === 'Running' && Boolean(p.status.podIP);
const waitingReason = (p: K8s.V1Pod) => {
  const w = p.status?.containerStatuses?.find((c) => c.state?.waiting)?.state?.waiting;
  return w?.reason ? ` (${w.reason}${w.message ? `: ${w.message}` : ''})` : '';
};

/** Until the DaemonSet has every pod it wants Running (or the time is up): its pods. */
async function waitDaemonSet(kube: Kube, namespace: string, o: VerifyOptions, problems: string[]): Promise<K8s.V1Pod[]> {
  const deadline = Date.now() + o.timeoutSeconds * 1000;
  for (;;) {
    const ds = await api(kube, `reading DaemonSet ${APP}`, () => kube.apps.readNamespacedDaemonSet({ name: APP, namespace }));
    const pods = (await api(kube, `listing ${APP} pods`, () => kube.core.listNamespacedPod({ namespace, labelSelector: `app=${APP}` }))).items;
    const want = ds.status?.desiredNumberScheduled;
    const observed = (ds.status?.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 1);
    if (observed && want !== undefined && pods.filter(running).length >= want) return pods;
    if (Date.now() >= deadline) {
      problems.push(`DaemonSet ${APP}: ${pods.filter(running).length} of ${want ?? '?'} pods running after ${o.timeoutSeconds}s`);
      return pods;
    }
    await sleep(o.pollSeconds);
  }
}

/** The probe: for each IP, `IP ok HOSTNAME` (whoami's `Hostname:` line) or `IP fail`. */
export const PROBE_SCRIPT = [
  'for ip in "$@"; do',
  '  case "$ip" in *:*) url="http://[$ip]/" ;; *) url="http://$ip/" ;; esac',
  // timeout, not wget -T: busybox 1.35's wget -T returns nothing even when the server answers.
  '  if out=$(timeout 10 wget -q -O - "$url" 2>/dev/null); then',
  '    echo "$ip ok $(echo "$out" | sed -n "s/^Hostname: *//p" | head -n 1)"',
  '  else',
  '    echo "$ip fail"',
  '  fi',
  'done',
].join('\n');

async function probe(kube: Kube, namespace: string, ips: string[], o: VerifyOptions, problems: string[]): Promise<Map<string, { ok: boolean; hostname: string }>> {
  const job: K8s.V1Job = {
    metadata: { name: PROBE, labels: MANAGED },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: o.timeoutSeconds,
      ttlSecondsAfterFinished: 600, // a safety net should the namespace outlive the run
      template: {
        metadata: { labels: { app: PROBE, ...MANAGED } },
        spec: {
          restartPolicy: 'Never',
          // The IPs are arguments, never part of the script.
          containers: [{ name: 'probe', image: o.probeImage, command: ['sh', '-c', PROBE_SCRIPT, 'probe', ...ips] }],
        },
      },
    },
  };
  await api(kube, `creating Job ${PROBE}`, () => kube.batch.createNamespacedJob({ namespace, body: job }));
  const deadline = Date.now() + o.timeoutSeconds * 1000;
  for (;;) {
    const j = await api(kube, `reading Job ${PROBE}`, () => kube.batch.readNamespacedJob({ name: PROBE, namespace }));
    if ((j.status?.succeeded ?? 0) > 0 || (j.status?.failed ?? 0) > 0) break;
    if (Date.now() >= deadline) {
      problems.push(`Job ${PROBE} did not finish within ${o.timeoutSeconds}s`);
      return new Map();
    }
    await sleep(o.pollSeconds);
  }
  const pods = (await api(kube, `listing ${PROBE} pods`, () => kube.core.listNamespacedPod({ namespace, labelSelector: `job-name=${PROBE}` }))).items;
  const pod = pods[0]?.metadata?.name;
  if (!pod) {
    problems.push(`Job ${PROBE} finished without a pod to read`);
    return new Map();
  }
  const log = await api(kube, `reading the log of ${pod}`, () => kube.core.readNamespacedPodLog({ name: pod, namespace }));
  return parseProbeLog(String(log));
}

export function parseProbeLog(log: string): Map<string, { ok: boolean; hostname: string }> {
  const out = new Map<string, { ok: boolean; hostname: string }>();
  for (const line of log.split('\n')) {
    const m = /^(\S+) (ok|fail)(?: (\S*))?\s*$/.exec(line.trim());
    if (m) out.set(m[1]!, { ok: m[2] === 'ok', hostname: m[3] ?? '' });
  }
  return out;
}

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));
