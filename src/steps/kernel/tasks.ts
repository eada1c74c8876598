import { TaskFailedError } from '../../core/errors.js';
import { done, todo, type Task } from '../../run/task.js';
import { selectKernel, selectsKernel } from '../../lib/boot-config.js';
import { configTask } from './config.js';
import { installTask } from './install.js';
import { make } from './make.js';
import { readManifest, writeManifest } from '../../lib/kernel/manifest.js';
import type { KernelState } from './plan.js';
import { hereToolsTask, nodeToolsTask } from './tools.js';
import { readText } from '../../targets/target.js';

/**
 * The kernel rebuild, in the seed's order: tools, source, config, build, install, select. Every
 * task first asks the shared decision (plan.ts); with no rebuild they are done, the first says why.
 */
export function kernelTasks(state: KernelState): Task[] {
  const b = state.builder;
  return [
    gated(state, b.where === 'here' ? hereToolsTask(b) : nodeToolsTask(), true),
    gated(state, sourceTask(state)),
    gated(state, configTask(state)),
    gated(state, buildTask(state)),
    gated(state, installTask(state)),
    gated(state, selectTask(state)),
  ];
}

function gated(state: KernelState, t: Task, first = false): Task {
  return {
    ...t,
    async check(ctx) {
      const p = await state.plan(ctx);
      if (!p.rebuild) return done(first ? p.why : 'no rebuild');
      const c = await t.check(ctx);
      return first ? { done: c.done, why: `${p.why}; ${c.why}` } : c;
    },
  };
}

function sourceTask(state: KernelState): Task {
  const b = state.builder;
  return {
    id: 'kernel-source',
    title: 'Kernel source checked out',
    async check(ctx) {
      const p = await state.plan(ctx);
      const head = await b.read(ctx, ['git', '-C', p.dir, 'rev-parse', '--abbrev-ref', 'HEAD']);
      if (head.exitCode === 0 && head.stdout.trim() === p.branch) return done(`${p.dir} is on ${p.branch}`);
      return todo(`clone ${state.opts.repo} ${p.branch} into ${p.dir}`);
    },
    async apply(ctx) {
      const p = await state.plan(ctx);
      if (await b.on(ctx).stat(p.dir)) {
        throw new TaskFailedError(`${p.dir} exists and is not a checkout of ${p.branch}: remove it or pass --kernel-workdir`);
      }
      try {
        await b.run(ctx, ['git', 'clone', '--depth=1', '--branch', p.branch, '--', state.opts.repo, p.dir]);
      } catch (err) {
        // git's own words for a missing branch (builtin/clone.c): say which flag fixes it.
        if (/Remote branch .* not found/.test(String((err as Error).message))) {
          throw new TaskFailedError(`no branch ${p.branch} at ${state.opts.repo}: pass --kernel-branch (or --kernel-repo for a mirror)`);
        }
        throw err;
      }
    },
  };
}

function buildTask(state: KernelState): Task {
  return {
    id: 'kernel-build',
    title: 'Kernel built (Image.gz, modules, dtbs)',
    async check(ctx) {
      const p = await state.plan(ctx);
      return todo(`make -j${p.jobs} Image.gz modules dtbs in ${p.dir} (${state.builder.where === 'here' ? 'on this machine' : 'natively: 2-3 hours on a Pi 4'})`);
    },
    async apply(ctx) {
      const p = await state.plan(ctx);
      await state.builder.run(ctx, make(state, p, `-j${p.jobs}`, 'Image.gz', 'modules', 'dtbs'), { log: p.log, stream: true });
      // A read: a dry run asks too, and a tree not built yet answers nothing.
      state.release = (await state.builder.read(ctx, make(state, p, '-s', 'kernelrelease'))).stdout.trim() || undefined;
      ctx.log(`built ${state.release ?? '<kernelrelease>'}; full log ${p.log}`);
    },
  };
}

function selectTask(state: KernelState): Task {
  return {
    id: 'kernel-select',
    title: 'config.txt loads the k0s kernel',
    async check(ctx) {
      const p = await state.plan(ctx);
      const text = (await readText(ctx.target, `${p.bootDir}/config.txt`));
      if (text === undefined) throw new TaskFailedError(`${p.bootDir}/config.txt not found on ${ctx.target.label}: is the boot partition mounted?`);
      return selectsKernel(text, p.image) ? done(`kernel=${p.image} in config.txt`) : todo(`add kernel=${p.image} (and auto_initramfs=0) to config.txt`);
    },
    async apply(ctx) {
      const p = await state.plan(ctx);
      const path = `${p.bootDir}/config.txt`;
      const next = selectKernel((await ctx.target.readFile(path))!.toString('utf8'), p.image);
      await ctx.target.writeFile(path, next, { backup: true });
      state.changed.push('config.txt');
      // The manifest remembers the edited config.txt, so a rollback can tell later edits.
      const m = await readManifest(ctx.target);
      const sum = await ctx.target.sha256(path);
      if (m && sum) await writeManifest(ctx.target, { ...m, configTxtSha256: sum });
    },
  };
}
