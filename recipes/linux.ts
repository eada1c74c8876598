import type { Recipe } from '../src/core/task.js';
import type { Target } from '../src/targets/target.js';
import { workerPreflight } from '../src/steps/preflight.js';
import { joinTasks, type JoinOptions } from '../src/steps/k0s/join.js';
import type { K0sArtifact } from '../src/steps/k0s/release.js';
import { serviceNotes } from '../src/steps/k0s/notes.js';

/**
 * The seed's Ubuntu/amd64 worker: any systemd or OpenRC Linux already fit for k0s.
 *   1. check the kernel and cgroups (refuse with the fix when a requirement is missing)
 *   2. install k0s, write the token, install the worker service, start it
 */
export function linuxRecipe(target: Target, join: JoinOptions, k0s: K0sArtifact): Recipe {
  return {
    name: 'linux',
    title: 'k0s worker on Linux',
    tasks: [workerPreflight(), ...joinTasks(join, k0s)],
    notes: serviceNotes(target),
  };
}
