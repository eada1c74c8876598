import type { Target } from '../../targets/target.js';

/** What a target cannot do, said in the plan rather than skipped silently. */
export function serviceNotes(target: Target): string[] {
  if (target.liveServices) return [];
  return [
    `${target.label} is a root directory: no init runs in it, so services cannot start now. \`k0s install worker\` enables k0sworker for the next boot; \`k0s start\` is run but starts nothing here, and pi-prep does not wait for the worker. Boot the machine to start it.`,
  ];
}

/** Said at the end of a --prepare-only run. */
export const PREPARED_ONLY = 'Prepared only (--prepare-only): k0s is not installed and the node has not joined. Run `k0sctl apply` (docs/fleet.md) or pi-prep again with --join.';
