import { linuxRecipe } from '../../recipes/linux.js';
import { executeRecipe } from './execute.js';
import { resolveArtifact } from '../steps/k0s/join.js';
import { joinOptionsFrom, targetFrom, type CommonFlags, type JoinFlags } from './options.js';

export async function linuxCommand(flags: CommonFlags & JoinFlags): Promise<number> {
  const join = await joinOptionsFrom(flags, true, 'linux');
  const target = await targetFrom(flags);
  if (!join) return executeRecipe(linuxRecipe(target), target, flags); // --prepare-only
  if (!flags.json) process.stderr.write(`pi-prep: joining ${join.token.server} as a worker (${target.label})\n`);
  const k0s = await resolveArtifact(join, target, flags.dryRun);
  return executeRecipe(linuxRecipe(target, { opts: join, k0s }), target, flags);
}
