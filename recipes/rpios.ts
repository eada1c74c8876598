import { TaskFailedError } from '../src/core/errors.js';
import { done, todo, type Recipe, type Task } from '../src/run/task.js';
import type { Target } from '../src/targets/target.js';
import { kernelFlavour } from '../src/targets/probes/board.js';
import { cmdlineTask } from '../src/steps/cmdline.js';
import { kernelState, ownImage, type KernelOptions, type KernelState } from '../src/steps/kernel/plan.js';
import { kernelTasks } from '../src/steps/kernel/tasks.js';
import { rebootTask, verifyTask } from '../src/steps/kernel/reboot.js';
import { rollbackTasks } from '../src/steps/kernel/rollback.js';
import { joinTasks, type Join } from '../src/steps/k0s/join.js';
import { PREPARED_ONLY, serviceNotes } from '../src/lib/k0s/notes.js';

export interface RpiosOptions {
  kernel: KernelOptions;
  reboot: boolean;
  join?: Join;
  prepareOnly?: boolean;
}

/**
 * Raspberry Pi OS 64-bit worker, the seed's checklist:
 *   1. Raspberry Pi OS on arm64, a known board, the boot partition
 *   2. kernel: keep it when it has the k0s options; otherwise build one for the board and
 *      install it beside the stock kernel (kernel8-k0s.img, kernel= in config.txt)
 *   3. cgroup flags in cmdline.txt
 *   4. reboot, then verify what the reboot brought
 *   5. install k0s and join
 */
export function rpiosRecipe(target: Target, o: RpiosOptions): Recipe {
  const kernel = kernelState(target, o.kernel);
  // The preflight blocks the run without a boot dir; this never guesses one.
  const cmdlinePath = async () => {
    const f = await target.facts();
    if (!f.bootDir) throw new TaskFailedError(f.bootProblem ?? 'no cmdline.txt in /boot/firmware or /boot: mount the boot partition');
    return `${f.bootDir}/cmdline.txt`;
  };
  const cmdline = cmdlineTask(cmdlinePath);
  const tracked: Task = { ...cmdline, apply: async (ctx) => (await cmdline.apply!(ctx), void kernel.changed.push('cmdline.txt')) };
  return {
    name: 'rpios',
    title: 'k0s worker on Raspberry Pi OS 64-bit',
    tasks: [
      rpiosPreflight(kernel),
      ...kernelTasks(kernel),
      tracked,
      rebootTask(kernel, cmdlinePath, o.reboot, o.join ? 'verify and join' : 'verify'),
      verifyTask(kernel, cmdlinePath),
      ...(o.join ? joinTasks(o.join) : []),
    ],
    notes: [
      ...(o.join ? serviceNotes(target) : o.prepareOnly ? [PREPARED_ONLY] : ['No --join given: the node is prepared, not joined. Run again with --join @FILE to join.']),
    ],
  };
}

/** `pi-prep rpios --rollback-kernel`: the stock kernel and boot files back, byte for byte. */
export function rpiosRollbackRecipe(): Recipe {
  return {
    name: 'rpios --rollback-kernel',
    title: 'roll back the k0s kernel',
    tasks: rollbackTasks(),
    notes: ['Reboot afterwards to run the stock kernel again.'],
  };
}

const GiB = 1024 ** 3;

function rpiosPreflight(kernel: KernelState): Task {
  return {
    id: 'rpios-preflight',
    title: 'Raspberry Pi OS 64-bit on a supported Pi',
    async check(ctx) {
      const f = await ctx.target.facts();
      const bad: string[] = [];
      const os = f.os;
      if (!['raspbian', 'debian'].includes(os.id) && !os.idLike.includes('debian')) bad.push(`${os.prettyName} is not Raspberry Pi OS: use \`pi-prep linux\` (or \`pi-prep alpine\`)`);
      if (f.arch !== 'aarch64') bad.push(`userland is ${f.arch}, not aarch64: install Raspberry Pi OS 64-bit`);
      const flavour = kernelFlavour(f.board?.soc);
      if (!flavour) bad.push(f.board ? `${f.board.model} cannot run a 64-bit k0s worker: use a Pi 3, 4, 5 or Zero 2 W` : 'no Raspberry Pi found in /proc/device-tree/model or /proc/cpuinfo: use `pi-prep linux` on other machines');
      if (!f.bootDir) bad.push(f.bootProblem ?? 'no cmdline.txt in /boot/firmware or /boot: mount the boot partition');
      if (bad.length) return todo(bad.join('; '));
      const plan = await kernel.plan(ctx);
      if (plan.rebuild) {
        const free = await kernel.builder.on(ctx).freeBytes(plan.dir);
        if (free !== undefined && free < 6 * GiB) return todo(`a kernel build needs about 6 GiB in ${plan.dir}, ${(free / GiB).toFixed(1)} GiB free: free space or pass --kernel-workdir`);
      }
      return done(`${f.os.prettyName}, ${f.board!.model} (${f.board!.soc}): ${flavour!.defconfig}, ${ownImage(flavour!.image, kernel.opts.localVersion)}, boot partition ${f.bootDir}`);
    },
  };
}
