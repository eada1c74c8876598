import { open, rename, copyFile, unlink, stat, lstat, readdir, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { RefusedError } from './errors.js';
import { dirname, basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import { onInterrupt } from './cleanup.js';
import { pidAlive } from './pid.js';

export const BACKUP_SUFFIX = '.pi-prep.bak';

/**
 * Where a write goes, decided once: the directory's device and inode, and how to open it again
 * (a root target walks to it from its root without following any link). Right before the write
 * the directory is opened that way again and must be the same one; the temp file is created,
 * renamed and synced through that descriptor (`/proc/self/fd/N/NAME`, Linux's openat), never by
 * a second lookup of the path. A directory swapped for a symlink meanwhile is refused, and nothing
 * is written there or anywhere else.
 */
export interface DirDecision {
  dir: string;
  dev: number;
  ino: number;
  open(): Promise<FileHandle>;
}

/** Open DIR itself (following links: this machine's own paths may hold them, /var/run for one). */
export function openDir(dir: string): Promise<FileHandle> {
  return open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
}

export async function decideDir(dir: string, opener: (dir: string) => Promise<FileHandle> = openDir): Promise<DirDecision> {
  // A missing directory is reported as it is (nothing to compare yet); a link met on the way
  // under a root is a change since hostPath resolved it.
  const fh = await opener(dir).catch((err: unknown) => {
    throw (err as NodeJS.ErrnoException).code === 'ENOENT' ? err : changedError(dir, err);
  });
  try {
    const s = await fh.stat();
    return { dir, dev: s.dev, ino: s.ino, open: () => opener(dir) };
  } finally {
    await fh.close();
  }
}

/** Test seam: the point between the decision and the write, where a test changes the world. */
export const writeSeam: { beforeRecheck?: (dir: string) => Promise<void> | void } = {};

async function recheck(d: DirDecision): Promise<FileHandle> {
  await writeSeam.beforeRecheck?.(d.dir);
  const fh = await d.open().catch((err: unknown) => {
    throw changedError(d.dir, err);
  });
  const s = await fh.stat();
  if (s.dev !== d.dev || s.ino !== d.ino) {
    await fh.close();
    throw changedError(d.dir);
  }
  return fh;
}

function changedError(dir: string, err?: unknown): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (err && code !== 'ELOOP' && code !== 'ENOTDIR' && code !== 'ENOENT') return err as Error;
  return new RefusedError(`${dir} changed while pi-prep was writing into it (a symlink or another directory is there now): nothing was written; find what else changes it, then run again`);
}

/** A name inside the directory FH holds, for calls that take a path (Linux's openat). */
function inDir(fh: FileHandle, name: string): string {
  return `/proc/self/fd/${fh.fd}/${name}`;
}

const NEW_TEMP = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW;

/**
 * Replace a file so that a crash at any moment leaves the old or the new contents, never a mix:
 * write a temp file in the same directory, fsync it, rename over, fsync the directory.
 */
export async function atomicWrite(path: string, data: string | Buffer, mode?: number, decided?: DirDecision): Promise<void> {
  const dir = await recheck(decided ?? (await decideDir(dirname(path))));
  try {
    const name = basename(path);
    await sweepStaleTemps(dir, name);
    const tmp = tempNameFor(name);
    const old = await stat(inDir(dir, name)).catch(() => undefined);
    const want = mode ?? (old ? old.mode & 0o7777 : 0o644);
    const fh = await open(inDir(dir, tmp), NEW_TEMP, want);
    const forget = onInterrupt(() => unlink(inDir(dir, tmp)).catch(() => undefined));
    try {
      try {
        await fh.writeFile(data);
        await fh.chmod(want);
        await fh.sync();
      } catch (err) {
        await fh.close();
        await unlink(inDir(dir, tmp)).catch(() => undefined);
        throw err;
      }
      await fh.close();
      await rename(inDir(dir, tmp), inDir(dir, name));
    } finally {
      forget();
    }
    await syncDir(dir);
  } finally {
    await dir.close();
  }
}

/** Copy a host file into place with the same guarantees as atomicWrite. */
export async function atomicCopy(src: string, path: string, mode?: number, decided?: DirDecision): Promise<void> {
  const dir = await recheck(decided ?? (await decideDir(dirname(path))));
  try {
    const name = basename(path);
    await sweepStaleTemps(dir, name);
    const tmp = tempNameFor(name);
    const forget = onInterrupt(() => unlink(inDir(dir, tmp)).catch(() => undefined));
    try {
      try {
        // EXCL: never through a link planted at the temp's name.
        await copyFile(src, inDir(dir, tmp), constants.COPYFILE_EXCL);
        const fh = await open(inDir(dir, tmp), constants.O_RDWR | constants.O_NOFOLLOW);
        try {
          if (mode !== undefined) await fh.chmod(mode);
          await fh.sync();
        } finally {
          await fh.close();
        }
      } catch (err) {
        await unlink(inDir(dir, tmp)).catch(() => undefined);
        throw err;
      }
      await rename(inDir(dir, tmp), inDir(dir, name));
    } finally {
      forget();
    }
    await syncDir(dir);
  } finally {
    await dir.close();
  }
}

/** Keep the first version of a file: later backups never overwrite the original. */
export async function backupOnce(path: string, decided?: DirDecision): Promise<string | undefined> {
  const d = decided ?? (await decideDir(dirname(path)));
  const bak = path + BACKUP_SUFFIX;
  const dir = await recheck(d);
  try {
    if (!(await stat(inDir(dir, basename(path))).catch(() => undefined))) return undefined;
    const have = await lstat(inDir(dir, basename(bak))).catch(() => undefined);
    // Only a plain file is pi-prep's backup: a planted link would stand in for it and hide the original.
    if (have && !have.isFile()) throw new RefusedError(`${bak} is a ${have.isSymbolicLink() ? 'symlink' : 'directory or special file'}, not pi-prep's backup: remove it, then run again`);
    if (have) return bak;
    await atomicCopy(inDir(dir, basename(path)), bak, undefined, d);
    return bak;
  } finally {
    await dir.close();
  }
}

/** `.<name>.pi-prep-<pid>-<8 hex>.tmp`: the writer's pid lets a later run tell a dead run's leftover. */
function tempNameFor(name: string): string {
  return `.${name}.pi-prep-${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
}

/**
 * A run killed with -9 leaves its temp file (for the token file, a full token copy): the next
 * write of the same file removes those whose process is gone, and those from before temp names
 * carried a pid.
 */
async function sweepStaleTemps(dir: FileHandle, file: string): Promise<void> {
  const prefix = `.${file}.pi-prep-`;
  for (const name of await readdir(inDir(dir, '.')).catch(() => [] as string[])) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const m = /^(?:(\d+)-)?[0-9a-f]{8}\.tmp$/.exec(name.slice(prefix.length));
    if (m && !(m[1] && pidAlive(Number(m[1])))) await unlink(inDir(dir, name)).catch(() => undefined);
  }
}

async function syncDir(dir: FileHandle): Promise<void> {
  // Some filesystems (vfat via fuse, for one) refuse fsync on a directory; the rename is still done.
  await dir.sync().catch(() => undefined);
}
