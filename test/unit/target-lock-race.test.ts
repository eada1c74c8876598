import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lockPath, lockTarget } from '../../src/core/target-lock.js';
import { RefusedError } from '../../src/core/errors.js';
import { pidAlive } from '../../src/core/pid.js';

const LOCK_MODULE = fileURLToPath(new URL('../../src/core/target-lock.js', import.meta.url));
const deadPid = () => Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) + 1;

/** Block this (synchronous) run until COND holds: another process is acting meanwhile. */
function holdUntil(cond: () => boolean, alive: () => boolean): void {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  while (!cond()) {
    if (!alive()) throw new Error('the other run ended before reaching the point the test waits for');
    Atomics.wait(nap, 0, 0, 10);
  }
}

describe('a dead holder\'s lock is taken over by one run only', () => {
  let dir: string;
  const saved = process.env.PI_PREP_LOCK_DIR;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pi-prep-lockrace-'));
    process.env.PI_PREP_LOCK_DIR = join(dir, 'locks');
  });
  after(() => {
    if (saved === undefined) delete process.env.PI_PREP_LOCK_DIR;
    else process.env.PI_PREP_LOCK_DIR = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('two runs that both found the same stale lock: the second to break it is refused with the first\'s pid', async () => {
    const key = join(dir, 'card.img');
    writeFileSync(lockPath(key), `${deadPid()}\n${key}\n`);
    const [go, held] = [join(dir, 'go'), join(dir, 'held')];
    // Run B: waits for the go, takes the lock over, says so, and stays alive holding it.
    const b = spawn(process.execPath, ['--input-type=module', '-e', `
      import { existsSync, writeFileSync } from 'node:fs';
      const { lockTarget } = await import(${JSON.stringify(LOCK_MODULE)});
      while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 10));
      lockTarget(${JSON.stringify(key)}, 'B');
      writeFileSync(${JSON.stringify(held)}, String(process.pid));
      setInterval(() => {}, 1 << 30);
    `], { env: process.env, stdio: ['ignore', 'inherit', 'inherit'] });
    const bExit = new Promise((r) => b.on('exit', r));
    try {
      // Run A saw the dead pid and is about to break the lock: held there while B takes it over.
      assert.throws(
        () => lockTarget(key, 'the card', {
          beforeBreak: () => {
            writeFileSync(go, '');
            holdUntil(() => existsSync(held), () => pidAlive(b.pid!));
          },
        }),
        (err: unknown) => {
          assert.ok(err instanceof RefusedError);
          assert.equal(err.message, `the card is in use by another pi-prep run (pid ${b.pid}): wait for it to finish or stop it, then run again`);
          return true;
        },
      );
      assert.equal(readFileSync(lockPath(key), 'utf8'), `${b.pid}\n${key}\n`, 'B still holds the lock');
    } finally {
      b.kill('SIGKILL');
      await bExit;
    }
  });

  it('a run killed while breaking a stale lock does not block the next one', () => {
    const key = join(dir, 'other.img');
    const path = lockPath(key);
    writeFileSync(path, `${deadPid()}\n${key}\n`);
    writeFileSync(`${path}.break-${statSync(path).ino}`, `${deadPid()}\n`);
    const release = lockTarget(key, 'the image');
    assert.equal(readFileSync(path, 'utf8'), `${process.pid}\n${key}\n`);
    release();
    assert.equal(existsSync(path), false);
  });
});
