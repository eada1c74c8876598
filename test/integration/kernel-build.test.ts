import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeRoot, writeFile } from '../helpers/fixture-root.js';
import { runCli } from '../helpers/cli.js';
import { treeHash } from '../helpers/tree-hash.js';
import { BOOKWORM_CMDLINE, BOOKWORM_CONFIG, piRoot } from '../helpers/rpi-fixture.js';
import { TINY_EXTRA, kernelRepo } from '../helpers/kernel-repo.js';
import { TAG, sampleWorkerToken } from '../helpers/k0s-release.js';
import type { TestHttpServer } from '../helpers/http-server.js';
import { bootRpiOs } from '../helpers/pi-sim/rpios-boot.js';
import { runCliTraced } from '../helpers/exec-trace.js';
import { planAgainstRun, reportOf } from '../helpers/plan-witness.js';
import { simK0sRelease } from '../helpers/pi-sim/release.js';

const PATCHED = BOOKWORM_CMDLINE.trimEnd() + ' cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n';
const RELEASE = '6.1.192-k0s';

/**
 * The whole rebuild on a real kernel tree: the recipe clones a local repository made from
 * Debian's linux-source (branch rpi-6.1.y, picked from the running 6.1 kernel), configures
 * tinyconfig + kernel-configs/ + what the Pi DTBs need, cross-builds Image.gz, modules and dtbs,
 * installs into a Pi 4 root, and rolls back. About 4 minutes on 2 cores (docs/kernel.md).
 */
