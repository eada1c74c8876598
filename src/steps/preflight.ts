import { done, todo, type Task } from '../run/task.js';
import { failedRequired, workerReadiness } from '../lib/readiness.js';

/**
 * Refuse to go on when a k0s worker requirement fails; name each one and its fix.
 * `cgroupsAfterReboot`: while a reboot is pending, the cgroup items describe the old boot, so they wait.
 */
export function workerPreflight(cgroupsAfterReboot: () => boolean = () => false): Task {
  return {
    id: 'preflight',
    title: 'Kernel and cgroups fit for a k0s worker',
    async check(ctx) {
      const waiting = cgroupsAfterReboot();
      const items = workerReadiness(await ctx.target.facts()).filter((i) => !(waiting && i.id.startsWith('cgroup')));
      for (const w of items.filter((i) => i.status === 'warn')) ctx.log(`warning: ${w.title}: ${w.detail}${w.fix ? ` (${w.fix})` : ''}`);
      const failed = failedRequired(items);
      const pass = items.filter((i) => i.status === 'pass').length;
      const warn = items.filter((i) => i.status === 'warn').length;
      if (failed.length === 0) return done(`${pass} checks pass, ${warn} warnings${waiting ? '; cgroups are checked after the reboot' : ''}`);
      return todo(failed.map((i) => `${i.title}: ${i.detail}; fix: ${i.fix}`).join('; '));
    },
  };
}
