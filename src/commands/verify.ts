import { onInterrupt, stoppedBy } from '../core/cleanup.js';
import { ExitCode, UsageError } from '../core/errors.js';
import { printJson } from '../core/json-output.js';
import { redact } from '../core/redact.js';
import { kubeFrom } from '../lib/kube/client.js';
import { newNamespace, removeNamespace, verifyCluster, type VerifyReport } from '../lib/kube/verify.js';

export interface VerifyFlags {
  kubeconfig: string;
  image: string;
  probeImage: string;
  timeout: string;
  poll?: string;
  json?: boolean;
}

/**
 * `pi-prep verify --kubeconfig FILE` (docs/verify.md): nodes, a whoami DaemonSet on every worker,
 * a Job that reaches each pod. Everything lives in one namespace made for the run, removed at the
 * end: after success, after a failure, and on Ctrl-C / SIGTERM.
 */
export async function verifyCommand(flags: VerifyFlags): Promise<number> {
  const timeoutSeconds = Number(flags.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) throw new UsageError(`--timeout ${flags.timeout} is not a number of seconds: use e.g. --timeout 300`);
  const pollSeconds = Number(flags.poll ?? 2);
  for (const [flag, image] of [['--image', flags.image], ['--probe-image', flags.probeImage]] as const) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._\/:@-]*$/.test(image)) throw new UsageError(`${flag} ${image} is not an image reference: use e.g. ${flag} traefik/whoami:v1.10`);
  }
  const kube = await kubeFrom(flags.kubeconfig);
  const say = (line: string) => flags.json || process.stderr.write(`pi-prep: ${line}\n`);
  const namespace = newNamespace();

  let cleanup: Promise<string | undefined> | undefined;
  const removeAll = () =>
    (cleanup ??= removeNamespace(kube, namespace).then(
      () => (say(`removed namespace ${namespace} and everything in it`), undefined),
      (err: Error) => err.message,
    ));
  // On Ctrl-C / SIGTERM / SIGHUP the signal handler of src/core/cleanup.ts runs this, then exits 130/143/129.
  const forget = onInterrupt(async () => {
    process.stderr.write(`pi-prep: ${stoppedBy() ?? 'stopped'}: removing namespace ${namespace}\n`);
    const failed = await removeAll();
    if (failed) process.stderr.write(`pi-prep: ${failed}\n`);
  });

  let report: VerifyReport | undefined;
  let error: unknown;
  try {
    report = await verifyCluster(kube, namespace, { image: flags.image, probeImage: flags.probeImage, timeoutSeconds, pollSeconds, progress: say });
  } catch (err) {
    error = err;
  }
  const cleanupFailed = await removeAll();
  forget();
  if (error) {
    // The run's own error first; a namespace left behind is said after it, on the same line.
    if (cleanupFailed && error instanceof Error) error.message += `; also ${cleanupFailed}`;
    throw error;
  }
  const r = report!;
  if (cleanupFailed) r.problems.push(cleanupFailed);
  const ok = r.ok && !cleanupFailed;
  if (flags.json) printJson('verify', ok, r);
  else process.stdout.write(redact(renderVerify(r, ok)));
  return ok ? ExitCode.ok : ExitCode.failed;
}

export function renderVerify(r: VerifyReport, ok: boolean): string {
  const head = ['NODE', 'ARCH', 'READY', 'POD', 'IP', 'REACHABLE'];
  const rows = r.nodes.map((n) => [
    n.node,
    n.arch,
    n.ready ? 'yes' : 'NO',
    n.pod ?? '-',
    n.ip ?? '-',
    n.reachable === 'not expected' ? `- (${n.noPodExpected})` : n.reachable,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const arches = [...new Set(r.nodes.filter((n) => n.reachable === 'yes').map((n) => n.arch))].sort();
  const reached = r.nodes.filter((n) => n.reachable === 'yes').length;
  return [
    line(head),
    ...rows.map(line),
    '',
    ...r.problems.map((p) => `problem: ${p}`),
    ok
      ? `Verified: ${r.nodes.length} node${r.nodes.length === 1 ? '' : 's'} Ready; ${reached} ${r.image} pod${reached === 1 ? '' : 's'} (${arches.join(', ')}) answered a test pod by IP.`
      : `Not verified: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}.`,
    '',
  ].join('\n');
}
