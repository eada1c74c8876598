import { createHash, randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, fstatSync, linkSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RefusedError } from './errors.js';
import { onInterrupt } from './cleanup.js';
import { pidAlive } from './pid.js';

/**
 * One run per target (a card or image, a root directory, a host, this machine): two runs that
 * interleave their writes leave a card or node that neither meant. A lock file named for the
 * target holds the holder's pid; a second run is refused with it (exit 3). A holder that died
 * (kill -9, power cut) leaves a lock whose pid is gone: the next run takes it over.
 */
export function lockDir(): string {
  const env = process.env.PI_PREP_LOCK_DIR;
  for (const dir of env ? [env] : ['/run/lock/pi-prep', join(tmpdir(), `pi-prep-locks-${process.getuid?.() ?? 'user'}`)]) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      accessSync(dir, constants.W_OK); // root's 0700 directory, for a user running --host
      return dir;
    } catch {
      // not writable here (not root, no /run/lock): the next one
    }
  }
  return tmpdir();
}

export function lockPath(key: string): string {
  return join(lockDir(), `${createHash('sha256').update(key).digest('hex').slice(0, 24)}.lock`);
}

/** The live pid holding KEY's lock, if any. */
export function lockHolder(key: string): number | undefined {
  const pid = readLock(lockPath(key))?.pid;
  return pid !== undefined && pidAlive(pid) ? pid : undefined;
}

/** Test seam: called when a dead holder's lock is about to be broken (the point two runs race at). */
export interface LockHooks {
  beforeBreak?: (deadPid: number) => void;
}

/** Take the lock for KEY (what the user knows it as: `label`), or refuse naming the holder. */
export function lockTarget(key: string, label: string, hooks: LockHooks = {}): () => void {
  const path = lockPath(key);
  for (let attempt = 0; attempt < 10; attempt++) {
    if (create(path, `${process.pid}\n${key}\n`)) return holding(path);
    const seen = readLock(path);
    if (!seen) continue; // released meanwhile
    if (seen.pid === process.pid) throw new RefusedError(`${label} is already locked by this run`);
    if (pidAlive(seen.pid)) {
      throw new RefusedError(`${label} is in use by another pi-prep run (pid ${seen.pid}): wait for it to finish or stop it, then run again`);
    }
    hooks.beforeBreak?.(seen.pid);
    breakStale(path, seen.ino);
  }
  throw new RefusedError(`${label} is in use by another pi-prep run: wait for it to finish, then run again`);
}

/**
 * The lock appears whole (pid and key) or not at all: written to a private file, then linked into
 * place, which fails if a lock is there. A lock created empty and filled after would read as
 * "pid 0, dead" to a run looking at that moment, which would then break it.
 */
function create(path: string, content: string): boolean {
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.new`;
  writeFileSync(tmp, content, { mode: 0o644, flag: 'wx' });
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    unlinkSync(tmp);
  }
}

/** The holder's pid and the lock file's inode, read through one descriptor (one file, not two). */
function readLock(path: string): { pid: number; ino: number } | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    return { pid: Number(readFileSync(fd, 'utf8').split('\n')[0]), ino: fstatSync(fd).ino };
  } finally {
    closeSync(fd);
  }
}

/**
 * Remove the lock with inode INO, whose holder is dead. Two runs that both saw it dead must not
 * both break it: the second would remove the lock the first has just taken. Only the run that
 * creates `<lock>.break-<INO>` (O_EXCL) may remove it, and only if the lock there still is that
 * file with a dead holder; a run that loses looks again (and then sees the winner's live lock).
 */
function breakStale(path: string, ino: number): void {
  const marker = `${path}.break-${ino}`;
  try {
    writeFileSync(marker, `${process.pid}\n`, { mode: 0o644, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another run is breaking it; one killed while doing so leaves its marker: removed here.
    const breaker = Number(readFileSyncOr(marker).split('\n')[0]);
    if (!pidAlive(breaker)) rmSync(marker, { force: true });
    return;
  }
  try {
    const now = readLock(path);
    if (now && now.ino === ino && !pidAlive(now.pid)) unlinkSync(path);
  } finally {
    rmSync(marker, { force: true });
  }
}

function readFileSyncOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Held: released on return, on exit and on a signal, once; only if it still is ours. */
function holding(path: string): () => void {
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    forget();
    process.removeListener('exit', release);
    if (readLock(path)?.pid === process.pid) rmSync(path, { force: true });
  };
  const forget = onInterrupt(release);
  process.once('exit', release);
  return release;
}
