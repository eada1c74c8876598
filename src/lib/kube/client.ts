import { readFile } from 'node:fs/promises';
import type * as K8s from '@kubernetes/client-node';
import { TaskFailedError, UsageError } from '../../core/errors.js';

/** The API groups pi-prep uses, from one kubeconfig. */
export interface Kube {
  server: string;
  core: K8s.CoreV1Api;
  apps: K8s.AppsV1Api;
  batch: K8s.BatchV1Api;
}

/**
 * Load a kubeconfig (the file `pi-prep kubeconfig -o` writes, or any admin one). The client
 * library is imported here, not at startup: it is large and only verify and --kubeconfig need it.
 */
export async function kubeFrom(file: string, flag = '--kubeconfig'): Promise<Kube> {
  try {
    await readFile(file);
  } catch {
    throw new UsageError(`${flag} ${file}: cannot read it: give the file \`pi-prep kubeconfig -o FILE\` wrote`);
  }
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (err) {
    throw new UsageError(`${flag} ${file} is not a kubeconfig (${(err as Error).message.split('\n')[0]}): give the file \`pi-prep kubeconfig -o FILE\` wrote`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) throw new UsageError(`${flag} ${file} names no cluster server in its current context: check current-context`);
  return { server: cluster.server, core: kc.makeApiClient(k8s.CoreV1Api), apps: kc.makeApiClient(k8s.AppsV1Api), batch: kc.makeApiClient(k8s.BatchV1Api) };
}

/** Run one API call; a failure becomes one line naming what was being done and what the server said. */
export async function api<T>(kube: Kube, doing: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw new TaskFailedError(`${doing}: ${describe(kube, err)}`);
  }
}

/** HTTP status of an API error, if the server answered. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

function describe(kube: Kube, err: unknown): string {
  const status = statusOf(err);
  if (status !== undefined) {
    let message = '';
    try {
      const body = (err as { body?: unknown }).body;
      message = (typeof body === 'string' ? (JSON.parse(body) as { message?: string }) : (body as { message?: string }))?.message ?? '';
    } catch {
      message = '';
    }
    return `the API server answered ${status}${message ? ` (${message})` : ''}`;
  }
  const e = err as { code?: string; cause?: { code?: string }; message?: string };
  const code = e.code ?? e.cause?.code;
  return `the API server ${kube.server} did not answer (${code ?? (e.message ?? String(err)).split('\n')[0]}): is the controller up and the kubeconfig's address reachable from here?`;
}
