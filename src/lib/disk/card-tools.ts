import type { CardLayout } from './layout.js';
import { DATA_LABEL } from '../alpine/paths.js';
import { BOOT_LABEL, SECTOR } from './layout.js';

/**
 * The raw tools' command lines, by offset into the card (an image file or a whole block device:
 * one code path, no mounts, no partition device nodes).
 */

/** mtools reads the environment, not argv, for this: image sizes are rarely a multiple of a "track". */
export const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1' };

/**
 * Zero one MiB at a byte offset (seek_bytes: a disk's last MiB need not start on a MiB boundary),
 * flushed before returning. Never creates the file and never follows a link: an image replaced
 * since the re-check fails here instead of being written through.
 */
export function zeroArgv(path: string, offsetBytes: number): string[] {
  return ['dd', 'if=/dev/zero', `of=${path}`, 'bs=1M', 'count=1', `seek=${offsetBytes}`, 'oflag=seek_bytes,nofollow', 'conv=notrunc,nocreat,fsync', 'status=none'];
}

/**
 * Make an image file `bytes` long (sparse). A new one is created O_EXCL|O_NOFOLLOW (conv=excl,
 * oflag=nofollow): whatever appeared at the path since the checks, a link above all, is refused,
 * never followed or truncated. An existing one is only grown (the layout is never smaller), never
 * created, never followed.
 */
export function imageArgv(path: string, bytes: number, exists: boolean): string[] {
  return ['dd', 'if=/dev/null', `of=${path}`, 'bs=1', 'count=0', `seek=${bytes}`, 'oflag=nofollow', exists ? 'conv=nocreat' : 'conv=excl', 'status=none'];
}

export function mkfsVfatArgv(path: string, l: CardLayout): string[] {
  const start = l.boot.offset / SECTOR;
  return [
    'mkfs.vfat', '-F', '32', '-I', '-s', String(l.boot.fat.sectorsPerCluster), '-R', String(l.boot.fat.reservedSectors),
    '-f', '2', '-n', BOOT_LABEL, '-h', String(start), '--mbr=n', '--offset', String(start), path, String(l.boot.bytes / 1024),
  ];
}

/** mcopy every top-level entry of `dir` onto the boot filesystem (recursively). No -b: it breaks @@offset. */
export function mcopyArgv(path: string, l: CardLayout, sources: string[]): string[] {
  return ['mcopy', '-s', '-Q', '-i', `${path}@@${l.boot.offset}`, ...sources, '::'];
}

export function mkfsExt4Argv(path: string, l: CardLayout, contents: string): string[] {
  return [
    'mkfs.ext4', '-F', '-q', '-L', DATA_LABEL, '-E', `offset=${l.data.offset},nodiscard`, '-d', contents, path, `${l.data.bytes / 1024}k`,
  ];
}

export function sfdiskArgv(path: string, isDevice: boolean): string[] {
  // Never let sfdisk wipe the filesystems just written at the partitions' starts.
  return ['sfdisk', '--quiet', '--wipe', 'never', '--wipe-partitions', 'never', ...(isDevice ? [] : ['--no-reread', '--no-tell-kernel']), path];
}

export function e2fsckArgv(path: string, l: CardLayout): string[] {
  return ['e2fsck', '-fn', `${path}?offset=${l.data.offset}`];
}

/** fsck.vfat has no offset option: it reads the partition through a read-only loop device. */
export function loopArgv(path: string, l: CardLayout): string[] {
  return ['losetup', '--read-only', '--find', '--show', '--offset', String(l.boot.offset), '--sizelimit', String(l.boot.bytes), path];
}

/** What `sfdisk --dump` must show for the layout (start, size, type, bootable per partition). */
export function expectedPartitions(l: CardLayout): { start: number; size: number; type: string; bootable: boolean }[] {
  return [
    { start: l.boot.offset / SECTOR, size: l.boot.bytes / SECTOR, type: 'c', bootable: true },
    { start: l.data.offset / SECTOR, size: l.data.bytes / SECTOR, type: '83', bootable: false },
  ];
}

/** Partitions from `sfdisk --dump` text. */
export function parseSfdiskDump(text: string): { start: number; size: number; type: string; bootable: boolean }[] {
  const out: { start: number; size: number; type: string; bootable: boolean }[] = [];
  for (const line of text.split('\n')) {
    const m = /:\s*start=\s*(\d+),\s*size=\s*(\d+),\s*type=\s*([0-9a-fA-F-]+)(.*)$/.exec(line);
    if (m) out.push({ start: Number(m[1]), size: Number(m[2]), type: m[3]!.toLowerCase(), bootable: /bootable/.test(m[4]!) });
  }
  return out;
}
