import { posix } from 'node:path';
import { CGROUP_FLAGS } from '../../lib/cmdline.js';
import { rebootOrStop } from '../reboot.js';
import { done, todo, type Task } from '../../run/task.js';
import type { DataPartitionState } from './data-partition.js';
import { readText } from '../../targets/target.js';

export interface RebootState {
  /** Set by the reboot task's check: the rest of this run describes the node after the reboot. */
  pending: boolean;
}

/**
 * The cmdline flags, cgroup v2 and the new partition take effect only after a reboot. Done when
 * the running kernel shows all three. Stops the run for the reboot (`reboot` runs only with
 * --reboot). A root directory is never rebooted (that would signal this machine's init): the user
 * boots the Pi from the card instead.
 */
export function rebootTask(data: DataPartitionState, state: RebootState, reboot = false): Task {
  return {
    id: 'reboot',
    title: 'Running kernel has the cgroup flags, cgroup v2 and the data partition (reboot)',
    async check(ctx) {
      const why: string[] = [];
      const cmdline = (await readText(ctx.target, '/proc/cmdline')) ?? '';
      const params = new Set(cmdline.trim().split(/\s+/));
      const missing = CGROUP_FLAGS.filter((f) => !params.has(f));
      if (missing.length) why.push(`booted without ${missing.join(' ')}`);
      const cg = (await ctx.target.facts()).cgroup;
      if (cg.version === 1) why.push('cgroup v1 is mounted');
      if (data.node) {
        const parts = (await readText(ctx.target, '/proc/partitions')) ?? '';
        const name = posix.basename(data.node);
        if (!parts.split('\n').some((l) => l.trim().split(/\s+/)[3] === name)) why.push(`the kernel does not know ${data.node} yet`);
      }
      state.pending = why.length > 0;
      return why.length ? todo(`reboot needed: ${why.join('; ')}`) : done('no reboot needed');
    },
    async apply(ctx) {
      await rebootOrStop(ctx, reboot, 'finish the join', 'reboot');
    },
  };
}

