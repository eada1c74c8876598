import { posix } from 'node:path';
import { TaskFailedError } from '../../core/errors.js';
import { todo, type Task } from '../../run/task.js';
import { parseKernelConfig } from '../../targets/probes/kernel-config.js';
import { readText, type Target } from '../../targets/target.js';
import { droppedOptions, scriptsConfigArgs, type Fragment } from '../../lib/kernel/fragment.js';
import { depsFromKconfig, explainDropped } from '../../lib/kernel/kconfig-deps.js';
import { make } from './make.js';
import type { KernelState } from './plan.js';

export function configTask(state: KernelState): Task {
  const b = state.builder;
  return {
    id: 'kernel-config',
    title: 'Kernel configured (defconfig + kernel-configs/, olddefconfig, verified)',
    async check(ctx) {
      const p = await state.plan(ctx);
      return todo(`make ${p.defconfig}, merge ${state.fragment.files.length} fragment(s), olddefconfig`);
    },
    async apply(ctx) {
      const p = await state.plan(ctx);
      b.newLog(); // one log per rebuild: configure, build, install
      await b.run(ctx, make(state, p, p.defconfig), { log: p.log });
      await b.run(ctx, [posix.join(p.dir, 'scripts/config'), '--file', posix.join(p.dir, '.config'), ...scriptsConfigArgs(state.fragment, state.opts.localVersion)], { log: p.log });
      const olddefconfig = await b.run(ctx, make(state, p, 'olddefconfig'), { log: p.log });
      // Only a .config that olddefconfig really made can be checked.
      if (olddefconfig.planned) return;
      await verifyConfig(b.on(ctx), state.fragment, p.dir);
      ctx.log(`all ${state.fragment.options.size} fragment options survived olddefconfig`);
    },
  };
}

/** Every fragment option must survive olddefconfig; otherwise name it and the dependency that dropped it. */
export async function verifyConfig(tree: Target, fragment: Fragment, dir: string): Promise<void> {
  const merged = parseKernelConfig((await readText(tree, posix.join(dir, '.config'))) ?? '');
  const dropped = droppedOptions(fragment, merged);
  if (dropped.length === 0) return;
  const reasons: string[] = [];
  for (const sym of dropped) reasons.push(await explainDropped(sym, merged, async (s) => depsFromKconfig(s, await kconfigFiles(tree, dir, s))));
  throw new TaskFailedError(`olddefconfig dropped ${dropped.map((d) => `CONFIG_${d}`).join(', ')}: ${reasons.join('; ')}. Enable the dependency in a fragment (--kernel-fragment FILE) or choose another --kernel-defconfig`);
}

/** The Kconfig files defining a symbol, found with grep (other architectures' files left out). */
async function kconfigFiles(tree: Target, dir: string, sym: string): Promise<Map<string, string>> {
  const r = await tree.run(['grep', '-rlE', '--include=Kconfig*', `^\\s*(menu)?config\\s+${sym}\\s*$`, dir], { readOnly: true, allowFailure: true });
  const out = new Map<string, string>();
  for (const f of r.stdout.split('\n').filter(Boolean)) {
    const rel = f.slice(dir.length + 1);
    if (/^arch\//.test(rel) && !rel.startsWith('arch/arm64/')) continue;
    out.set(rel, (await readText(tree, f)) ?? '');
  }
  return out;
}
