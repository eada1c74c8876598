import { createHash } from 'node:crypto';
import { accessSync, closeSync, constants, openSync, readFileSync, renameSync, unlinkSync, writeSync, mkdirSync } from 'node:fs';
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
  try {
    const pid = Number(readFileSync(lockPath(key), 'utf8').split('\n')[0]);
    return pidAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Take the lock for KEY (what the user knows it as: `label`), or refuse naming the holder. */
export function lockTarget(key: string, label: string): () => void {
  const path = lockPath(key);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n${key}\n`);
      closeSync(fd);
      let held = true;
      const release = () => {
        if (!held) return;
        held = false;
        forget();
        process.removeListener('exit', release);
        try {
          if (readFileSync(path, 'utf8').split('\n')[0] === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      };
      const forget = onInterrupt(release);
      process.once('exit', release);
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder: number;
    try {
      holder = Number(readFileSync(path, 'utf8').split('\n')[0]);
    } catch {
      continue; // released meanwhile
    }
    if (holder === process.pid) throw new RefusedError(`${label} is already locked by this run`);
    if (pidAlive(holder)) {
      throw new RefusedError(`${label} is in use by another pi-prep run (pid ${holder}): wait for it to finish or stop it, then run again`);
    }
    // The holder is gone: move its lock aside (only one taker wins the rename), then try again.
    try {
      renameSync(path, `${path}.stale-${process.pid}`);
      unlinkSync(`${path}.stale-${process.pid}`);
    } catch {
      // another run took it over first: the next attempt sees that run's lock
    }
  }
  throw new RefusedError(`${label} is in use by another pi-prep run: wait for it to finish, then run again`);
}
