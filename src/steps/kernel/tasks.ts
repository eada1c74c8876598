import { access, constants, readdir, rm, stat } from 'node:fs/promises';
import { cpus, homedir, totalmem } from 'node:os';
import { delimiter, join, posix } from 'node:path';
import { TaskFailedError } from '../../core/errors.js';
import { done, todo, type RunContext, type Task } from '../../core/task.js';
import { kernelFlavour } from '../../targets/probes/board.js';
import { parseKernelConfig } from '../../targets/probes/kernel-config.js';
import type { Target } from '../../targets/target.js';
import { selectKernel, selectsKernel } from '../boot-config.js';
import { Builder } from './builder.js';
import { droppedOptions, loadFragments, missingOptions, scriptsConfigArgs, type Fragment } from './fragment.js';
import { branchFor, buildJobs } from './jobs.js';
import { depsFromKconfig, explainDropped } from './kconfig-deps.js';
import { MANIFEST, readManifest, writeManifest, type KernelManifest } from './manifest.js';

export const DEFAULT_KERNEL_REPO = 'https://github.com/raspberrypi/linux';
export const BUILD_DEPS = ['git', 'bc', 'bison', 'flex', 'libssl-dev', 'make', 'gcc'];

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

/** What the kernel tasks share in one run: the decision, the board's flavour, paths. */
export interface KernelState {
  opts: KernelOptions;
  fragment: Fragment;
  builder: Builder;
  /** Set when a task changed what the next boot loads. */
  changed: string[];
  release?: string;
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

export function kernelState(target: Target, opts: KernelOptions): KernelState {
  const fragment = loadFragments(opts.fragments);
  const hostArm = process.arch === 'arm64';
  // On the Pi itself build natively; for a root directory, build here (cross unless this is arm64).
  // --build-local: the same host build for a Pi reached over SSH; the install goes through the target.
  const builder = target.kind === 'root' || (target.kind === 'ssh' && opts.buildLocal) ? new Builder('host', !hostArm) : new Builder('target', false);
  let memo: Promise<KernelPlan> | undefined;
  const state: KernelState = {
    opts, fragment, builder, changed: [],
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
  const where = state.builder.where;
  const dir = opts.workdir ?? (where === 'host'
    ? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'pi-prep', `linux-${branch}`)
    : `/var/cache/pi-prep/linux-${branch}`);
  const jobs = opts.jobs ?? (where === 'host' ? buildJobs(cpus().length, totalmem()) : buildJobs(await targetCores(ctx), f.memTotalBytes));
  const base = { defconfig: opts.defconfig ?? flavour?.defconfig ?? 'bcm2711_defconfig', image, bootDir, branch, dir, log: join(dir, 'pi-prep-build.log'), jobs };
  const no = (why: string) => ({ ...base, rebuild: false, why });
  const yes = (why: string) => {
    if (ctx.target.kind === 'ssh' && where !== 'host') throw new TaskFailedError(`${why}, but a kernel build over SSH needs --build-local (cross-compile here, install over SSH): add it, run pi-prep rpios on the Pi, or use --kernel skip`);
    return { ...base, rebuild: true, why };
  };

  if (opts.mode === 'skip') return no('--kernel skip: the running kernel is kept');
  if (f.kernelRelease.endsWith(opts.localVersion)) return no(`running the k0s build ${f.kernelRelease}`);
  const manifest = await readManifest(ctx.target);
  const cfgTxt = (await ctx.target.readFile(`${bootDir}/config.txt`))?.toString('utf8') ?? '';
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

const make = (s: KernelState, p: KernelPlan, ...targets: string[]) => ['make', '-C', p.dir, ...s.builder.makeVars, 'LOCALVERSION=', ...targets];

/** Every task first asks the shared decision; with no rebuild they are done, the first says why. */
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

export function kernelTasks(state: KernelState): Task[] {
  const b = state.builder;
  return [
    gated(state, b.where === 'host' ? hostToolsTask(b) : targetToolsTask(), true),
    gated(state, sourceTask(state)),
    gated(state, configTask(state)),
    gated(state, buildTask(state)),
    gated(state, installTask(state)),
    gated(state, selectTask(state)),
  ];
}

function targetToolsTask(): Task {
  return {
    id: 'kernel-tools',
    title: 'Kernel check (kernel-configs/) and build tools',
    async check(ctx) {
      const r = await ctx.target.run(['dpkg-query', '-W', '-f=${Package} ${Status}\\n', ...BUILD_DEPS], { readOnly: true, allowFailure: true });
      const ok = new Set(r.stdout.split('\n').filter((l) => l.endsWith('install ok installed')).map((l) => l.split(' ')[0]));
      const missing = BUILD_DEPS.filter((p) => !ok.has(p));
      return missing.length ? todo(`install ${missing.join(' ')}`) : done(`${BUILD_DEPS.join(' ')} installed`);
    },
    async apply(ctx) {
      await ctx.target.run(['apt-get', 'install', '-y', '--no-install-recommends', ...BUILD_DEPS], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
    },
  };
}

/** On a workstation pi-prep does not install packages: it names them. */
function hostToolsTask(b: Builder): Task {
  const tools = ['git', 'make', 'bc', 'bison', 'flex', 'perl', b.cross ? 'aarch64-linux-gnu-gcc' : 'gcc'];
  return {
    id: 'kernel-tools',
    title: 'Kernel check (kernel-configs/) and build tools on this machine',
    async check() {
      const missing: string[] = [];
      for (const t of tools) if (!(await onPath(t))) missing.push(t);
      if (!(await access('/usr/include/openssl/opensslv.h').then(() => true, () => false))) missing.push('openssl headers');
      if (missing.length === 0) return done(`${tools.join(' ')} found${b.cross ? ' (cross-compiling for arm64)' : ''}`);
      return todo(`missing ${missing.join(', ')}: install them, e.g. \`sudo apt-get install git make bc bison flex libssl-dev${b.cross ? ' gcc-aarch64-linux-gnu' : ' gcc'}\``);
    },
  };
}

async function onPath(cmd: string): Promise<boolean> {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (d && (await access(join(d, cmd), constants.X_OK).then(() => true, () => false))) return true;
  }
  return false;
}

function sourceTask(state: KernelState): Task {
  const b = state.builder;
  return {
    id: 'kernel-source',
    title: 'Kernel source checked out',
    async check(ctx) {
      const p = await state.plan(ctx);
      const head = await b.read(['git', '-C', p.dir, 'rev-parse', '--abbrev-ref', 'HEAD']);
      if (head.exitCode === 0 && head.stdout.trim() === p.branch) return done(`${p.dir} is on ${p.branch}`);
      return todo(`clone ${state.opts.repo} ${p.branch} into ${p.dir}`);
    },
    async apply(ctx) {
      const p = await state.plan(ctx);
      if (!ctx.dryRun) {
        if (await stat(p.dir).catch(() => undefined)) {
          throw new TaskFailedError(`${p.dir} exists and is not a checkout of ${p.branch}: remove it or pass --kernel-workdir`);
        }
        const ls = await b.read(['git', 'ls-remote', '--exit-code', '--heads', state.opts.repo, p.branch]);
        if (ls.exitCode !== 0) {
          throw new TaskFailedError(`no branch ${p.branch} at ${state.opts.repo}: pass --kernel-branch (or --kernel-repo for a mirror)`);
        }
      }
      await b.run(ctx, ['git', 'clone', '--depth=1', '--branch', p.branch, '--', state.opts.repo, p.dir]);
    },
  };
}

function configTask(state: KernelState): Task {
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
      await b.resetLog(ctx, p.log); // one log per rebuild: configure, build, install
      await b.run(ctx, make(state, p, p.defconfig), { log: p.log });
      await b.run(ctx, [join(p.dir, 'scripts/config'), '--file', join(p.dir, '.config'), ...scriptsConfigArgs(state.fragment, state.opts.localVersion)], { log: p.log });
      await b.run(ctx, make(state, p, 'olddefconfig'), { log: p.log });
      if (ctx.dryRun) return;
      await verifyConfig(state, p);
      ctx.log(`all ${state.fragment.options.size} fragment options survived olddefconfig`);
    },
  };
}

