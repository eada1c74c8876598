import { open, rename, copyFile, unlink, stat, chmod } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const BACKUP_SUFFIX = '.pi-prep.bak';

/**
 * Replace a file so that a crash at any moment leaves the old or the new contents, never a mix:
 * write a temp file in the same directory, fsync it, rename over, fsync the directory.
 */
export async function atomicWrite(path: string, data: string | Buffer, mode?: number): Promise<void> {
  const tmp = tempNameFor(path);
  const old = await stat(path).catch(() => undefined);
  const fh = await open(tmp, 'wx', mode ?? (old ? old.mode & 0o7777 : 0o644));
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
  await syncDir(dirname(path));
}

/** Copy a host file into place with the same guarantees as atomicWrite. */
export async function atomicCopy(src: string, path: string, mode?: number): Promise<void> {
  const tmp = tempNameFor(path);
  await copyFile(src, tmp);
  try {
    if (mode !== undefined) await chmod(tmp, mode);
    const fh = await open(tmp, 'r+');
    await fh.sync();
    await fh.close();
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await rename(tmp, path);
  await syncDir(dirname(path));
}

/** Keep the first version of a file: later backups never overwrite the original. */
export async function backupOnce(path: string): Promise<string | undefined> {
  const bak = path + BACKUP_SUFFIX;
  if (!(await stat(path).catch(() => undefined))) return undefined;
  if (await stat(bak).catch(() => undefined)) return bak;
  await atomicCopy(path, bak);
  return bak;
}

function tempNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.pi-prep-${randomBytes(4).toString('hex')}.tmp`);
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  // Some filesystems (vfat via fuse, for one) refuse fsync on a directory; the rename is still done.
  await fh.sync().catch(() => undefined);
  await fh.close();
}
