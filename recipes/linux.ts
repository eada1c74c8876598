import type { Recipe } from '../src/run/task.js';
import type { Target } from '../src/targets/target.js';
import { workerPreflight } from '../src/steps/preflight.js';
import { joinTasks, type Join } from '../src/steps/k0s/join.js';
import { PREPARED_ONLY, serviceNotes } from '../src/lib/k0s/notes.js';

/**
 * The seed's Ubuntu/amd64 worker: any systemd or OpenRC Linux already fit for k0s.
 *   1. check the kernel and cgroups (refuse with the fix when a requirement is missing)
 *   2. install k0s, write the token, install the worker service, start it (not with --prepare-only)
 */
export function linuxRecipe(target: Target, join?: Join): Recipe {
  return {
    name: 'linux',
    title: 'k0s worker on Linux',
    tasks: [workerPreflight(), ...(join ? joinTasks(join) : [])],
    notes: join ? serviceNotes(target) : [PREPARED_ONLY],
  };
}
