import { alpineRecipe } from '../../recipes/alpine.js';
import { UsageError } from '../core/errors.js';
import { probeAlpine } from '../lib/alpine/layout.js';
import { resolveArtifact } from '../steps/k0s/join.js';
import { executeRecipe } from './execute.js';
import { joinOptionsFrom, readyTasks, targetFrom, type CommonFlags, type JoinFlags, type ReadyFlags } from './options.js';

export interface AlpineFlags extends CommonFlags, JoinFlags, ReadyFlags {
  dataDevice?: string;
  reboot?: boolean;
}

export async function alpineCommand(flags: AlpineFlags): Promise<number> {
  if (flags.dataDevice !== undefined && !/^\/dev\/[A-Za-z0-9/_-]+$/.test(flags.dataDevice)) {
    throw new UsageError(`--data-device ${flags.dataDevice} is not a device path: give a whole disk such as /dev/sda`);
  }
  const join = await joinOptionsFrom(flags, true, 'alpine');
  const target = await targetFrom(flags);
  const ready = await readyTasks(flags, Boolean(join), target);
  const layout = await probeAlpine(target);
  if (join && !flags.json && !flags.quiet) process.stderr.write(`pi-prep: preparing Alpine to join ${join.token.server} as a worker (${target.label})\n`);
  const k0s = join ? await resolveArtifact(join, target, flags.dryRun) : undefined;
  const recipe = alpineRecipe(target, layout, join && k0s ? { opts: join, k0s } : undefined, { dataDevice: flags.dataDevice, reboot: flags.reboot });
  recipe.tasks.push(...ready);
  return executeRecipe(recipe, target, flags);
}
