import { TaskFailedError } from '../../core/errors.js';
import { done, todo, type RunContext, type Task } from '../../run/task.js';
import { isEnabled } from '../../targets/probes/kernel-config.js';
import { selectsKernel } from '../../lib/boot-config.js';
import { cmdlineProblems } from '../../lib/cmdline.js';
import { rebootOrStop } from '../reboot.js';
import { failedRequired, workerReadiness } from '../../lib/readiness.js';
import { readManifest } from '../../lib/kernel/manifest.js';
import type { KernelState } from './plan.js';
import { readText } from '../../targets/target.js';

/** Written when pi-prep stops for a reboot; a different boot id on the next run proves the reboot. */
export const REBOOT_MARK = '/var/lib/pi-prep/rpios-reboot';
const BOOT_ID = '/proc/sys/kernel/random/boot_id';
const ROLLBACK = 'roll back with `pi-prep rpios --rollback-kernel`';

/** What the next boot should bring that the running system does not have yet. */
async function waitingForBoot(ctx: RunContext, state: KernelState, cmdlinePath: string): Promise<string[]> {
  const f = await ctx.target.facts();
  const why: string[] = [];
  const m = await readManifest(ctx.target);
  const cfg = (await readText(ctx.target, `${m?.bootDir ?? f.bootDir}/config.txt`)) ?? '';
  if (m && selectsKernel(cfg, m.image) && f.kernelRelease !== m.release) why.push(`kernel ${m.release} (running ${f.kernelRelease})`);
  const cmdline = (await readText(ctx.target, cmdlinePath)) ?? '';
  if (cmdlineProblems(cmdline).length === 0 && f.cgroup.version !== undefined && !f.cgroup.controllers.includes('memory')) {
    why.push('the memory cgroup controller (cgroup_enable=memory)');
  }
  // In a dry run nothing was written: what this run would change waits for the boot too.
  if (why.length === 0) why.push(...state.changed);
  return why;
}

const bootId = async (ctx: RunContext) => (await readText(ctx.target, BOOT_ID))?.trim();

/**
 * Stop for the reboot that brings a new kernel or cmdline into effect (or reboot with --reboot).
 * A card mounted on a workstation has no boot id: it boots the changes when it is back in the Pi.
 */
export function rebootTask(state: KernelState, cmdlinePath: () => Promise<string>, reboot: boolean, then = 'verify and join'): Task {
  return {
    id: 'reboot',
    title: 'Rebooted into the new kernel and cmdline',
    async check(ctx) {
      const id = await bootId(ctx);
      if (id === undefined) return done('a root directory without a running system: the Pi boots these changes when it starts from it');
      const why = await waitingForBoot(ctx, state, await cmdlinePath());
      if (why.length === 0) return done('nothing waits for a reboot');
      const mark = (await readText(ctx.target, REBOOT_MARK))?.trim();
      if (state.changed.length === 0 && mark && mark !== id) return done('rebooted since the last run (boot id changed)');
      return todo(`the next boot brings ${why.join(', ')}`);
    },
    async apply(ctx) {
      await ctx.target.mkdir('/var/lib/pi-prep', 0o755);
      await ctx.target.writeFile(REBOOT_MARK, `${(await bootId(ctx)) ?? ''}\n`);
      await rebootOrStop(ctx, reboot, then);
    },
  };
}

/** After the reboot: the new kernel runs, the memory controller is on, CFS bandwidth is there. */
export function verifyTask(state: KernelState, cmdlinePath: () => Promise<string>): Task {
  const problems = async (ctx: RunContext): Promise<string[]> => {
    const f = await ctx.target.facts();
    const out: string[] = [];
    const m = await readManifest(ctx.target);
    const cfg = (await readText(ctx.target, `${m?.bootDir ?? f.bootDir}/config.txt`)) ?? '';
    if (m && selectsKernel(cfg, m.image) && f.kernelRelease !== m.release) {
      out.push(`running ${f.kernelRelease}, not ${m.release}: the firmware did not load ${m.image}; ${ROLLBACK}`);
    }
    if (!f.cgroup.controllers.includes('memory')) out.push(`no memory controller in /sys/fs/cgroup/cgroup.controllers: check cgroup_enable=memory in ${await cmdlinePath()}`);
    if (state.opts.mode !== 'skip' && f.kernelConfig && !isEnabled(f.kernelConfig.options, 'CFS_BANDWIDTH')) {
      out.push(`CONFIG_CFS_BANDWIDTH is not set in ${f.kernelConfig.source}: ${m ? ROLLBACK : 'run with --kernel rebuild'}`);
    }
    for (const i of failedRequired(workerReadiness(f))) if (!out.some((o) => o.includes('memory')) || i.id !== 'cgroup-controllers') out.push(`${i.title}: ${i.detail} (${i.fix})`);
    return out;
  };
  return {
    id: 'verify',
    title: 'After the reboot: kernel, cgroups and CFS bandwidth verified',
    async check(ctx) {
      if ((await bootId(ctx)) === undefined) return done('checked when the Pi boots (run `pi-prep check` there)');
      const why = await waitingForBoot(ctx, state, await cmdlinePath());
      if (why.length > 0) return todo(`after the reboot: uname -r, /sys/fs/cgroup/cgroup.controllers, CONFIG_CFS_BANDWIDTH`);
      const p = await problems(ctx);
      const f = await ctx.target.facts();
      return p.length === 0 ? done(`${f.kernelRelease}, memory controller on`) : todo(p.join('; '));
    },
    async apply(ctx) {
      // This run changed what the next boot brings: reached only when the walk goes past the stop
      // for the reboot (a dry run), and the run after the reboot verifies.
      if (state.changed.length > 0) return;
      throw new TaskFailedError(`after the reboot: ${(await problems(ctx)).join('; ')}`);
    },
  };
}
