import { createHash } from 'node:crypto';
import { join, posix } from 'node:path';
import { TaskFailedError } from '../../core/errors.js';
import { done, todo, type RunContext, type Task } from '../../run/task.js';
import { readTarball, type ManifestFile, type TarballContents } from '../../lib/disk/extract.js';
import type { CardExpectation, CardState } from '../../lib/disk/card-state.js';
import type { CardLayout } from '../../lib/disk/layout.js';
import { formatSize } from '../../lib/disk/size.js';
import { cacheDir } from '../../core/cache-dir.js';
import { fetchK0s } from '../../lib/k0s/release.js';
import { fetchAlpine } from '../../lib/alpine/release.js';
import { DATA_DIR } from '../../lib/alpine/paths.js';
import { cardOverlay, scratchPaths, sharedBootFiles, type SharedPlan } from '../../lib/alpine/card-plan.js';

/**
 * The tarball of a run, read once whatever the number of cards: where it is (given, or the cache
 * path of the release) and, once it is on this machine, its contents (read defensively, no write).
 */
export class TarballSource {
  private read?: Promise<TarballContents | undefined>;

  constructor(private readonly s: SharedPlan) {}

  /** The tarball's path on this machine (a release's is in the cache, downloaded or not). */
  get path(): string {
    const t = this.s.tarball;
    return t.path ?? join(this.s.join?.cacheDir ?? cacheDir(), 'alpine', t.release.file);
  }

  /** Its contents; undefined while a release is not downloaded (a dry run then plans without them). */
  async contents(ctx: RunContext): Promise<TarballContents | undefined> {
    const r = this.s.tarball.release;
    if (r && (await ctx.local.sha256(this.path)) !== r.sha256) return undefined;
    this.read ??= readTarball(this.path, ctx.log);
    return this.read;
  }
}

/** What a finished card holds, from the plan and the tarball's contents. */
export function expectation(s: SharedPlan, contents: TarballContents | undefined, hostname: string, layout: CardLayout): CardExpectation {
  const boot = sharedBootFiles(s, contents);
  const ovl = cardOverlay(s, hostname, boot.repoBranch);
  const sha = (x: string) => createHash('sha256').update(x).digest('hex');
  return {
    layout,
    bootFiles: boot.files,
    apkovl: { name: ovl.name, at: (t) => cardOverlay(s, hostname, boot.repoBranch, t).file },
    join: s.join ? { tokenSha256: sha(s.join.token.raw + '\n'), k0sSha256: s.join.k0s.sha256 } : undefined,
  };
}

/**
 * One card's boot filesystem: the scratch tree's top-level entries and the card's overlay to copy
 * (mcopy), and every file with the SHA-256 the read-back compares.
 */
export function cardBootFiles(s: SharedPlan, contents: TarballContents | undefined, hostname: string): { sources: string[]; files: ManifestFile[] } {
  const p = scratchPaths(s, hostname);
  const boot = sharedBootFiles(s, contents);
  // Without the tarball yet (a dry run before the download) its names are not known.
  const top = contents ? [...new Set([...boot.files.map((f) => f.path.split('/')[0]!), 'cache'])].sort() : ["<the tarball's files>"];
  return {
    sources: [...top.map((e) => join(p.boot, e)), p.apkovl],
    files: [...boot.files, cardOverlay(s, hostname, boot.repoBranch).file],
  };
}

/** 1. The tarball on this machine (given, cached, or downloaded and checked), read defensively. */
export function tarballTask(s: SharedPlan, src: TarballSource, layout: CardLayout): Task {
  const r = s.tarball.release;
  return {
    id: 'alpine-tarball',
    title: `Alpine tarball read defensively (${s.tarball.path ?? `${r!.file}, SHA-256 ${r!.sha256.slice(0, 12)}…`})`,
    async check(ctx) {
      const c = await src.contents(ctx);
      if (!c) return todo(`download ${r!.url} (not in the cache yet)`);
      // Read in every mode: a hostile tarball is refused before anything is written, dry runs too.
      const need = c.bytes * 1.05 + 4 * 1024 * 1024;
      if (need > layout.boot.bytes) throw new TaskFailedError(`the tarball holds ${formatSize(c.bytes)}, more than the ${formatSize(layout.boot.bytes)} boot partition: use a larger --boot-size`);
      return done(`${c.files.length} files, ${formatSize(c.bytes)}: no links, device nodes or unsafe names`);
    },
    async apply(ctx) {
      await fetchAlpine(ctx.local, r!, ctx.log, s.join?.cacheDir ?? cacheDir());
      const c = await src.contents(ctx);
      if (c) ctx.log(`${c.files.length} files, ${formatSize(c.bytes)}: no links, device nodes or unsafe names`);
    },
  };
}

/** Done when this card needs nothing, or an earlier card of the run already made the part. */
async function scratchCheck(ctx: RunContext, state: (ctx: RunContext) => Promise<CardState>, stamp: string, what: string): Promise<ReturnType<typeof done>> {
  if ((await state(ctx)).right) return done('the card already holds them: nothing to prepare');
  if (await ctx.local.stat(stamp)) return done(`prepared once for every card of this run (${what})`);
  return todo(`prepared once in the scratch directory, for every card of this run`);
}

