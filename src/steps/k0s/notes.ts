import type { Target } from '../../targets/target.js';

/** What a target cannot do, said in the plan rather than skipped silently. */
export function serviceNotes(target: Target): string[] {
  if (target.liveServices) return [];
  return [
    `${target.label} is a root directory: services cannot run in it. \`k0s install worker\` enables k0sworker for the next boot; \`k0s start\` is run (in a chroot systemctl ignores it) and pi-prep does not wait for the worker to come up. Boot the machine to start it.`,
  ];
}
