import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { treeHash } from '../helpers/tree-hash.js';
import { TAG, sampleWorkerToken } from '../helpers/k0s-release.js';
import type { TestHttpServer } from '../helpers/http-server.js';
import { SimAlpinePi } from '../helpers/pi-sim/alpine-pi.js';
import { setupAlpineCard, STOCK_CMDLINE } from '../helpers/pi-sim/alpine-card.js';
import { simK0sRelease } from '../helpers/pi-sim/release.js';
import { jsonData } from '../helpers/json-contract.js';

const MEDIA = '/media/mmcblk0p1';
const FLAGS = 'cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1';
const BIN = '/media/k0s-data/pi-prep/k0s';
const TOKEN = '/media/k0s-data/pi-prep/join.token';
/** Calls that only read (checks): left out when asserting what a run changed. */
const readOnly = (c: string[]) => (c[0] === 'apk' && c[1] === 'info') || (c[0] === 'lbu' && c[1] === 'status') || (c[0] === 'k0s' && c[1] === 'status');
/** The changing calls since the `from`th of this boot (the boot's own daemons come before a run). */
const changing = (pi: SimAlpinePi, from = 0) => pi.calls().slice(from).filter((c) => !readOnly(c));
/** The simulator's state, lbu's scratch and the stand-ins' log are not the node's state. */
const EXCLUDE = ['/.sim', '/tmp', '/var/log'];
const RW = ['mount', '-o', 'remount,rw', MEDIA];
const RO = ['mount', '-o', 'remount,ro', MEDIA];

const BEFORE_REBOOT = [
  ['rc-service', 'cgroups', 'start'],
  ['rc-update', 'add', 'cgroups', 'boot'],
  RW, RO, // cmdline.txt
  RW, RO, // apk cache dir
  RW, ['apk', 'add', 'iptables', 'coreutils', 'findutils', 'curl', 'sfdisk', 'blkid', 'e2fsprogs'], RO,
  ['lbu', 'commit', '-d'], RW, RO,
];
const AFTER_REBOOT = [
  ['lbu', 'include', '/etc/init.d/k0sworker'],
  ['k0s', 'install', 'worker', '--token-file', TOKEN],
  ['rc-update', 'add', 'k0sworker', 'default'],
  ['rc-service', 'k0sworker', 'start'],
  ['lbu', 'commit', '-d'], RW, RO,
];

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
/** SHA-256 of the first `bytes` of a file or device. */
function shaHead(f: string, bytes: number): string {
  const buf = Buffer.alloc(bytes);
  const fd = openSync(f, 'r');
  try {
    readSync(fd, buf, 0, bytes, 0);
  } finally {
    closeSync(fd);
  }
  return createHash('sha256').update(buf).digest('hex');
}
const apkovl = (pi: SimAlpinePi) => execFileSync('tar', ['-tzf', join(pi.root, MEDIA, 'pi4.apkovl.tar.gz')]).toString().split('\n').filter(Boolean);

