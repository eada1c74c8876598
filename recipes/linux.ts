import type { Recipe } from '../src/core/task.js';
import type { Target } from '../src/targets/target.js';
import { workerPreflight } from '../src/steps/preflight.js';
import { joinTasks, type JoinOptions } from '../src/steps/k0s/join.js';
import type { K0sArtifact } from '../src/steps/k0s/release.js';
import { PREPARED_ONLY, serviceNotes } from '../src/steps/k0s/notes.js';

/**
 * The seed's Ubuntu/amd64 worker: any systemd or OpenRC Linux already fit for k0s.
 *   1. check the kernel and cgroups (refuse with the fix when a requirement is missing)
 *   2. install k0s, write the token, install the worker service, start it (not with --prepare-only)
 */
export function linuxRecipe(target: Target, join?: { opts: JoinOptions; k0s: K0sArtifact }): Recipe {
  return {
    name: 'linux',
    title: 'k0s worker on Linux',
    tasks: [workerPreflight(), ...(join ? joinTasks(join.opts, join.k0s) : [])],
    notes: join ? serviceNotes(target) : [PREPARED_ONLY],
  };
}