/** 2. The shared boot files in the scratch directory: Alpine's, cgroup flags in cmdline.txt, usercfg.txt. */
export function bootScratchTask(s: SharedPlan, src: TarballSource, state: (ctx: RunContext) => Promise<CardState>): Task {
  const p = scratchPaths(s, '');
  return {
    id: 'boot-files',
    title: 'Boot files: Alpine\'s, cgroup flags and a serial console in cmdline.txt, usercfg.txt',
    check: (ctx) => scratchCheck(ctx, state, `${p.stamp}-boot`, p.boot),
    async apply(ctx) {
      const contents = await src.contents(ctx);
      const boot = sharedBootFiles(s, contents);
      // The scratch space is this run's own (0700): it may hold the token.
      await ctx.local.mkdir(s.work, 0o700);
      await ctx.local.writeFile(join(s.work, 'pid'), String(process.pid));
      await ctx.local.mkdir(p.boot, 0o700);
      // tar reads the very bytes the defensive read accepted (no links, device nodes or unsafe
      // names), uncompressed, on stdin; the read-back compares every file with the SHA-256 taken then.
      const tar = await ctx.local.run(['tar', '-x', '-f', '-', '-C', p.boot, '--no-same-owner', '--no-same-permissions'], { input: contents?.raw ?? Buffer.alloc(0), allowFailure: true });
      if (tar.exitCode !== 0) throw await extractError(ctx, tar.stderr, p.boot, src.path);
      // pi-prep's own versions replace the tarball's whole (their text is in the plan, from scratch).
      for (const [name, text] of [['cmdline.txt', boot.cmdline], ['usercfg.txt', boot.usercfg]] as const) {
        await ctx.local.remove(join(p.boot, name));
        await ctx.local.writeFile(join(p.boot, name), text);
      }
      await ctx.local.mkdir(join(p.boot, 'cache'), 0o755);
      await ctx.local.writeFile(`${p.stamp}-boot`, '');
    },
  };
}

/** 3. The data partition's contents: k0s/ (bound to /var/lib/k0s), pi-prep/ with k0s and the token. */
export function dataScratchTask(s: SharedPlan, state: (ctx: RunContext) => Promise<CardState>): Task {
  const p = scratchPaths(s, '');
  const j = s.join;
  return {
    id: 'data-files',
    title: j ? `Data partition contents: k0s/ (for ${DATA_DIR}), pi-prep/ with ${j.k0s.label} and the join token (0600)` : `Data partition contents: k0s/ (for ${DATA_DIR}), pi-prep/`,
    check: (ctx) => scratchCheck(ctx, state, `${p.stamp}-data`, p.data),
    async apply(ctx) {
      // The partition's root: k0s/ is bound to /var/lib/k0s (k0s reset empties only it), pi-prep/ beside it.
      await ctx.local.mkdir(join(p.data, 'k0s'), 0o755);
      await ctx.local.mkdir(join(p.data, 'pi-prep'), 0o700);
      if (j) {
        if (j.k0s.unresolved) ctx.host(`download ${j.k0s.label} and check its SHA-256 against the release's sha256sums.txt`);
        else await ctx.local.putFile(await fetchK0s(ctx.local, j.k0s, j.cacheDir), join(p.data, 'pi-prep', 'k0s'), { mode: 0o755 });
        // The token reaches the card only through this file: never argv, never output, never a plan.
        await ctx.local.writeFile(join(p.data, 'pi-prep', 'join.token'), j.token.raw + '\n', { mode: 0o600, secret: true });
      }
      await ctx.local.writeFile(`${p.stamp}-data`, '');
    },
  };
}

/** 4. The card's own overlay: its host name, and everything the first boot needs. */
export function overlayTask(s: SharedPlan, src: TarballSource, hostname: string, state: (ctx: RunContext) => Promise<CardState>): Task {
  const p = scratchPaths(s, hostname);
  return {
    id: 'apkovl',
    title: `${posix.basename(p.apkovl)}: hostname, DHCP${s.wifi ? ', Wi-Fi' : ''}, ${s.sshKeys.length ? `sshd with ${s.sshKeys.length} key(s)` : 'no SSH (--no-ssh)'}, cgroups (unified), LABEL=k0s-data at /media/k0s-data (its k0s/ bound to /var/lib/k0s), lbu keeps the k0s service and root's keys, boot-media and first-boot services`,
    async check(ctx) {
      const st = await state(ctx);
      return st.right ? done(st.boot.why) : todo(`this card's identity: ${hostname}`);
    },
    async apply(ctx) {
      const ovl = cardOverlay(s, hostname, sharedBootFiles(s, await src.contents(ctx)).repoBranch);
      await ctx.local.mkdir(posix.dirname(p.apkovl), 0o700);
      await ctx.local.writeFile(p.apkovl, ovl.data);
    },
  };
}

/** tar's failure as one line: a full scratch disk names the fix. */
async function extractError(ctx: RunContext, stderr: string, dest: string, tarball: string): Promise<Error> {
  if (/No space left|Disk quota/i.test(stderr)) {
    const du = await ctx.local.run(['du', '-sb', dest], { readOnly: true, allowFailure: true });
    const written = Number(/^(\d+)/.exec(du.stdout)?.[1] ?? 0);
    return new TaskFailedError(`no space left in ${dest} while extracting ${tarball} (${written} bytes written): free space there or set TMPDIR to a larger disk; nothing was written to the card`);
  }
  const last = stderr.trim().split('\n').pop() ?? '';
  return new TaskFailedError(`cannot extract ${tarball} into ${dest} (${last}): check that directory or set TMPDIR elsewhere; nothing was written to the card`);
}
