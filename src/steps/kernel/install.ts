import { posix } from 'node:path';
import { TaskFailedError } from '../../core/errors.js';
import { todo, type Task } from '../../run/task.js';
import type { Target } from '../../targets/target.js';
import { make } from './make.js';
import { MANIFEST, readManifest, writeManifest, type KernelManifest } from '../../lib/kernel/manifest.js';
import type { KernelPlan, KernelState } from './plan.js';

const join = posix.join;

export function installTask(state: KernelState): Task {
  return {
    id: 'kernel-install',
    title: 'Kernel installed beside the stock one (modules, image, DTBs, overlays; backups kept)',
    async check(ctx) {
      const p = await state.plan(ctx);
      return todo(`install ${p.image} into ${p.bootDir}`);
    },
    async apply(ctx) {
      const p = await state.plan(ctx);
      const t = ctx.target;
      const tree = state.builder.on(ctx);
      const release = state.release ?? '<kernelrelease>';
      const stage = join(p.dir, 'pi-prep-modules');
      const modulesDir = `/lib/modules/${release}`;
      await tree.remove(stage);
      const staged = await state.builder.run(ctx, make(state, p, `INSTALL_MOD_PATH=${stage}`, 'modules_install'), { log: p.log });
      const boot = await bootFiles(tree, p, Boolean(staged.planned));
      // A planned build names its DTBs and overlays by pattern: only real paths go in the manifest.
      const real = boot.filter(([from]) => !from.includes('*'));

      // Room on the boot partition for the new files and the backups of those replaced.
      let need = 0;
      for (const [from] of boot) need += ((await tree.stat(from))?.size ?? 0) * 2;
      const free = await t.freeBytes(p.bootDir);
      if (free !== undefined && free < need) {
        throw new TaskFailedError(`${p.bootDir} has ${Math.round(free / 1048576)} MiB free, the kernel and backups need ${Math.round(need / 1048576)} MiB: free space on the boot partition`);
      }

      // The manifest first: an interrupted install can still be rolled back.
      const prev = await readManifest(t);
      const added = new Set(prev?.added ?? []);
      const replaced = new Set(prev?.replaced ?? []);
      for (const [, to] of real) if (!added.has(to) && !replaced.has(to)) ((await t.stat(to)) ? replaced : added).add(to);
      // What a planned build's patterns stand for is listed by the real run: the plan says so.
      if (real.length < boot.length) {
        added.add(`<each DTB and overlay new to ${p.bootDir}>`);
        replaced.add(`<each DTB and overlay it replaces in ${p.bootDir}>`);
      }
      const manifest: KernelManifest = {
        release, image: p.image, bootDir: p.bootDir, added: [...added], replaced: [...replaced], modulesDir,
        configTxt: `${p.bootDir}/config.txt`, ...(prev?.configTxtSha256 ? { configTxtSha256: prev.configTxtSha256 } : {}),
      };
      await writeManifest(t, manifest);

      const modsHere = join(stage, 'lib/modules', release);
      // A planned build made no modules yet: the plan names the directory they come from.
      const mods = staged.planned ? [] : await walk(tree, modsHere);
      if (staged.planned) await t.putFile(modsHere, modulesDir, { mode: 0o644 });
      for (const m of mods) await t.putFile(join(modsHere, m), join(modulesDir, m), { mode: 0o644 });
      await t.putFile(join(p.dir, '.config'), `${modulesDir}/config`, { mode: 0o644 });
      ctx.log(`${mods.length} module files in ${modulesDir}`);
      for (const [from, to] of boot) await t.putFile(from, to, { mode: 0o644, backup: replaced.has(to) });
      ctx.log(`${boot.length} boot files in ${p.bootDir}; record in ${MANIFEST}`);
      state.changed.push(`kernel ${release}`);
    },
  };
}

/** What goes to the boot partition: the image, the board DTBs, the overlays (with README). */
async function bootFiles(tree: Target, p: KernelPlan, planned: boolean): Promise<[string, string][]> {
  const dts = join(p.dir, 'arch/arm64/boot/dts');
  const boot: [string, string][] = [[join(p.dir, 'arch/arm64/boot/Image.gz'), `${p.bootDir}/${p.image}`]];
  if (planned) return [...boot, [`${dts}/broadcom/*.dtb`, `${p.bootDir}/`], [`${dts}/overlays/*.dtb* README`, `${p.bootDir}/overlays/`]];
  for (const f of await list(tree, `${dts}/broadcom`, /\.dtb$/)) boot.push([`${dts}/broadcom/${f}`, `${p.bootDir}/${f}`]);
  for (const f of await list(tree, `${dts}/overlays`, /\.dtbo?$|^README$/)) boot.push([`${dts}/overlays/${f}`, `${p.bootDir}/overlays/${f}`]);
  return boot;
}

const list = async (tree: Target, dir: string, re: RegExp) => (await tree.readDir(dir).catch(() => [] as string[])).filter((f) => re.test(f)).sort();

/** Every plain file under dir (build/source links point into the build tree: not copied). */
async function walk(tree: Target, dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await tree.readDir(join(dir, rel))).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const st = await tree.stat(join(dir, r));
    if (st?.type === 'dir') out.push(...(await walk(tree, dir, r)));
    else if (st?.type === 'file') out.push(r);
  }
  return out.sort();
}
