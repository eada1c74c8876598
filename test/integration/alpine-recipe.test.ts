import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeRoot, standInCalls, STANDIN_LOG } from '../helpers/fixture-root.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { treeHash } from '../helpers/tree-hash.js';
import { TAG, sampleWorkerToken } from '../helpers/k0s-release.js';
import type { TestHttpServer } from '../helpers/http-server.js';
import { alpineRoot, killableK0sRelease, labelAt, makeCard, simulateBoot, STOCK_CMDLINE, workDir, type Card } from '../helpers/alpine-root.js';
import { jsonData } from '../helpers/json-contract.js';

const MEDIA = '/media/mmcblk0p1';
const FLAGS = 'cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1';
/** Calls that only read (checks): left out when asserting what a run changed. */
const readOnly = (c: string[]) => (c[0] === 'apk' && c[1] === 'info') || (c[0] === 'lbu' && c[1] === 'status') || (c[0] === 'k0s' && c[1] === 'status');
const changing = (root: string) => standInCalls(root).filter((c) => !readOnly(c));
/** lbu status works in /tmp; the stand-ins log; neither is the node's state. */
const EXCLUDE = [STANDIN_LOG, '/tmp'];

const BEFORE_REBOOT = [
  ['rc-service', 'cgroups', 'start'],
  ['rc-update', 'add', 'cgroups', 'boot'],
  ['mount', '-o', 'remount,rw', MEDIA], ['mount', '-o', 'remount,ro', MEDIA], // cmdline.txt
  ['mount', '-o', 'remount,rw', MEDIA], ['mount', '-o', 'remount,ro', MEDIA], // apk cache dir
  ['mount', '-o', 'remount,rw', MEDIA], ['apk', 'add', 'iptables', 'coreutils', 'findutils', 'sfdisk', 'blkid', 'e2fsprogs'], ['mount', '-o', 'remount,ro', MEDIA],
  ['lbu', 'include', '/var/lib/k0s/.pi-prep-mountpoint'],
  ['lbu', 'commit', '-d'],
];
const AFTER_REBOOT = [
  ['lbu', 'include', '/etc/init.d/k0sworker'],
  ['k0s', 'install', 'worker', '--token-file', '/var/lib/k0s/pi-prep/join.token'],
  ['rc-update', 'add', 'k0sworker', 'default'],
  ['k0s', 'start'],
  ['lbu', 'commit', '-d'],
];

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const apkovl = (root: string) => execFileSync('tar', ['-tzf', join(root, MEDIA, 'pi4.apkovl.tar.gz')]).toString().split('\n').filter(Boolean);