/** Every fragment option must survive olddefconfig; otherwise name it and the dependency that dropped it. */
export async function verifyConfig(state: KernelState, p: Pick<KernelPlan, 'dir'>): Promise<void> {
  const merged = parseKernelConfig((await state.builder.readFile(join(p.dir, '.config')))?.toString('utf8') ?? '');
  const dropped = droppedOptions(state.fragment, merged);
  if (dropped.length === 0) return;
  const files = await kconfigFiles(p.dir);
  const reasons: string[] = [];
  for (const sym of dropped) reasons.push(await explainDropped(sym, merged, async (s) => depsFromKconfig(s, await files(s))));
  throw new TaskFailedError(`olddefconfig dropped ${dropped.map((d) => `CONFIG_${d}`).join(', ')}: ${reasons.join('; ')}. Enable the dependency in a fragment (--kernel-fragment FILE) or choose another --kernel-defconfig`);
}

/** The Kconfig files defining a symbol, found with grep (other architectures' files left out). */
async function kconfigFiles(dir: string): Promise<(sym: string) => Promise<Map<string, string>>> {
  const { execa } = await import('execa');
  return async (sym) => {
    const r = await execa('grep', ['-rlE', '--include=Kconfig*', `^\\s*(menu)?config\\s+${sym}\\s*$`, dir], { reject: false });
    const out = new Map<string, string>();
    for (const f of r.stdout.split('\n').filter(Boolean)) {
      const rel = f.slice(dir.length + 1);
      if (/^arch\//.test(rel) && !rel.startsWith('arch/arm64/')) continue;
      const { readFile } = await import('node:fs/promises');
      out.set(rel, await readFile(f, 'utf8'));
    }
    return out;
  };
}

function buildTask(state: KernelState): Task {
  return {
    id: 'kernel-build',
    title: 'Kernel built (Image.gz, modules, dtbs)',
    async check(ctx) {
      const p = await state.plan(ctx);
      return todo(`make -j${p.jobs} Image.gz modules dtbs in ${p.dir} (${state.builder.where === 'host' ? 'on this machine' : 'natively: 2-3 hours on a Pi 4'})`);
    },
    async apply(ctx) {
      const p = await state.plan(ctx);
      await state.builder.run(ctx, make(state, p, `-j${p.jobs}`, 'Image.gz', 'modules', 'dtbs'), { log: p.log, stream: true });
      if (!ctx.dryRun) state.release = (await state.builder.read(make(state, p, '-s', 'kernelrelease'))).stdout.trim();
      ctx.log(`built ${state.release ?? '<kernelrelease>'}; full log ${p.log}`);
    },
  };
}

async function walk(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(dir, r)));
    else if (e.isFile()) out.push(r); // build/source links point into the build tree: not copied
  }
  return out.sort();
}

