import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { TAG, sampleWorkerToken } from '../helpers/k0s-release.js';
import type { TestHttpServer } from '../helpers/http-server.js';
import { alpineTarball } from '../helpers/card-inspect.js';
import { SimAlpinePi } from '../helpers/pi-sim/alpine-pi.js';
import { simK0sRelease } from '../helpers/pi-sim/release.js';

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
    const everything = execFileSync('mtype', ['-i', `${img}@@${4 * 1024 * 1024}`, '::/pi-prep/first-boot.log'], { env: MT }).toString() + status;
    assert.ok(!everything.includes(token), 'the token reached the boot partition');
  });
});