/** The partition as its own loop device (offset, size), checked with e2fsck and read with debugfs. */
function checkExt4(card: Card, start: number, size: number): string {
  const part = execFileSync('losetup', ['-f', '--show', '-o', String(start * 512), '--sizelimit', String(size * 512), card.img]).toString().trim();
  try {
    execFileSync('e2fsck', ['-fn', part], { stdio: 'ignore' });
    return execFileSync('debugfs', ['-R', 'stats', part], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  } finally {
    execFileSync('losetup', ['-d', part]);
  }
}

describe('pi-prep alpine --root (diskless Alpine in an arm64 chroot, card on a loop device)', () => {
  let server: TestHttpServer;
  let work: string;
  let tokenFile: string;
  const cleanups: (() => void)[] = [];

  before(async () => {
    server = await killableK0sRelease();
    work = workDir();
    tokenFile = join(work, 'worker.token');
    writeFileSync(tokenFile, (await sampleWorkerToken()) + '\n');
  });
  after(async () => {
    for (const c of cleanups.reverse()) c();
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  });

  function fresh(world?: string[], os?: { id: string; pretty: string }): { root: string; card: Card } {
    const dir = workDir();
    const card = makeCard(dir);
    const root = alpineRoot({ card, world, os });
    cleanups.push(() => { card.detach(); removeRoot(root); rmSync(dir, { recursive: true, force: true }); });
    return { root, card };
  }
  const args = (root: string, ...more: string[]) => ['alpine', '--root', root, '--join', `@${tokenFile}`, '--k0s-mirror', server.url, '--k0s-version', TAG, ...more];
  const run = (root: string, more: string[] = [], env: Record<string, string> = {}) => runCli(args(root, ...more), { env });

  it('prepares the Pi, stops for the boot, joins after it, and a prepared Pi changes nothing', async () => {
    const { root, card } = fresh();

    const first = await run(root);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /Boot the Pi with this card, then run the same command on it again/);
    assert.deepEqual(changing(root), BEFORE_REBOOT, 'exact calls before the reboot (no reboot of a root directory)');

    assert.equal(readFileSync(join(root, MEDIA, 'cmdline.txt'), 'utf8'), `${STOCK_CMDLINE} ${FLAGS}\n`);
    assert.equal(readFileSync(join(root, MEDIA, 'cmdline.txt.pi-prep.bak'), 'utf8'), `${STOCK_CMDLINE}\n`);
    assert.match(readFileSync(join(root, 'proc/mounts'), 'utf8'), new RegExp(`/dev/mmcblk0p1 ${MEDIA} vfat ro,`), 'boot media back read-only');
    assert.match(readFileSync(join(root, 'etc/rc.conf'), 'utf8'), /^rc_cgroup_mode="unified"$/m);
    assert.doesNotMatch(readFileSync(join(root, 'etc/rc.conf'), 'utf8'), /^#rc_cgroup_mode/m, 'the commented default replaced');
    assert.match(readFileSync(join(root, 'etc/fstab'), 'utf8'), /^LABEL=k0s-data \/var\/lib\/k0s ext4 defaults 0 2$/m);
    assert.ok(readdirSync(join(root, MEDIA, 'cache')).includes('iptables-1.0-r0.apk'), 'apk cache on the media');

    // The card: the FAT partition untouched, a new Linux partition in the free space, ext4 labelled k0s-data.
    assert.match(execFileSync('sfdisk', ['-d', card.loop]).toString(), /p1 : start=\s*8192, size=\s*131072, type=c\n.*p2 : start=\s*139264, size=\s*679936, type=83/s);
    assert.equal(labelAt(card.loop, 139264), 'k0s-data');
    assert.match(checkExt4(card, 139264, 679936), /Filesystem volume name:\s+k0s-data/);
    assert.ok(apkovl(root).includes('var/lib/k0s/.pi-prep-mountpoint'), 'the mount point survives the reboot');

    simulateBoot(root, card);
    const second = await run(root);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(changing(root), [...BEFORE_REBOOT, ...AFTER_REBOOT], 'after the boot: only the join and its persistence');
    assert.match(readFileSync(join(root, 'var/lib/k0s/pi-prep/k0s'), 'utf8'), /k0s stand-in for arm64/);
    assert.equal(statSync(join(root, 'var/lib/k0s/pi-prep/join.token')).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, 'var/lib/k0s/pi-prep')).mode & 0o777, 0o700);
    const saved = apkovl(root);
    assert.ok(!saved.some((f) => /token/.test(f)), 'no token in the apkovl on the FAT boot media');
    for (const f of ['etc/init.d/k0sworker', 'etc/runlevels/default/k0sworker', 'etc/runlevels/boot/cgroups',
      'etc/profile.d/k0s.sh', 'etc/fstab', 'etc/rc.conf', 'etc/apk/world', 'etc/apk/cache', 'var/lib/k0s/.pi-prep-mountpoint']) {
      assert.ok(saved.includes(f), `${f} saved by lbu`);
    }
    assert.ok(!saved.some((f) => f.startsWith('usr/local')), 'nothing from /usr/local');

    // A prepared Pi, booted again: every task done, nothing changed.
    simulateBoot(root, card);
    const img = sha(card.img);
    const tree = treeHash(root, EXCLUDE);
    const third = await run(root);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stdout, /23 already done, 0 changed\./);
    assert.equal(treeHash(root, EXCLUDE), tree, 'root unchanged');
    assert.equal(sha(card.img), img, 'card unchanged');
    assert.deepEqual(changing(root), [...BEFORE_REBOOT, ...AFTER_REBOOT], 'no new changing calls');
  });

  it('dry run lists exactly the commands a real run makes, and changes nothing', async () => {
    const { root, card } = fresh();
    const tree = treeHash(root, EXCLUDE);
    const img = sha(card.img);
    const dry = await run(root, ['--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(treeHash(root, EXCLUDE), tree, 'root unchanged');
    assert.equal(sha(card.img), img, 'card unchanged');
    assert.deepEqual(changing(root), [], 'no stand-in asked to change anything');
    assert.match(dry.stdout, /run `sfdisk --append --no-reread --no-tell-kernel \/dev\/mmcblk0` \(with input on stdin\)/);
    assert.match(dry.stdout, /run `mkfs\.ext4 -q -F -L k0s-data -E offset=71303168,nodiscard \/dev\/mmcblk0 339968k`/);
    assert.match(dry.stdout, /run `\/var\/lib\/k0s\/pi-prep\/k0s install worker --token-file \/var\/lib\/k0s\/pi-prep\/join.token`/);
    assert.match(dry.stdout, /Boot the Pi with this card/);
    assert.ok(!dry.stdout.includes(readFileSync(tokenFile, 'utf8').trim()), 'token never printed');

    const plan = async (r: CliResult) => jsonData<{ tasks: { id: string; actions: { kind: string; argv?: string[] }[] }[] }>(r.stdout, 'alpine').tasks
      .map((t) => ({ id: t.id, runs: t.actions.filter((a) => a.kind === 'run').map((a) => a.argv) }));
    const dryPlan = await plan(await run(root, ['--dry-run', '--json']));
    const real = await plan(await run(root, ['--json']));
    const upTo = (p: typeof real) => p.slice(0, p.findIndex((t) => t.id === 'reboot'));
    assert.deepEqual(upTo(dryPlan), upTo(real), 'before the reboot: the plan is what ran');
    simulateBoot(root, card);
    const dryAfter = await plan(await run(root, ['--dry-run', '--json']));
    const realAfter = await plan(await run(root, ['--json']));
    assert.deepEqual(dryAfter, realAfter, 'after the boot: the plan is what ran');
  });

  it('formats a data partition an interrupted run left empty, without making another', async () => {
    const { root, card } = fresh();
    execFileSync('sfdisk', ['--append', '--no-reread', '--no-tell-kernel', card.loop], { input: 'start=139264, size=679936, type=83\n', stdio: ['pipe', 'ignore', 'ignore'] });
    const res = await run(root);
    assert.equal(res.code, 0, res.stderr);
    const table = execFileSync('sfdisk', ['-d', card.loop]).toString();
    assert.doesNotMatch(table, /p3 :/);
    assert.equal(labelAt(card.loop, 139264), 'k0s-data');
  });

  it('takes the data partition from --data-device and leaves the card alone', async () => {
    const { root, card } = fresh();
    const dir = workDir();
    const disk = makeCard(dir, 200);
    cleanups.push(() => { disk.detach(); rmSync(dir, { recursive: true, force: true }); });
    execFileSync('mknod', [join(root, 'dev/sda'), 'b', '7', String(disk.minor)]);
    const cardBefore = sha(card.img);
    const res = await run(root, ['--data-device', '/dev/sda']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(sha(card.img), cardBefore, 'boot card untouched');
    assert.match(execFileSync('sfdisk', ['-d', disk.loop]).toString(), /p2 : start=\s*139264, size=\s*270336, type=83/);
    assert.equal(labelAt(disk.loop, 139264), 'k0s-data');
  });

  describe('refusals: one line, nothing changed', () => {
    const cases = [
      { name: 'not Alpine', code: 1, pattern: /not Alpine Linux.*pi-prep rpios/, os: { id: 'debian', pretty: 'Debian GNU/Linux 12' }, more: [] as string[] },
      { name: 'bad --data-device', code: 2, pattern: /--data-device sda is not a device path/, more: ['--data-device', 'sda'] },
      { name: '--data-device not a block device', code: 1, pattern: /\/dev\/nonexistent is not a block device/, more: ['--data-device', '/dev/nonexistent'] },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const { root, card } = fresh(undefined, c.os);
        const tree = treeHash(root, EXCLUDE);
        const img = sha(card.img);
        const res = await run(root, c.more);
        assert.equal(res.code, c.code, res.stderr + res.stdout);
        const errs = res.stderr.trim().split('\n').filter((l) => l.startsWith('pi-prep:') && !l.startsWith('pi-prep: preparing'));
        assert.equal(errs.length, 1, res.stderr);
        assert.match(errs[0]!, c.pattern);
        assert.doesNotMatch(res.stderr, /\n\s+at /);
        assert.equal(sha(card.img), img);
        if (c.code === 2) assert.equal(treeHash(root, EXCLUDE), tree);
      });
    }
  });

  it('an interrupted run (killed after any changing command) completes on re-run', async () => {
    // Where the clean flow makes its changing calls, counted over every recorded call.
    const probe = fresh();
    await run(probe.root);
    simulateBoot(probe.root, probe.card);
    await run(probe.root);
    const all = standInCalls(probe.root);
    const killPoints = all.map((c, i) => (readOnly(c) ? -1 : i + 1)).filter((i) => i > 0);
    assert.ok(killPoints.length >= BEFORE_REBOOT.length + AFTER_REBOOT.length);

    for (const k of killPoints) {
      const { root, card } = fresh();
      const env = { PI_PREP_TEST_KILL_AT: String(k) };
      let killed = false;
      let finished = false;
      for (let attempt = 0; attempt < 6 && !finished; attempt++) {
        const res = await run(root, [], env);
        if (res.code !== 0) {
          assert.ok(!killed, `only the kill stops a run (k=${k}): ${res.stderr}`);
          killed = true;
          continue;
        }
        if (/Boot the Pi with this card/.test(res.stdout)) simulateBoot(root, card);
        else finished = true;
      }
      assert.ok(killed, `the run was killed at call ${k}`);
      assert.ok(finished, `k=${k}: the re-runs finished the join`);
      simulateBoot(root, card);
      const final = await run(root);
      assert.equal(final.code, 0, final.stderr);
      assert.match(final.stdout, /23 already done, 0 changed\./, `k=${k}: prepared after the interruption`);
      assert.ok(existsSync(join(root, 'var/lib/k0s/pi-prep/k0s')));
      assert.match(readFileSync(join(root, MEDIA, 'cmdline.txt'), 'utf8'), new RegExp(FLAGS));
      assert.match(readFileSync(join(root, 'proc/mounts'), 'utf8'), new RegExp(`${MEDIA} vfat ro,`));
    }
  });
});