describe('pi-prep alpine --root on a running diskless Alpine (boot simulator, card on a loop device)', () => {
  let server: TestHttpServer;
  let work: string;
  let tokenFile: string;
  const pis: SimAlpinePi[] = [];

  before(async () => {
    server = await simK0sRelease();
    work = mkdtempSync(join(tmpdir(), 'pi-prep-alpine-'));
    tokenFile = join(work, 'worker.token');
    writeFileSync(tokenFile, (await sampleWorkerToken()) + '\n');
  });
  after(async () => {
    for (const p of pis) p.destroy();
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** A card as setup-alpine leaves it, booted. */
  function fresh(world?: string[]): SimAlpinePi {
    const pi = new SimAlpinePi({ image: setupAlpineCard(mkdtempSync(join(work, 'card-')), { world }) });
    pis.push(pi);
    assert.deepEqual(pi.boot().errors, []);
    return pi;
  }
  const args = (pi: SimAlpinePi, ...more: string[]) => ['alpine', '--root', pi.root, '--join', `@${tokenFile}`, '--k0s-mirror', server.url, '--k0s-version', TAG, ...more];
  const run = (pi: SimAlpinePi, more: string[] = [], env: Record<string, string> = {}) => runCli(args(pi, ...more), { env });

  it('prepares the Pi, stops for the boot, joins after it, and a prepared Pi changes nothing', async () => {
    const pi = fresh();
    const first = await run(pi);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /is not rebooted \(a root directory\): boot the Pi from it, then run the same command again/);
    assert.deepEqual(changing(pi), BEFORE_REBOOT, 'exact calls before the reboot (no reboot of a root directory)');
    const r = (p: string) => readFileSync(join(pi.root, p), 'utf8');
    assert.equal(r(`${MEDIA}/cmdline.txt`), `${STOCK_CMDLINE} ${FLAGS}\n`);
    assert.equal(r(`${MEDIA}/cmdline.txt.pi-prep.bak`), `${STOCK_CMDLINE}\n`);
    assert.match(r('proc/mounts'), new RegExp(`/dev/mmcblk0p1 ${MEDIA} vfat ro,`), 'boot media back read-only');
    assert.match(r('etc/rc.conf'), /^rc_cgroup_mode="unified"$/m);
    assert.doesNotMatch(r('etc/rc.conf'), /^#rc_cgroup_mode/m, 'the commented default replaced');
    assert.match(r('etc/fstab'), /^LABEL=k0s-data\t\/media\/k0s-data\text4\tdefaults,noatime\t0 2\n\/media\/k0s-data\/k0s\t\/var\/lib\/k0s\tnone\tbind\t0 0$/m);
    assert.ok(readdirSync(join(pi.root, MEDIA, 'cache')).includes('iptables-1.0-r0.apk'), 'apk cache on the media');
    assert.deepEqual(pi.violations(), []);
    // The card: the FAT partition untouched, a new Linux partition in the free space, ext4 labelled k0s-data.
    assert.match(execFileSync('sfdisk', ['-d', pi.loop]).toString(), /p1 : start=\s*8192, size=\s*131072, type=c, bootable\n.*p2 : start=\s*139264, size=\s*679936, type=83/s);

    const boot = pi.reboot();
    assert.deepEqual(boot.errors, []);
    assert.deepEqual(readdirSync(join(pi.root, 'media/k0s-data')).sort(), ['k0s', 'lost+found', 'pi-prep'], 'the new filesystem, mounted by the boot');
    const second = await run(pi);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(changing(pi, boot.calls.length), AFTER_REBOOT, 'after the boot: only the join and its persistence');
    assert.match(r(BIN.slice(1)), /sim k0s|k0s v1/);
    assert.equal(statSync(join(pi.root, TOKEN)).mode & 0o777, 0o600);
    assert.equal(statSync(join(pi.root, 'media/k0s-data/pi-prep')).mode & 0o777, 0o700);
    const saved = apkovl(pi);
    assert.ok(!saved.some((f) => /token/.test(f)), 'no token in the apkovl on the FAT boot media');
    for (const f of ['etc/init.d/k0sworker', 'etc/runlevels/default/k0sworker', 'etc/runlevels/boot/cgroups',
      'etc/profile.d/k0s.sh', 'etc/fstab', 'etc/rc.conf', 'etc/apk/world', 'etc/apk/cache']) {
      assert.ok(saved.includes(f), `${f} saved by lbu`);
    }
    assert.ok(!saved.some((f) => f.startsWith('usr/local') || f.startsWith('var/')), 'nothing from /usr/local or /var');
    pi.runJobs();
    assert.ok(pi.workerRunning());

    // A prepared Pi, booted again: every task done, nothing changed.
    const again = pi.reboot();
    assert.deepEqual(again.errors, []);
    assert.ok(pi.workerRunning());
    // The partition table and the FAT partition: the mounted ext4 is the kernel's to write (its lazy
    // inode-table init, journal), so the data partition is compared through the mounted tree instead.
    const img = shaHead(pi.loop, 139264 * 512);
    const tree = treeHash(pi.root, EXCLUDE);
    const third = await run(pi);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stdout, /21 already done, 0 changed\./);
    assert.equal(treeHash(pi.root, EXCLUDE), tree, 'root (with the data partition mounted in it) unchanged');
    assert.equal(shaHead(pi.loop, 139264 * 512), img, 'partition table and boot partition unchanged');
    assert.deepEqual(changing(pi, again.calls.length), [], 'no changing calls');
  });

  it('dry run lists exactly the commands a real run makes, and changes nothing', async () => {
    const pi = fresh();
    const tree = treeHash(pi.root, EXCLUDE);
    const img = sha(pi.loop);
    const dry = await run(pi, ['--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(treeHash(pi.root, EXCLUDE), tree, 'root unchanged');
    assert.equal(sha(pi.loop), img, 'card unchanged');
    assert.deepEqual(changing(pi), [], 'no stand-in asked to change anything');
    assert.match(dry.stdout, /run `sfdisk --append --no-reread --no-tell-kernel \/dev\/mmcblk0` \(with input on stdin\)/);
    assert.match(dry.stdout, /run `mkfs\.ext4 -q -F -L k0s-data -d \/tmp\/pi-prep-data-skeleton -E offset=71303168,nodiscard \/dev\/mmcblk0 339968k`/);
    assert.match(dry.stdout, /run `\/media\/k0s-data\/pi-prep\/k0s install worker --token-file \/media\/k0s-data\/pi-prep\/join.token`/);
    assert.match(dry.stdout, /run `rc-service k0sworker start`/);
    assert.match(dry.stdout, /boot the Pi from it, then run the same command again/);
    assert.ok(!dry.stdout.includes(readFileSync(tokenFile, 'utf8').trim()), 'token never printed');

    const plan = async (r: CliResult) => jsonData<{ tasks: { id: string; actions: { kind: string; argv?: string[] }[] }[] }>(r.stdout, 'alpine').tasks
      .map((t) => ({ id: t.id, runs: t.actions.filter((a) => a.kind === 'run').map((a) => a.argv) }));
    const dryPlan = await plan(await run(pi, ['--dry-run', '--json']));
    const real = await plan(await run(pi, ['--json']));
    const upTo = (p: typeof real) => p.slice(0, p.findIndex((t) => t.id === 'reboot'));
    assert.deepEqual(upTo(dryPlan), upTo(real), 'before the reboot: the plan is what ran');
    pi.reboot();
    const dryAfter = await plan(await run(pi, ['--dry-run', '--json']));
    const realAfter = await plan(await run(pi, ['--json']));
    assert.deepEqual(dryAfter, realAfter, 'after the boot: the plan is what ran');
  });

  it('--prepare-only: cgroups, packages, the data partition and persistence, no k0s (k0sctl installs it afterwards)', async () => {
    const pi = fresh();
    const prep = (...more: string[]) => runCli(['alpine', '--root', pi.root, '--prepare-only', ...more]);
    const first = await prep();
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /boot the Pi from it, then run the same command again/);
    assert.deepEqual(pi.reboot().errors, []);
    const second = await prep();
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /Prepared only \(--prepare-only\)/);
    assert.match(second.stdout, /lbu include \/usr\/local\/bin\/k0s \/etc\/init\.d\/k0sworker && lbu commit -d/, 'says what k0sctl leaves in RAM');
    assert.ok(!pi.calls().some((c) => c[0] === 'k0s'), 'no k0s');
    assert.ok(!existsSync(join(pi.root, BIN.slice(1))));
    assert.match(readFileSync(join(pi.root, 'proc/mounts'), 'utf8'), /\/var\/lib\/k0s ext4/);
    const again = await prep();
    assert.match(again.stdout, /already done, 0 changed/);
    const both = await prep('--join', `@${tokenFile}`);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--prepare-only leaves k0s and the join to k0sctl/);
    const ready = await run(pi, ['--kubeconfig', tokenFile]);
    assert.equal(ready.code, 2);
    assert.match(ready.stderr, /only runs k0s once it boots: drop --kubeconfig/);
  });

  it('formats a data partition an interrupted run left empty, without making another', async () => {
    const pi = fresh();
    execFileSync('sfdisk', ['--append', '--no-reread', '--no-tell-kernel', pi.loop], { input: 'start=139264, size=679936, type=83\n', stdio: ['pipe', 'ignore', 'ignore'] });
    const res = await run(pi);
    assert.equal(res.code, 0, res.stderr);
    assert.doesNotMatch(execFileSync('sfdisk', ['-d', pi.loop]).toString(), /p3 :/);
    assert.equal(execFileSync('blkid', ['-p', '-O', String(139264 * 512), '-s', 'LABEL', '-o', 'value', pi.loop]).toString().trim(), 'k0s-data');
  });

  it('takes the data partition from --data-device and leaves the card alone', async () => {
    const pi = fresh();
    const disk = join(mkdtempSync(join(work, 'disk-')), 'disk.img');
    execFileSync('truncate', ['-s', '200M', disk]);
    execFileSync('sfdisk', ['-q', disk], { input: 'label: dos\nstart=8192, size=131072, type=c\n' });
    const loop = execFileSync('losetup', ['-f', '--show', disk]).toString().trim();
    try {
      execFileSync('mknod', [join(pi.root, 'dev/sda'), 'b', '7', /loop(\d+)$/.exec(loop)![1]!]);
      const table = execFileSync('sfdisk', ['-d', pi.loop]).toString();
      const res = await run(pi, ['--data-device', '/dev/sda']);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(execFileSync('sfdisk', ['-d', pi.loop]).toString(), table, 'no partition added to the boot card');
      assert.match(execFileSync('sfdisk', ['-d', loop]).toString(), /p2 : start=\s*139264, size=\s*270336, type=83/);
      assert.equal(execFileSync('blkid', ['-p', '-O', String(139264 * 512), '-s', 'LABEL', '-o', 'value', loop]).toString().trim(), 'k0s-data');
    } finally {
      execFileSync('losetup', ['-d', loop]);
    }
  });

  describe('refusals: one line, nothing changed', () => {
    const cases = [
      { name: 'not Alpine', code: 1, pattern: /not Alpine Linux.*pi-prep rpios/, debian: true, more: [] as string[] },
      { name: 'bad --data-device', code: 2, pattern: /--data-device sda is not a device path/, more: ['--data-device', 'sda'] },
      { name: '--data-device not a block device', code: 1, pattern: /\/dev\/nonexistent is not a block device/, more: ['--data-device', '/dev/nonexistent'] },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const pi = fresh();
        if (c.debian) writeFileSync(join(pi.root, 'etc/os-release'), 'PRETTY_NAME="Debian GNU/Linux 12"\nID=debian\nVERSION_ID="12"\n');
        const tree = treeHash(pi.root, EXCLUDE);
        const img = sha(pi.loop);
        const table = execFileSync('sfdisk', ['-d', pi.loop]).toString();
        const res = await run(pi, c.more);
        assert.equal(res.code, c.code, res.stderr + res.stdout);
        const errs = res.stderr.trim().split('\n').filter((l) => l.startsWith('pi-prep:') && !l.startsWith('pi-prep: preparing'));
        assert.equal(errs.length, 1, res.stderr);
        assert.match(errs[0]!, c.pattern);
        assert.doesNotMatch(res.stderr, /\n\s+at /);
        assert.equal(execFileSync('sfdisk', ['-d', pi.loop]).toString(), table, 'no partition made');
        // Bad usage changes nothing at all; a failed task stops before the disk (earlier tasks did their part).
        if (c.code === 2) {
          assert.equal(sha(pi.loop), img);
          assert.equal(treeHash(pi.root, EXCLUDE), tree);
        }
      });
    }
  });

  it('an interrupted run (killed after any changing command) completes on re-run', async () => {
    // Where the clean flow makes its changing calls: the Nth recorded call of its boot.
    const probe = fresh();
    await run(probe);
    const before = probe.calls();
    probe.reboot();
    await run(probe);
    const afterBoot = probe.calls();
    const points = [
      ...before.map((c, i) => ({ phase: 0, k: i + 1, c })),
      ...afterBoot.map((c, i) => ({ phase: 1, k: i + 1, c })),
    ].filter((p) => !readOnly(p.c) && !(p.c[0] === 'mount' && p.c[2] === 'remount,ro'));
    assert.ok(points.length >= 12, `${points.length} kill points`);

    for (const { phase, k, c } of points) {
      const at = `killed after ${phase ? 'post-boot' : 'first'} call ${k} (${c.join(' ')})`;
      const pi = fresh();
      if (phase === 1) {
        assert.equal((await run(pi)).code, 0);
        pi.reboot();
      }
      const killed = await run(pi, [], { PI_PREP_TEST_KILL_AT: String(k) });
      assert.notEqual(killed.code, 0, `${at}: the run was killed`);
      for (let i = 0; i < 4; i++) {
        const res = await run(pi);
        assert.equal(res.code, 0, `${at}: ${res.stderr}`);
        if (!/boot the Pi from it, then run the same command again/.test(res.stdout)) break;
        assert.deepEqual(pi.reboot().errors, [], at);
      }
      pi.runJobs();
      assert.deepEqual(pi.reboot().errors, [], at);
      assert.ok(pi.workerRunning(), `${at}: the worker runs after a reboot`);
      const final = await run(pi);
      assert.match(final.stdout, /21 already done, 0 changed\./, `${at}: prepared after the interruption`);
      assert.ok(existsSync(join(pi.root, BIN.slice(1))));
      assert.match(readFileSync(join(pi.root, MEDIA, 'cmdline.txt'), 'utf8'), new RegExp(FLAGS));
      assert.doesNotMatch(execFileSync('sfdisk', ['-d', pi.loop]).toString(), /p3 :/, `${at}: one data partition`);
      pi.destroy();
      pis.splice(pis.indexOf(pi), 1);
    }
  });
});
