import { linuxRecipe } from '../../recipes/linux.js';
import { executeRecipe } from './execute.js';
import { resolveArtifact } from '../steps/k0s/join.js';
import { joinOptionsFrom, readyTasks, targetFrom, type CommonFlags, type JoinFlags, type ReadyFlags } from './options.js';

export async function linuxCommand(flags: CommonFlags & JoinFlags & ReadyFlags): Promise<number> {
  const join = await joinOptionsFrom(flags, true, 'linux');
  const target = await targetFrom(flags);
  const ready = await readyTasks(flags, Boolean(join), target);
  if (!join) return executeRecipe(linuxRecipe(target), target, flags); // --prepare-only
  if (!flags.json && !flags.quiet) process.stderr.write(`pi-prep: joining ${join.token.server} as a worker (${target.label})\n`);
  const k0s = await resolveArtifact(join, target, flags.dryRun);
  const recipe = linuxRecipe(target, { opts: join, k0s });
  recipe.tasks.push(...ready);
  return executeRecipe(recipe, target, flags);
}
