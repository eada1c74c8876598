import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { cacheDir } from '../../core/cache-dir.js';
import { TaskFailedError } from '../../core/errors.js';
import type { RunContext } from '../../run/task.js';
import { kernelFlavour } from '../../targets/probes/board.js';
import { readText, type Target } from '../../targets/target.js';
import { selectsKernel } from '../../lib/boot-config.js';
import { Builder } from './builder.js';
import { loadFragments, missingOptions, type Fragment } from '../../lib/kernel/fragment.js';
import { branchFor, buildJobs } from '../../lib/kernel/jobs.js';
import { readManifest } from '../../lib/kernel/manifest.js';

export const DEFAULT_KERNEL_REPO = 'https://github.com/raspberrypi/linux';

export interface KernelOptions {
  mode: 'auto' | 'rebuild' | 'skip';
  repo: string;
  branch?: string;
  /** Instead of the board's (bcm2711_defconfig / bcm2712_defconfig). */
  defconfig?: string;
  /** More fragments after kernel-configs/*.config. */
  fragments: string[];
  /** Clone and build here (on this machine). */
  workdir?: string;
  localVersion: string;
  jobs?: number;
  /** For an SSH target: build on this machine (cross) and install the results over SSH (`--build-local`). */
  buildLocal?: boolean;
}

/** What the kernel tasks share in one run: the decision, the builder, what changed. */
export interface KernelState {
  opts: KernelOptions;
  fragment: Fragment;
  builder: Builder;
  /** Set when a task changed what the next boot loads. */
  changed: string[];
  release?: string;
  /** The files the build made (host path or planned name) and where each goes on the node. */
  bootFiles?: [string, string][];
  plan(ctx: RunContext): Promise<KernelPlan>;
}

export interface KernelPlan {
  rebuild: boolean;
  why: string;
  defconfig: string;
  image: string;
  bootDir: string;
  branch: string;
  dir: string;
  log: string;
  jobs: number;
}

/** `kernel8.img` -> `kernel8-k0s.img`: its own file, so the stock kernel stays and apt leaves it alone. */
export const ownImage = (image: string, localVersion: string) => image.replace(/\.img$/, `${localVersion}.img`);

/**
 * The node builds its own kernel when it can run an hours-long job (pi-prep runs on the Pi);
 * otherwise this machine builds it (cross unless it is arm64) and installs through the target.
 */
export function kernelState(target: Target, opts: KernelOptions): KernelState {
  // A root directory is not a running system: its kernel is built here. Over SSH, only when asked.
  const here = Boolean(opts.buildLocal) || !target.liveServices;
  const builder = new Builder(here ? 'here' : 'node', here && process.arch !== 'arm64');
  let memo: Promise<KernelPlan> | undefined;
  const state: KernelState = {
    opts, fragment: loadFragments(opts.fragments), builder, changed: [],
    plan: (ctx) => (memo ??= decide(ctx, state)),
  };
  return state;
}

async function decide(ctx: RunContext, state: KernelState): Promise<KernelPlan> {
  const { opts } = state;
  const f = await ctx.target.facts();
  const flavour = kernelFlavour(f.board?.soc);
  const bootDir = f.bootDir ?? '/boot/firmware';
  const image = ownImage(flavour?.image ?? 'kernel8.img', opts.localVersion);
  const branch = opts.branch ?? branchFor(f.kernelRelease) ?? 'rpi-6.12.y';
  const here = state.builder.where === 'here';
  const dir = opts.workdir ?? (here ? join(cacheDir(), `linux-${branch}`) : `/var/cache/pi-prep/linux-${branch}`);
  const jobs = opts.jobs ?? (here ? buildJobs(cpus().length, totalmem()) : buildJobs(await targetCores(ctx), f.memTotalBytes));
  const base = { defconfig: opts.defconfig ?? flavour?.defconfig ?? 'bcm2711_defconfig', image, bootDir, branch, dir, log: join(dir, 'pi-prep-build.log'), jobs };
  const no = (why: string) => ({ ...base, rebuild: false, why });
  const yes = (why: string) => {
    // A running system elsewhere that cannot carry the build: the user chooses where it runs.
    if (!here && !ctx.target.longJobs) throw new TaskFailedError(`${why}, but a kernel build over SSH needs --build-local (cross-compile here, install over SSH): add it, run pi-prep rpios on the Pi, or use --kernel skip`);
    return { ...base, rebuild: true, why };
  };

  if (opts.mode === 'skip') return no('--kernel skip: the running kernel is kept');
  if (f.kernelRelease.endsWith(opts.localVersion)) return no(`running the k0s build ${f.kernelRelease}`);
  const manifest = await readManifest(ctx.target);
  const cfgTxt = (await readText(ctx.target, `${bootDir}/config.txt`)) ?? '';
  if (manifest && selectsKernel(cfgTxt, manifest.image) && (await ctx.target.stat(`${bootDir}/${manifest.image}`))) {
    return no(`${manifest.image} (${manifest.release}) is installed and selected in config.txt: it runs after the reboot`);
  }
  if (opts.mode === 'rebuild') return yes(`--kernel rebuild: build ${base.defconfig} + kernel-configs/ from ${branch}`);
  if (!f.kernelConfig) {
    throw new TaskFailedError(`cannot read the running kernel's config (${f.kernelRelease}): run \`modprobe configs\` so /proc/config.gz exists, or choose --kernel rebuild or --kernel skip`);
  }
  const missing = missingOptions(state.fragment, f.kernelConfig.options);
  if (missing.length === 0) {
    return no(`${f.kernelRelease} has all ${state.fragment.options.size} options of kernel-configs/ (${f.kernelConfig.source}): no rebuild needed`);
  }
  return yes(`${f.kernelRelease} lacks ${missing.join(', ')} (${f.kernelConfig.source}): rebuild from ${branch}`);
}

async function targetCores(ctx: RunContext): Promise<number> {
  const r = await ctx.target.run(['getconf', '_NPROCESSORS_ONLN'], { readOnly: true, allowFailure: true });
  return Number(r.stdout.trim()) || 1;
}
