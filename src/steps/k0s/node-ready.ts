import { TaskFailedError } from '../../core/errors.js';
import { done, todo, type RunContext, type Task } from '../../run/task.js';
import { statusOf, type Kube } from '../../lib/kube/client.js';
import { describeConditions } from '../../lib/kube/verify.js';

export interface NodeReadyOptions {
  kube: Kube;
  /** How long to wait for Ready after the join. */
  seconds: number;
  /** Seconds between looks. */
  pollSeconds?: number;
}

/**
 * After the join: the node, found by the machine's hostname (k0s names the node after it), is
 * Ready in the cluster. k0s status only says the worker process runs; Ready means the kubelet
 * registered, the network is up and pods can be scheduled there.
 */
export function nodeReadyTask(o: NodeReadyOptions): Task {
  return {
    id: 'k0s-node-ready',
    title: 'Node Ready in the cluster',
    async check(ctx) {
      const name = await nodeName(ctx);
      const state = await nodeState(o.kube, name);
      return state.ready ? done(`node ${name} is Ready`) : todo(`node ${name} ${state.detail}: wait up to ${o.seconds}s for Ready`);
    },
    async apply(ctx) {
      const name = await nodeName(ctx);
      ctx.host(`wait up to ${o.seconds}s for node ${name} to be Ready (${o.kube.server})`);
      if (ctx.dryRun) return;
      const deadline = Date.now() + o.seconds * 1000;
      for (;;) {
        const state = await nodeState(o.kube, name);
        if (state.ready) return ctx.log(`node ${name} is Ready`);
        if (Date.now() >= deadline) throw new TaskFailedError(`node ${name} was not Ready within ${o.seconds}s: ${state.detail}; see \`kubectl describe node ${name}\`, or raise --ready-timeout`);
        ctx.log(`waiting for node ${name}: ${state.detail}`);
        await new Promise((r) => setTimeout(r, (o.pollSeconds ?? 2) * 1000));
      }
    },
  };
}

/** k0s registers the node under the lower-cased hostname. */
async function nodeName(ctx: RunContext): Promise<string> {
  return (await ctx.target.run(['hostname'], { readOnly: true })).stdout.trim().toLowerCase();
}

async function nodeState(kube: Kube, name: string): Promise<{ ready: boolean; detail: string }> {
  try {
    const node = await kube.core.readNode({ name });
    const conds = node.status?.conditions ?? [];
    return { ready: conds.some((c) => c.type === 'Ready' && c.status === 'True'), detail: `conditions: ${describeConditions(conds)}` };
  } catch (err) {
    if (statusOf(err) === 404) return { ready: false, detail: 'has not registered with the API server yet' };
    const e = err as { code?: unknown; cause?: { code?: string }; message?: string };
    const why = typeof e.code === 'number' ? `the API server answered ${e.code}` : `the API server ${kube.server} did not answer (${e.cause?.code ?? String(e.code ?? e.message)})`;
    return { ready: false, detail: `cannot be read: ${why}` };
  }
}