describe('pi-prep rpios --kernel rebuild on a real kernel tree (cross-built, installed into a Pi 4 root)', () => {
  let work: string;
  let repo: string;
  let root: string;
  let sim: TestHttpServer;
  before(async () => {
    sim = await simK0sRelease();
    repo = kernelRepo();
    work = mkdtempSync(join(tmpdir(), 'pi-prep-kbuild-'));
    writeFileSync(join(work, 'tiny-extra.config'), TINY_EXTRA);
    root = piRoot({ board: 'pi4', cmdline: PATCHED, without: ['CFS_BANDWIDTH'] });
    // Bookworm's first kernel was 6.1: the recipe picks rpi-6.1.y from it.
    writeFile(root, '/proc/sys/kernel/osrelease', '6.1.0-rpi7-rpi-v8\n');
    writeFile(root, '/boot/config-6.1.0-rpi7-rpi-v8', readFileSync(join(root, 'boot/config-6.6.51+rpt-rpi-v8')));
    writeFile(root, '/boot/firmware/bcm2711-rpi-400.dtb', Buffer.from('stock pi 400 dtb\n'));
  });
  after(async () => {
    await sim.stop();
    rmSync(work, { recursive: true, force: true });
    removeRoot(root);
  });
  const args = (...more: string[]) => [
    'rpios', '--root', root, '--kernel-repo', repo, '--kernel-defconfig', 'tinyconfig',
    '--kernel-fragment', join(work, 'tiny-extra.config'), '--kernel-workdir', join(work, 'linux'), '--kernel-jobs', '3', ...more,
  ];

  it('a branch the repository lacks is named with the fix, nothing changed', async () => {
    const h = treeHash(root);
    const res = await runCli([...args(), '--kernel-branch', 'rpi-5.4.y']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, new RegExp(`no branch rpi-5.4.y at ${repo.replace(/[.]/g, '\\.')}: pass --kernel-branch`));
    assert.equal(treeHash(root), h);
  });

  // Issue 13 (plan equals run) on this very build: the dry run's plan from the same state, and the
  // real run under the exec witness (helpers/exec-trace.ts), compared by the test after this one.
  let proof: { problems: string[]; witnessed: string[] } | undefined;
  let rollbackProof: typeof proof;

  it('builds, installs as kernel8-k0s.img with backups, and --rollback-kernel restores every byte', async () => {
    const bootBefore = treeHash(join(root, 'boot/firmware'));
    const dtbBefore = readFileSync(join(root, 'boot/firmware/bcm2711-rpi-4-b.dtb'));
    const planned = await runCliTraced([...args(), '--dry-run', '--json']);
    assert.equal(planned.code, 0, planned.stderr);
    assert.equal(treeHash(join(root, 'boot/firmware')), bootBefore, 'the dry run changed nothing');
    const t0 = Date.now();
    const res = await runCliTraced(args('--json'));
    // Compared now, while the node is as the build left it (the runs below join and roll back).
    if (res.code === 0) {
      proof = planAgainstRun(reportOf(planned.stdout, 'rpios'), reportOf(res.stdout, 'rpios'), res.commands, planned.commands, {
        roots: [root],
        hostPath: (a) => (a.here ? a.path : join(root, a.path!)),
      });
    }
    const seconds = Math.round((Date.now() - t0) / 1000);
    process.stderr.write(`# kernel build pipeline: ${seconds}s\n`);
    assert.equal(res.code, 0, res.stderr.slice(-3000) + res.stdout.slice(-3000));
    assert.match(res.stdout, /6\.1\.0-rpi7-rpi-v8 lacks CONFIG_CFS_BANDWIDTH/);
    assert.match(res.stdout, /is not rebooted \(a root directory\)/);

    const linux = join(work, 'linux');
    const boot = join(root, 'boot/firmware');
    assert.deepEqual(readFileSync(join(boot, 'kernel8-k0s.img')), readFileSync(join(linux, 'arch/arm64/boot/Image.gz')));
    assert.equal(readFileSync(join(boot, 'kernel8.img'), 'utf8'), 'stock kernel8.img\n', 'stock kernel kept');
    assert.deepEqual(readFileSync(join(boot, 'bcm2711-rpi-4-b.dtb')), readFileSync(join(linux, 'arch/arm64/boot/dts/broadcom/bcm2711-rpi-4-b.dtb')));
    assert.deepEqual(readFileSync(join(boot, 'bcm2711-rpi-4-b.dtb.pi-prep.bak')), dtbBefore, 'replaced DTB backed up');
    assert.equal(readFileSync(join(boot, 'config.txt.pi-prep.bak'), 'utf8'), BOOKWORM_CONFIG);
    const cfg = readFileSync(join(boot, 'config.txt'), 'utf8');
    assert.ok(cfg.startsWith(BOOKWORM_CONFIG), 'every original line kept, in order');
    assert.equal(cfg.slice(BOOKWORM_CONFIG.length), '# pi-prep: k0s kernel (undo: pi-prep rpios --rollback-kernel)\n[all]\nkernel=kernel8-k0s.img\nauto_initramfs=0\n# pi-prep: end\n');
    const mods = join(root, 'lib/modules', RELEASE);
    assert.ok(existsSync(join(mods, 'modules.dep')), 'depmod output installed');
    assert.ok(readdirSync(join(mods, 'kernel/net/netfilter')).includes('xt_comment.ko'), 'fragment modules installed');
    assert.match(readFileSync(join(mods, 'config'), 'utf8'), /^CONFIG_CFS_BANDWIDTH=y$/m);
    const manifest = JSON.parse(readFileSync(join(root, 'var/lib/pi-prep/kernel-install.json'), 'utf8'));
    assert.equal(manifest.release, RELEASE);
    assert.ok(manifest.added.includes('/boot/firmware/kernel8-k0s.img'));
    assert.ok(manifest.replaced.includes('/boot/firmware/bcm2711-rpi-4-b.dtb'));
    const log = readFileSync(join(linux, 'pi-prep-build.log'), 'utf8');
    assert.match(log, /^\$ make -C \S+ ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- LOCALVERSION= tinyconfig\n/, 'the log starts with the configure step');
    assert.match(log, /\$ make -C \S+ ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- LOCALVERSION= -j3 Image\.gz modules dtbs\n[\s\S]*?\(exit 0\)/);

    // Before the reboot, a second run keeps what is installed and stops again for the reboot.
    const again = await runCli(args());
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /is not rebooted \(a root directory\)/);
    assert.match(readFileSync(join(boot, 'config.txt'), 'utf8'), /kernel=kernel8-k0s\.img/);

    // The user reboots: the firmware loads kernel8-k0s.img (its own banner names the release) with the new cmdline.
    const booted = bootRpiOs(root, 'pi4');
    assert.deepEqual([booted.kernel, booted.release], ['kernel8-k0s.img', RELEASE]);
    assert.ok(booted.controllers.includes('memory'), 'cgroup_enable=memory took effect');
    const tokenFile = join(work, 'worker.token');
    writeFileSync(tokenFile, (await sampleWorkerToken()) + '\n', { mode: 0o600 });
    const joined = await runCli([...args('--verbose'), '--join', `@${tokenFile}`, '--k0s-mirror', sim.url, '--k0s-version', TAG]);
    assert.equal(joined.code, 0, joined.stderr + joined.stdout.slice(-3000));
    assert.match(joined.stdout, /\[x\] After the reboot: kernel, cgroups and CFS bandwidth verified \(done: 6\.1\.192-k0s, memory controller on\)/);
    const next = bootRpiOs(root, 'pi4');
    assert.deepEqual([next.release, next.started, next.failed], [RELEASE, ['k0sworker'], []], 'the next boot: the k0s kernel, the worker running');

    const dry = await runCli(args('--rollback-kernel', '--dry-run'));
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /write \/boot\/firmware\/config\.txt/);
    assert.match(dry.stdout, /remove \/boot\/firmware\/kernel8-k0s\.img/);
    assert.ok(existsSync(join(boot, 'kernel8-k0s.img')), 'dry run changed nothing');

    // Issue 13: the rollback's plan from this state against the rollback that follows.
    const rbPlan = await runCliTraced(args('--rollback-kernel', '--dry-run', '--json'));
    assert.equal(rbPlan.code, 0, rbPlan.stderr);
    const rb = await runCliTraced(args('--rollback-kernel', '--json'), { files: true });
    assert.equal(rb.code, 0, rb.stderr + rb.stdout);
    rollbackProof = planAgainstRun(reportOf(rbPlan.stdout, 'rpios'), reportOf(rb.stdout, 'rpios'), rb.commands, rbPlan.commands, {
      roots: [root],
      hostPath: (a) => (a.here ? a.path : join(root, a.path!)),
    }, rb.writes);
    assert.equal(treeHash(boot), bootBefore, 'boot partition byte for byte as before');
    assert.ok(!existsSync(mods), 'modules removed');
    assert.ok(!existsSync(join(root, 'var/lib/pi-prep/kernel-install.json')));
    const twice = await runCli(args('--rollback-kernel'));
    assert.equal(twice.code, 0);
    assert.match(twice.stdout, /already done, 0 changed/);
  });

  it('issue 13: the rebuild\'s and the rollback\'s plans are what the real runs did (commands witnessed by strace, copies by the report)', () => {
    assert.ok(proof && rollbackProof, 'the build test built and rolled back');
    assert.deepEqual([...proof.problems.map((p) => `rebuild: ${p}`), ...rollbackProof.problems.map((p) => `rollback: ${p}`)], [],
      `witnessed: ${JSON.stringify({ rebuild: proof.witnessed, rollback: rollbackProof.witnessed })}`);
  });
});
