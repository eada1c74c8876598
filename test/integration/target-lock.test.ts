import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from '../helpers/until.js';
import { CLI, runCli } from '../helpers/cli.js';
import { TestHttpServer } from '../helpers/http-server.js';
import { alpineTarball, partitions } from '../helpers/card-inspect.js';
import { lockPath } from '../../src/core/target-lock.js';

const FILE = 'alpine-rpi-3.21.2-aarch64.tar.gz';

describe('one run per target: a second run is refused with the holder\'s pid (exit 3)', () => {
  let server: TestHttpServer;
  let work: string;
  let locks: string;
  const saved = process.env.PI_PREP_LOCK_DIR;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'pi-prep-lock-'));
    locks = join(work, 'locks');
    process.env.PI_PREP_LOCK_DIR = locks;
    const body = readFileSync(alpineTarball());
    const sha = createHash('sha256').update(body).digest('hex');
    server = await new TestHttpServer().start();
    server.routes.set('/m/latest-stable/releases/aarch64/latest-releases.yaml', {
      body: `---\n- branch: v3.21\n  arch: aarch64\n  version: 3.21.2\n  flavor: alpine-rpi\n  file: ${FILE}\n  size: ${body.length}\n  sha256: ${sha}\n`,
    });
    // The first run is held here, mid-download, holding the card's lock.
    server.routes.set(`/m/latest-stable/releases/aarch64/${FILE}`, { body, stallAfter: 64 * 1024 });
  });
  after(async () => {
    if (saved === undefined) delete process.env.PI_PREP_LOCK_DIR;
    else process.env.PI_PREP_LOCK_DIR = saved;
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const env = () => ({ XDG_CACHE_HOME: mkdtempSync(join(work, 'cache-')), PI_PREP_LOCK_DIR: locks });

  it('two alpine-sd runs on one image: the second is refused naming the first; the lock goes with the first', async () => {
    const img = join(work, 'card.img');
    const e = env();
    const first = spawn(process.execPath, [CLI, 'alpine-sd', img, '--no-ssh', '--hostname', 'pi-t', '--alpine-version', 'latest', '--alpine-mirror', `${server.url}/m`, '--size', '600M'], {
      env: { ...process.env, ...e }, stdio: ['ignore', 'ignore', 'ignore'],
    });
    const exited = new Promise<number | null>((r) => first.on('close', (c) => r(c)));
    const cache = join(e.XDG_CACHE_HOME, 'pi-prep', 'alpine');
    await until(() => existsSync(cache) && readdirSync(cache).some((n) => n.endsWith('.part')), exited);
    assert.equal(readFileSync(lockPath(img), 'utf8'), `${first.pid}\n${img}\n`);

    const second = await runCli(['alpine-sd', img, '--no-ssh', '--hostname', 'pi-t', '--tarball', alpineTarball(), '--size', '600M'], { env: env() });
    assert.equal(second.code, 3, second.stderr);
    assert.equal(second.stderr, `pi-prep: ${img} is in use by another pi-prep run (pid ${first.pid}): wait for it to finish or stop it, then run again\n`);

    first.kill('SIGTERM');
    assert.equal(await exited, 143);
    assert.equal(existsSync(lockPath(img)), false, 'the lock was released on SIGTERM');
  });

  it('a lock left by a killed run (its pid gone) is taken over, and the run completes', async () => {
    const img = join(work, 'adopted.img');
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    const { mkdirSync } = await import('node:fs');
    mkdirSync(locks, { recursive: true });
    writeFileSync(lockPath(img), `${pidMax + 1}\n${img}\n`);
    const r = await runCli(['alpine-sd', img, '--no-ssh', '--hostname', 'pi-t', '--tarball', alpineTarball(), '--size', '600M'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(partitions(img).length, 2);
    assert.equal(existsSync(lockPath(img)), false);
  });
});
