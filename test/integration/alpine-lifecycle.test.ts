import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { TAG, sampleWorkerToken } from '../helpers/k0s-release.js';
import type { TestHttpServer } from '../helpers/http-server.js';
import { alpineTarball } from '../helpers/card-inspect.js';
import { SimAlpinePi } from '../helpers/pi-sim/alpine-pi.js';
import { simK0sRelease } from '../helpers/pi-sim/release.js';
import { jsonData } from '../helpers/json-contract.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMhg0pHc9Q1bqmKq2u9lqv1t8bq5cP0E9g0k8Vt1x5oN me@laptop';
const MT = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

/** A file of the card's FAT partition (at 4 MiB), read with mtools: what any workstation sees. */
function fatFile(img: string, path: string): string | undefined {
  try {
    return execFileSync('mtype', ['-i', `${img}@@${4 * 1024 * 1024}`, `::/${path}`], { env: MT }).toString();
  } catch {
    return undefined;
  }
}

/** The raw bytes of the card's FAT boot partition (4 MiB, 256 MiB long), where anyone can read them. */
function bootPartition(img: string): Buffer {
  const fd = openSync(img, 'r');
  try {
    const buf = Buffer.alloc(256 * 1024 * 1024);
    readSync(fd, buf, 0, buf.length, 4 * 1024 * 1024);
    return buf;
  } finally {
    closeSync(fd);
  }
}

