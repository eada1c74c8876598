import { resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import { rpiosRecipe, rpiosRollbackRecipe } from '../../recipes/rpios.js';
import { executeRecipe } from './execute.js';
import { resolveArtifact } from '../steps/k0s/join.js';
import { DEFAULT_KERNEL_REPO, type KernelOptions } from '../steps/kernel/plan.js';
import { joinOptionsFrom, readyTasks, targetFrom, type CommonFlags, type JoinFlags, type ReadyFlags } from './options.js';

export interface RpiosFlags extends CommonFlags, JoinFlags, ReadyFlags {
  kernel?: string;
  kernelRepo?: string;
  kernelBranch?: string;
  kernelDefconfig?: string;
  kernelFragment?: string[];
  kernelWorkdir?: string;
  kernelJobs?: string;
  reboot?: boolean;
  rollbackKernel?: boolean;
  buildLocal?: boolean;
}

export async function rpiosCommand(flags: RpiosFlags): Promise<number> {
  const kernel = kernelOptions(flags);
  if (flags.rollbackKernel) {
    const target = await targetFrom(flags);
    return executeRecipe(rpiosRollbackRecipe(), target, flags);
  }
  const join = await joinOptionsFrom(flags, false, 'rpios');
  const target = await targetFrom(flags);
  if (join && !flags.json && !flags.quiet) process.stderr.write(`pi-prep: preparing a Raspberry Pi OS worker for ${join.token.server} (${target.label})\n`);
  const ready = await readyTasks(flags, Boolean(join), target);
  const k0s = join ? await resolveArtifact(join, target, flags.dryRun) : undefined;
  const recipe = rpiosRecipe(target, { kernel, reboot: Boolean(flags.reboot), join: join && k0s ? { opts: join, k0s } : undefined, prepareOnly: flags.prepareOnly });
  recipe.tasks.push(...ready);
  return executeRecipe(recipe, target, flags);
}

function kernelOptions(flags: RpiosFlags): KernelOptions {
  const mode = flags.kernel ?? 'auto';
  if (mode !== 'auto' && mode !== 'rebuild' && mode !== 'skip') throw new UsageError(`--kernel ${mode} is not one of auto, rebuild, skip`);
  if (flags.kernelBranch && !/^[A-Za-z0-9._\/-]+$/.test(flags.kernelBranch)) throw new UsageError(`--kernel-branch ${flags.kernelBranch} is not a branch name: use e.g. rpi-6.12.y`);
  if (flags.kernelDefconfig && !/^[A-Za-z0-9._-]+$/.test(flags.kernelDefconfig)) throw new UsageError(`--kernel-defconfig ${flags.kernelDefconfig} is not a make target: use e.g. bcm2711_defconfig`);
  if (flags.kernelRepo?.startsWith('-')) throw new UsageError(`--kernel-repo ${flags.kernelRepo} is not a URL or path: use e.g. https://github.com/raspberrypi/linux`);
  if (flags.buildLocal && [flags.host ?? []].flat().length === 0 && !flags.inventory) throw new UsageError('--build-local builds here for a Pi reached with --host: add --host, or drop --build-local');
  const jobs = flags.kernelJobs === undefined ? undefined : Number(flags.kernelJobs);
  if (jobs !== undefined && !(Number.isInteger(jobs) && jobs > 0)) throw new UsageError(`--kernel-jobs ${flags.kernelJobs} is not a positive whole number`);
  return {
    mode,
    repo: flags.kernelRepo ?? DEFAULT_KERNEL_REPO,
    branch: flags.kernelBranch,
    defconfig: flags.kernelDefconfig,
    fragments: (flags.kernelFragment ?? []).map((f) => resolve(f)),
    workdir: flags.kernelWorkdir ? resolve(flags.kernelWorkdir) : undefined,
    localVersion: '-k0s',
    jobs,
    buildLocal: Boolean(flags.buildLocal),
  };
}
