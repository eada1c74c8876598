import { open, realpath, lstat, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { RefusedError, UsageError } from '../../core/errors.js';
import type { Target } from '../../targets/target.js';
import { listBlockDevices, type BlockDevice } from './lsblk.js';
import { diskVerdict, type DiskVerdict } from './safety.js';
import { lockHolder } from '../../core/target-lock.js';

/** What TARGET turned out to be, once every safety rule has passed. */
export type Card =
  | { kind: 'image'; path: string; exists: boolean; bytes: number; ident?: string }
  | { kind: 'device'; path: string; bytes: number; verdict: DiskVerdict; device: BlockDevice; ident: string };

export interface CardOptions {
  /** Size for a new image file (--size); also grows an existing image that is smaller. */
  size: number;
  allowLoop?: boolean;
  force?: boolean;
  extraMounts?: { device: string; mountpoint: string }[];
  /** Detach the read-only loop device a killed run's verify step left on the image (real runs). */
  adoptLoops?: boolean;
}

/**
 * Decide what TARGET is and whether pi-prep may write it. Refusals (exit 3) name the reason;
 * nothing is opened for writing here.
 */
export async function resolveCard(target: Target, given: string, opts: CardOptions): Promise<Card> {
  const l = await lstat(given).catch(() => undefined);
  if (!l) {
    // Judge the file the kernel would create: `//dev/x`, `/./dev/x`, `../dev/x` and a path through
    // a link to /dev all land in /dev, where a new regular file is a typo, never an image.
    const abs = resolve(given);
    const parent = await realpath(dirname(abs)).catch(() => undefined);
    const full = parent === undefined ? abs : join(parent, basename(abs));
    if (full.startsWith('/dev/')) {
      throw new RefusedError(`${given === full ? '' : `${given}: `}${full} does not exist: run \`pi-prep disks\` to see the cards this machine has`);
    }
    if (parent === undefined || !(await stat(parent)).isDirectory()) throw new UsageError(`cannot create the image ${given}: ${dirname(given)} is not a directory`);
    return { kind: 'image', path: full, exists: false, bytes: opts.size };
  }
  // A symlink (/dev/disk/by-id/...) is judged by what it points to.
  const path = await realpath(given).catch(() => undefined);
  if (!path) throw new RefusedError(`${given} is a dangling symlink: name the device or image file itself`);
  const s = await stat(path);
  if (s.isDirectory()) throw new RefusedError(`${given} is a directory: give a whole disk (/dev/sdX, /dev/mmcblkN) or an image file path`);
  if (s.isCharacterDevice()) throw new RefusedError(`${given} is a character device, not a disk: give a whole block device or an image file`);
  if (s.isBlockDevice()) return resolveDevice(target, path, opts);
  if (!s.isFile()) throw new RefusedError(`${given} is neither a block device nor a regular file: give a whole disk or an image file`);
  if (path.startsWith('/dev/')) throw new RefusedError(`${given} is a file under /dev, not a disk: give a whole block device`);
  if (s.size > 0 && !opts.force && !(await looksLikeImage(path))) {
    throw new RefusedError(`${given} exists and is not a disk image (no partition table, not blank): pick another path, or add --force to overwrite it`);
  }
  if (await attachedLoop(target, path, Boolean(opts.adoptLoops))) throw new RefusedError(`${given} is attached as a loop device: detach it (losetup -d) first`);
  return { kind: 'image', path, exists: true, bytes: Math.max(s.size, opts.size), ident: `${s.dev}:${s.ino}` };
}

/**
 * Right before the first write, minutes after resolveCard: the same file or device, still passing
 * every rule, and (a card) no longer mounted. Otherwise refuse, with nothing written yet.
 */
export async function recheckCard(target: Target, given: string, card: Card, opts: CardOptions): Promise<void> {
  const changed = (why: string) => new RefusedError(`${given} changed since it was checked (${why}): nothing was written; run again`);
  const l = await lstat(given).catch(() => undefined);
  if (card.kind === 'image' && !card.exists) {
    // pi-prep creates it (dd conv=excl oflag=nofollow, never through a link): nothing there yet (a
    // dry run), or a plain file that stays the one first seen here. Later writes never create it
    // again (conv=nocreat), so a path emptied meanwhile cannot be refilled by a link.
    if (!l) return;
    if (!l.isFile() || (card.ident !== undefined && `${l.dev}:${l.ino}` !== card.ident)) throw changed('the new image file was replaced');
    card.ident ??= `${l.dev}:${l.ino}`;
    return;
  }
  const now = await resolveCard(target, given, { ...opts, force: true });
  if (now.kind !== card.kind || now.path !== card.path || now.ident !== card.ident) throw changed(`now ${now.path}`);
  if (now.kind === 'device' && now.verdict.mounts.length > 0) {
    throw changed(`mounted again at ${now.verdict.mounts.map((m) => m.mountpoint).join(', ')}: stop the automounter or unmount it`);
  }
}

/**
 * An image that backs a loop device may be mounted through it. The exception is what `kill -9`
 * during verification leaves: a read-only loop at an offset (the boot partition), mounted nowhere,
 * while no live pi-prep run holds the image. That one is not the user's: a real run detaches it
 * (a dry run only looks past it).
 */
async function attachedLoop(target: Target, path: string, adopt: boolean): Promise<boolean> {
  const r = await target.run(['losetup', '--json', '--list', '--output', 'NAME,OFFSET,RO', '--associated', path], { readOnly: true, allowFailure: true });
  if (r.exitCode !== 0 || r.stdout.trim() === '') return false;
  const loops = ((JSON.parse(r.stdout) as { loopdevices?: { name: string; offset: number | string; ro: boolean | string }[] }).loopdevices ?? []);
  let others = 0;
  for (const l of loops) {
    const ro = l.ro === true || l.ro === '1';
    const mounted = (await target.run(['findmnt', '--raw', '--noheadings', '--source', l.name], { readOnly: true, allowFailure: true })).exitCode === 0;
    if (!ro || Number(l.offset) === 0 || mounted || lockHolder(path) !== undefined) {
      others++;
      continue;
    }
    if (adopt) {
      await target.run(['losetup', '--detach', l.name]);
      process.stderr.write(`pi-prep: detached ${l.name}, a read-only loop device a killed run left on ${path}\n`);
    }
  }
  return others > 0;
}

async function resolveDevice(target: Target, path: string, opts: CardOptions): Promise<Card> {
  const [dev] = await listBlockDevices(target, path);
  if (!dev) throw new RefusedError(`lsblk does not know ${path}: give a whole disk from \`pi-prep disks\``);
  const all = await listBlockDevices(target);
  const allNames = all.flatMap((d) => [d.path, ...d.children.map((c) => c.path)]);
  const verdict = diskVerdict(dev, { allowLoop: opts.allowLoop, extraMounts: opts.extraMounts, allNames });
  if (verdict.verdict === 'refused') throw new RefusedError(`refusing ${path}: ${verdict.reason}`);
  if (dev.type === 'loop') {
    // A loop device over a real disk is that disk.
    const backing = (await target.readFile(`/sys/block/${path.replace(/^\/dev\//, '')}/loop/backing_file`))?.toString('utf8').trim();
    if (backing?.startsWith('/dev/')) throw new RefusedError(`refusing ${path}: it is a loop device over ${backing}, a block device`);
  }
  const s = await stat(path);
  return { kind: 'device', path, bytes: dev.size, verdict, device: dev, ident: `${s.rdev}:${dev.size}` };
}

/**
 * An existing file pi-prep may overwrite: it has an MBR/GPT boot signature, or its first MiB is
 * blank (a new image, or one a run left without a partition table on purpose).
 */
export async function looksLikeImage(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(1024 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead >= 512 && buf[510] === 0x55 && buf[511] === 0xaa) return true;
    return buf.subarray(0, bytesRead).every((b) => b === 0);
  } finally {
    await fh.close();
  }
}

