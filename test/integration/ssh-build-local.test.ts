import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeRoot } from '../helpers/fixture-root.js';
import { piRoot } from '../helpers/rpi-fixture.js';
import { runCli } from '../helpers/cli.js';
import { treeHash } from '../helpers/tree-hash.js';
import { TestSshd, chrootable, makeClientKey, type ClientKey } from '../helpers/sshd.js';

// A full cross build of the kernel takes far longer than a test may; the plan shows the whole
// walk (build here, install over SSH), and the real install path is the Target's putFile, tested
// in ssh-remote.test.ts.
describe('rpios --host --build-local: build on this machine, install over SSH', () => {
  let key: ClientKey;
  let root: string;
  let sshd: TestSshd;
  let work: string;

  before(async () => {
    key = makeClientKey();
    root = chrootable(() => piRoot({ board: 'pi4' }));
    sshd = await new TestSshd(key, ['Match User root', `  ChrootDirectory ${root}`]).start();
    work = mkdtempSync(join(tmpdir(), 'pi-prep-build-local-'));
  });
  after(async () => {
    await sshd.stop();
    removeRoot(root);
    rmSync(work, { recursive: true, force: true });
    rmSync(key.dir, { recursive: true, force: true });
  });

  it('dry run: the build runs here (cross), the results are copied to the Pi, nothing changed', async () => {
    const before = treeHash(root);
    const res = await runCli([
      'rpios', '--dry-run', '--host', sshd.host('root'), ...sshd.cliArgs(), '--build-local', '--kernel', 'rebuild',
      '--kernel-repo', join(work, 'linux'), '--kernel-workdir', join(work, 'build'),
    ], { env: { XDG_CACHE_HOME: join(work, 'cache') } });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^# pi-prep rpios \(dry run\) on root@127\.0\.0\.1:\d+$/m);
    assert.match(res.stdout, /build tools on this machine .*cross-compiling for arm64/);
    assert.match(res.stdout, /on this machine: run `make -C \S+ ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- LOCALVERSION= -j\d+ Image\.gz modules dtbs`/);
    assert.match(res.stdout, /copy \S+\/arch\/arm64\/boot\/Image\.gz to \/boot\/firmware\/kernel8-k0s\.img/);
    assert.match(res.stdout, /\+ kernel=kernel8-k0s\.img/);
    assert.equal(treeHash(root), before);
  });

  it('a rebuild over SSH without --build-local is one line naming it; --build-local without --host is bad usage', async () => {
    const res = await runCli(['rpios', '--dry-run', '--host', sshd.host('root'), ...sshd.cliArgs(), '--kernel', 'rebuild']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^pi-prep: .*a kernel build over SSH needs --build-local .*\n$/);
    const bad = await runCli(['rpios', '--dry-run', '--build-local', '--root', root]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--build-local builds here for a Pi reached with --host/);
  });
});
