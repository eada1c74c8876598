import { open, realpath, lstat, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RefusedError, UsageError } from '../../core/errors.js';
import type { Target } from '../../targets/target.js';
import { listBlockDevices, type BlockDevice } from './lsblk.js';
import { diskVerdict, type DiskVerdict } from './safety.js';

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
}

/**
 * Decide what TARGET is and whether pi-prep may write it. Refusals (exit 3) name the reason;
 * nothing is opened for writing here.
 */
export async function resolveCard(target: Target, given: string, opts: CardOptions): Promise<Card> {
  const l = await lstat(given).catch(() => undefined);
  if (!l) {
    if (given.startsWith('/dev/')) throw new RefusedError(`${given} does not exist: run \`pi-prep disks\` to see the cards this machine has`);
    const parent = await stat(dirname(given)).catch(() => undefined);
    if (!parent?.isDirectory()) throw new UsageError(`cannot create the image ${given}: ${dirname(given)} is not a directory`);
    return { kind: 'image', path: given, exists: false, bytes: opts.size };
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
  if (await attachedLoop(target, path)) throw new RefusedError(`${given} is attached as a loop device: detach it (losetup -d) first`);
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
    // pi-prep created it a moment ago: it must still be that plain file, not a link put in its place.
    if (!l?.isFile()) throw changed('the new image file was replaced');
    return;
  }
  const now = await resolveCard(target, given, { ...opts, force: true });
  if (now.kind !== card.kind || now.path !== card.path || now.ident !== card.ident) throw changed(`now ${now.path}`);
  if (now.kind === 'device' && now.verdict.mounts.length > 0) {
    throw changed(`mounted again at ${now.verdict.mounts.map((m) => m.mountpoint).join(', ')}: stop the automounter or unmount it`);
  }
}

/** An image that backs a loop device may be mounted through it. */
async function attachedLoop(target: Target, path: string): Promise<boolean> {
  const r = await target.run(['losetup', '--associated', path], { readOnly: true, allowFailure: true });
  return r.exitCode === 0 && r.stdout.trim() !== '';
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

