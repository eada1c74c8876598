import { open, rename, copyFile, unlink, stat, lstat, chmod, readdir } from 'node:fs/promises';
import { RefusedError } from './errors.js';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { onInterrupt } from './cleanup.js';
import { pidAlive } from './pid.js';

export const BACKUP_SUFFIX = '.pi-prep.bak';

/**
 * Replace a file so that a crash at any moment leaves the old or the new contents, never a mix:
 * write a temp file in the same directory, fsync it, rename over, fsync the directory.
 */
export async function atomicWrite(path: string, data: string | Buffer, mode?: number): Promise<void> {
  await sweepStaleTemps(path);
  const tmp = tempNameFor(path);
  const old = await stat(path).catch(() => undefined);
  const fh = await open(tmp, 'wx', mode ?? (old ? old.mode & 0o7777 : 0o644));
  const forget = onInterrupt(() => unlink(tmp).catch(() => undefined));
  try {
    try {
      await fh.writeFile(data);
      await fh.chmod(mode ?? (old ? old.mode & 0o7777 : 0o644));
      await fh.sync();
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    await rename(tmp, path);
  } finally {
    forget();
  }
  await syncDir(dirname(path));
}

/** Copy a host file into place with the same guarantees as atomicWrite. */
export async function atomicCopy(src: string, path: string, mode?: number): Promise<void> {
  await sweepStaleTemps(path);
  const tmp = tempNameFor(path);
  const forget = onInterrupt(() => unlink(tmp).catch(() => undefined));
  try {
    try {
      await copyFile(src, tmp);
      if (mode !== undefined) await chmod(tmp, mode);
      const fh = await open(tmp, 'r+');
      await fh.sync();
      await fh.close();
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await rename(tmp, path);
  } finally {
    forget();
  }
  await syncDir(dirname(path));
}

/** Keep the first version of a file: later backups never overwrite the original. */
export async function backupOnce(path: string): Promise<string | undefined> {
  const bak = path + BACKUP_SUFFIX;
  if (!(await stat(path).catch(() => undefined))) return undefined;
  const have = await lstat(bak).catch(() => undefined);
  // Only a plain file is pi-prep's backup: a planted link would stand in for it and hide the original.
  if (have && !have.isFile()) throw new RefusedError(`${bak} is a ${have.isSymbolicLink() ? 'symlink' : 'directory or special file'}, not pi-prep's backup: remove it, then run again`);
  if (have) return bak;
  await atomicCopy(path, bak);
  return bak;
}

/** `.<name>.pi-prep-<pid>-<8 hex>.tmp`: the writer's pid lets a later run tell a dead run's leftover. */
function tempNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.pi-prep-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * A run killed with -9 leaves its temp file (for the token file, a full token copy): the next
 * write of the same file removes those whose process is gone, and those from before temp names
 * carried a pid.
 */
async function sweepStaleTemps(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.pi-prep-`;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const m = /^(?:(\d+)-)?[0-9a-f]{8}\.tmp$/.exec(name.slice(prefix.length));
    if (m && !(m[1] && pidAlive(Number(m[1])))) await unlink(join(dir, name)).catch(() => undefined);
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  // Some filesystems (vfat via fuse, for one) refuse fsync on a directory; the rename is still done.
  await fh.sync().catch(() => undefined);
  await fh.close();
}