describe('an alpine-sd card through boots (simulated diskless Alpine on a loop device)', () => {
  let server: TestHttpServer;
  let work: string;
  let token: string;
  let tokenFile: string;
  let keyFile: string;
  let tarball: string;
  const pis: SimAlpinePi[] = [];

  before(async () => {
    server = await simK0sRelease();
    work = mkdtempSync(join(tmpdir(), 'pi-prep-life-'));
    token = await sampleWorkerToken();
    tokenFile = join(work, 'worker.token');
    writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
    keyFile = join(work, 'id.pub');
    writeFileSync(keyFile, KEY + '\n');
    tarball = alpineTarball();
  });
  after(async () => {
    for (const pi of pis) pi.destroy();
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  });

  async function card(name: string): Promise<string> {
    const img = join(work, `${name}.img`);
    const r = await runCli(['alpine-sd', img, '--tarball', tarball, '--size', '600M', '--hostname', name, '--ssh-key', keyFile,
      '--join', `@${tokenFile}`, '--k0s-mirror', server.url, '--k0s-version', TAG]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    return img;
  }
  const pi = (image: string, o: Partial<ConstructorParameters<typeof SimAlpinePi>[0]> = {}) => {
    const p = new SimAlpinePi({ image, ...o });
    pis.push(p);
    return p;
  };

  it('boots, joins on the first boot, and after 3 reboots the worker runs and root still logs in with the key', async () => {
    const img = await card('pi-w1');
    const p = pi(img);
    const first = p.boot();
    assert.deepEqual(first.errors, [], 'first boot');
    assert.ok(p.workerRunning(), 'the worker runs after the first boot');
    assert.equal(p.sshLogin(KEY), true);
    assert.equal(first.calls.filter((c) => c[0] === 'k0s' && c[1] === 'install').length, 1);
    assert.deepEqual(p.violations(), []);
    for (let i = 0; i < 3; i++) {
      const b = p.reboot();
      assert.deepEqual(b.errors, [], `boot ${b.n}`);
      assert.deepEqual(b.missingPackages, [], `boot ${b.n}: every package of the world comes back (apk cache on the card)`);
      assert.ok(p.workerRunning(), `boot ${b.n}: the worker runs`);
      assert.equal(p.sshLogin(KEY), true, `boot ${b.n}: ssh`);
      assert.ok(!b.calls.some((c) => c[0] === 'k0s' && c[1] === 'install'), `boot ${b.n}: no second install`);
      assert.ok(!b.started.includes('pi-prep-first-boot'), `boot ${b.n}: the first-boot job is done for good`);
      assert.deepEqual(p.violations(), []);
    }
    assert.match(p.chroot(['/bin/cat', '/var/lib/k0s/kubelet.conf']).stdout, new RegExp(md5(token + '\n')), 'joined with this token');
    p.shutdown();
    const status = fatFile(img, 'pi-prep/status') ?? '';
    assert.match(status, /^state=joined$/m);
    assert.match(fatFile(img, 'pi-prep/first-boot.log') ?? '', /state=joined/);
    assert.equal(bootPartition(img).indexOf(token.slice(0, 40)), -1, 'the token is on the FAT boot partition');
  });

  it('a power cut after any step of the first boot: the next boot still ends in one running worker, on the same partitions', async () => {
    const pristine = await card('pi-w2');
    const copy = (n: number) => {
      const img = join(work, `cut-${n}.img`);
      execFileSync('cp', ['--sparse=always', pristine, img]);
      return img;
    };
    const dump = (img: string) => execFileSync('sfdisk', ['--dump', img]).toString().split(img).join('CARD');
    const table = dump(pristine);
    const uuid = (img: string) => execFileSync('blkid', ['-p', '-O', String(532480 * 512), '-s', 'UUID', '-o', 'value', img]).toString().trim();
    const dataUuid = uuid(pristine);
    assert.match(dataUuid, /^[0-9a-f-]{36}$/);
    const probe = pi(copy(0));
    const steps = probe.boot().calls;
    assert.ok(steps.length >= 15, `the first boot records its steps (${steps.length})`);
    const committed = steps.findIndex((c) => c[0] === 'lbu' && c[1] === 'commit');
    probe.destroy();
    for (let n = 1; n <= steps.length; n++) {
      const at = `cut after step ${n} (${steps[n - 1]!.join(' ')})`;
      const img = copy(n);
      const p = new SimAlpinePi({ image: img });
      try {
        assert.ok(p.boot({ cutAt: n }).cut, at);
        p.powerCut();
        const next = p.boot();
        assert.deepEqual(next.errors, [], at);
        assert.ok(p.workerRunning(), `${at}: the worker runs`);
        assert.equal(p.sshLogin(KEY), true, at);
        const installs = next.calls.filter((c) => c[0] === 'k0s' && c[1] === 'install').length;
        assert.ok(installs <= (n > committed + 3 ? 0 : 1), `${at}: ${installs} k0s installs in the next boot`);
        assert.deepEqual(p.violations(), [], at);
        p.shutdown();
        assert.equal(dump(img), table, `${at}: the partition table changed`);
        assert.equal(uuid(img), dataUuid, `${at}: the data partition was formatted again`);
        assert.match(fatFile(img, 'pi-prep/status') ?? '', /^state=joined$/m, at);
      } finally {
        p.destroy();
        rmSync(img, { force: true });
      }
    }
  });

  it('a card that cannot join says why on its boot partition (check --card), keeps trying with backoff, and joins once the network and controller answer', async () => {
    const img = await card('pi-w3');
    const p = pi(img);
    p.network = false;
    const stuck = p.boot();
    assert.match(stuck.errors.join('\n'), /still waiting after 30 tries/);
    const waits = stuck.calls.filter((c) => c[0] === 'sleep').map((c) => Number(c[1]));
    assert.deepEqual(waits.slice(0, 8), [5, 10, 20, 40, 80, 160, 300, 300], 'backoff: doubling from 5 s, at most 5 min');
    assert.ok(p.sshLogin(KEY) === true, 'sshd is up while the job waits (it runs in the background)');
    p.powerCut();
    const r1 = await runCli(['check', '--card', img]);
    assert.equal(r1.code, 1, r1.stderr);
    assert.match(r1.stdout, /state: waiting-network \(try \d+\)/);
    assert.match(r1.stdout, /no default route, or the package mirror does not answer/);
    assert.match(r1.stdout, /next: check the cable/);
    assert.ok(!r1.stdout.includes(token), 'the token in the output');
    assert.equal(bootPartition(img).indexOf(token.slice(0, 40)), -1, 'the token is on the FAT boot partition');

    // The network is back; the controller answers only from the third wait on.
    p.network = true;
    p.controller = false;
    p.onSleep = '[ "$n" -ge 2 ] && rm -f /.sim/controller-down';
    const late = p.boot();
    assert.deepEqual(late.errors, []);
    assert.ok(late.calls.some((c) => c[0] === 'nc'), 'the controller is probed');
    assert.ok(p.workerRunning());
    p.shutdown();
    const r2 = await runCli(['check', '--card', img, '--json']);
    assert.equal(r2.code, 0, r2.stdout + r2.stderr);
    assert.equal(jsonData<{ state: string }>(r2.stdout, 'check').state, 'joined');
  });

  it('the same card on a USB adapter or SSD (sda1): lbu and the apk cache follow the boot media, and reboots keep the worker', async () => {
    const img = await card('pi-u1');
    const p = pi(img, { bus: 'usb' });
    const first = p.boot();
    assert.deepEqual(first.errors, []);
    assert.ok(p.workerRunning());
    assert.match(p.chroot(['/bin/cat', '/etc/lbu/lbu.conf']).stdout, /^LBU_MEDIA=sda1$/m);
    assert.equal(p.chroot(['/bin/readlink', '/etc/apk/cache']).stdout.trim(), '/media/sda1/cache');
    assert.match(p.chroot(['/bin/cat', '/etc/apk/repositories']).stdout, /^\/media\/sda1\/apks$/m);
    for (let i = 0; i < 2; i++) {
      const b = p.reboot();
      assert.deepEqual(b.errors, [], `boot ${b.n}`);
      assert.deepEqual(b.missingPackages, [], `boot ${b.n}: packages from the cache on sda1`);
      assert.ok(p.workerRunning(), `boot ${b.n}`);
      assert.equal(p.sshLogin(KEY), true);
    }
    p.shutdown();
    assert.match(fatFile(img, 'pi-prep/status') ?? '', /^state=joined$/m);
  });
});
