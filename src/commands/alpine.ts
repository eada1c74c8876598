import { alpineRecipe } from '../../recipes/alpine.js';
import { UsageError } from '../core/errors.js';
import { probeAlpine } from '../steps/alpine/layout.js';
import { resolveArtifact } from '../steps/k0s/join.js';
import { executeRecipe } from './execute.js';
import { joinOptionsFrom, targetFrom, type CommonFlags, type JoinFlags } from './options.js';

export interface AlpineFlags extends CommonFlags, JoinFlags {
  dataDevice?: string;
  reboot?: boolean;
}

export async function alpineCommand(flags: AlpineFlags): Promise<number> {
  if (flags.dataDevice !== undefined && !/^\/dev\/[A-Za-z0-9/_-]+$/.test(flags.dataDevice)) {
    throw new UsageError(`--data-device ${flags.dataDevice} is not a device path: give a whole disk such as /dev/sda`);
  }
  const join = (await joinOptionsFrom(flags, true, 'alpine'))!;
  const target = await targetFrom(flags);
  const layout = await probeAlpine(target);
  if (!flags.json && !flags.quiet) process.stderr.write(`pi-prep: preparing Alpine to join ${join.token.server} as a worker (${target.label})\n`);
  const k0s = await resolveArtifact(join, target, flags.dryRun);
  return executeRecipe(alpineRecipe(target, layout, join, k0s, { dataDevice: flags.dataDevice, reboot: flags.reboot }), target, flags);
}