const list = async (dir: string, re: RegExp) => (await readdir(dir).catch(() => [] as string[])).filter((f) => re.test(f)).sort();

function installTask(state: KernelState): Task {
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
      const release = state.release ?? '<kernelrelease>';
      const stage = join(p.dir, 'pi-prep-modules');
      const modulesDir = `/lib/modules/${release}`;
      if (!ctx.dryRun) await rm(stage, { recursive: true, force: true });
      await state.builder.run(ctx, make(state, p, `INSTALL_MOD_PATH=${stage}`, 'modules_install'), { log: p.log });

      const dts = join(p.dir, 'arch/arm64/boot/dts');
      const boot: [string, string][] = [[join(p.dir, 'arch/arm64/boot/Image.gz'), `${p.bootDir}/${p.image}`]];
      if (ctx.dryRun) {
        boot.push([`${dts}/broadcom/*.dtb`, `${p.bootDir}/`], [`${dts}/overlays/*.dtb* README`, `${p.bootDir}/overlays/`]);
        await t.putFile(`${stage}/lib/modules/${release}`, modulesDir);
        for (const [from, to] of boot) await t.putFile(from, to, { backup: to !== `${p.bootDir}/${p.image}` });
        return;
      }
      for (const f of await list(`${dts}/broadcom`, /\.dtb$/)) boot.push([`${dts}/broadcom/${f}`, `${p.bootDir}/${f}`]);
      for (const f of await list(`${dts}/overlays`, /\.dtbo?$|^README$/)) boot.push([`${dts}/overlays/${f}`, `${p.bootDir}/overlays/${f}`]);

      // Room on the boot partition for the new files and the backups of those replaced.
      let need = 0;
      for (const [from] of boot) need += (await stat(from)).size * 2;
      const free = await t.freeBytes(p.bootDir);
      if (free !== undefined && free < need) {
        throw new TaskFailedError(`${p.bootDir} has ${Math.round(free / 1048576)} MiB free, the kernel and backups need ${Math.round(need / 1048576)} MiB: free space on the boot partition`);
      }

      // The manifest first: an interrupted install can still be rolled back.
      const prev = await readManifest(t);
      const added = new Set(prev?.added ?? []);
      const replaced = new Set(prev?.replaced ?? []);
      for (const [, to] of boot) if (!added.has(to) && !replaced.has(to)) ((await t.stat(to)) ? replaced : added).add(to);
      const manifest: KernelManifest = {
        release, image: p.image, bootDir: p.bootDir, added: [...added], replaced: [...replaced], modulesDir,
        configTxt: `${p.bootDir}/config.txt`, ...(prev?.configTxtSha256 ? { configTxtSha256: prev.configTxtSha256 } : {}),
      };
      await writeManifest(t, manifest);

      const modsHost = join(stage, 'lib/modules', release);
      const mods = await walk(modsHost);
      for (const m of mods) await t.putFile(join(modsHost, m), posix.join(modulesDir, m), { mode: 0o644 });
      await t.putFile(join(p.dir, '.config'), `${modulesDir}/config`, { mode: 0o644 });
      ctx.log(`${mods.length} module files in ${modulesDir}`);
      for (const [from, to] of boot) await t.putFile(from, to, { mode: 0o644, backup: replaced.has(to) });
      ctx.log(`${boot.length} boot files in ${p.bootDir}; record in ${MANIFEST}`);
      state.changed.push(`kernel ${release}`);
    },
  };
}

function selectTask(state: KernelState): Task {
  return {
    id: 'kernel-select',
    title: 'config.txt loads the k0s kernel',
    async check(ctx) {
      const p = await state.plan(ctx);
      const text = (await ctx.target.readFile(`${p.bootDir}/config.txt`))?.toString('utf8');
      if (text === undefined) throw new TaskFailedError(`${p.bootDir}/config.txt not found on ${ctx.target.label}: is the boot partition mounted?`);
      return selectsKernel(text, p.image) ? done(`kernel=${p.image} in config.txt`) : todo(`add kernel=${p.image} (and auto_initramfs=0) to config.txt`);
    },
    async apply(ctx) {
      const p = await state.plan(ctx);
      const path = `${p.bootDir}/config.txt`;
      const next = selectKernel((await ctx.target.readFile(path))!.toString('utf8'), p.image);
      await ctx.target.writeFile(path, next, { backup: true });
      state.changed.push('config.txt');
      if (ctx.dryRun) return;
      const m = await readManifest(ctx.target);
      if (m) await writeManifest(ctx.target, { ...m, configTxtSha256: (await ctx.target.sha256(path))! });
    },
  };
}
