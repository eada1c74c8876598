import { done, todo, type Task } from '../core/task.js';
import { failedRequired, workerReadiness } from './readiness.js';

/** Refuse to go on when a k0s worker requirement fails; name each one and its fix. */
export function workerPreflight(): Task {
  return {
    id: 'preflight',
    title: 'Kernel and cgroups fit for a k0s worker',
    async check(ctx) {
      const items = workerReadiness(await ctx.target.facts());
      for (const w of items.filter((i) => i.status === 'warn')) ctx.log(`warning: ${w.title}: ${w.detail}${w.fix ? ` (${w.fix})` : ''}`);
      const failed = failedRequired(items);
      if (failed.length === 0) return done(`${items.filter((i) => i.status === 'pass').length} checks pass, ${items.filter((i) => i.status === 'warn').length} warnings`);
      return todo(failed.map((i) => `${i.title}: ${i.detail}; fix: ${i.fix}`).join('; '));
    },
  };
}
