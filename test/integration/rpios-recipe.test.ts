import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { removeRoot, standInCalls, STANDIN_LOG } from '../helpers/fixture-root.js';
import { runCli } from '../helpers/cli.js';
import { treeHash } from '../helpers/tree-hash.js';
import { TAG, joinWorkspace, type JoinWorkspace } from '../helpers/k0s-release.js';
import type { TestHttpServer } from '../helpers/http-server.js';
import { BOARDS, BOOKWORM_CMDLINE, BOOKWORM_CONFIG, piRoot } from '../helpers/rpi-fixture.js';
import { bootRpiOs } from '../helpers/pi-sim/rpios-boot.js';
import { simK0sRelease } from '../helpers/pi-sim/release.js';

const PATCHED = BOOKWORM_CMDLINE.trimEnd() + ' cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n';

describe('pi-prep rpios --root on Pi 4 and Pi 5 roots (arm64 chroot)', () => {
  let work: string;
  let tokenFile: string;
  const roots: string[] = [];
  let ws: JoinWorkspace;
  let sim: TestHttpServer;
  before(async () => {
    ws = await joinWorkspace('rpios');
    ({ work, tokenFile } = ws);
    sim = await simK0sRelease();
  });
  after(async () => {
    await sim.stop();
    await ws.stop();
    roots.forEach(removeRoot);
  });
  // A local path, so a run that wrongly decided to rebuild could never reach the network.
  const REPO = '/nonexistent/raspberrypi-linux';
  const args = (root: string, ...more: string[]) => ['rpios', '--root', root, '--join', `@${tokenFile}`, '--k0s-mirror', sim.url, '--k0s-version', TAG, '--kernel-repo', REPO, ...more];
  const env = () => ({ XDG_CACHE_HOME: mkdtempSync(join(work, 'cache-')) });

  for (const board of ['pi4', 'pi5'] as const) {
    it(`${board}: auto keeps a kernel with CFS_BANDWIDTH, patches cmdline.txt, stops for the reboot, then verifies and joins`, async () => {
      const root = piRoot({ board });
      roots.push(root);
      const viaFlag = board === 'pi5'; // --reboot on the Pi 5 run: a root directory is still never rebooted
      const first = await runCli(args(root, '--verbose', ...(viaFlag ? ['--reboot'] : [])), { env: env() });
      assert.equal(first.code, 0, first.stderr + first.stdout);
      assert.match(first.stdout, new RegExp(`${BOARDS[board].release.replace(/[+.]/g, '\\$&')} has all \\d+ options of kernel-configs/ \\(/boot/config-.*\\): no rebuild needed`));
      assert.match(first.stdout, board === 'pi4' ? /bcm2711_defconfig, kernel8-k0s.img, boot partition \/boot\/firmware/ : /bcm2712_defconfig, kernel_2712-k0s.img/);
      assert.equal(readFileSync(join(root, 'boot/firmware/cmdline.txt'), 'utf8'), PATCHED);
      assert.equal(readFileSync(join(root, 'boot/firmware/cmdline.txt.pi-prep.bak'), 'utf8'), BOOKWORM_CMDLINE);
      assert.equal(readFileSync(join(root, 'boot/firmware/config.txt'), 'utf8'), BOOKWORM_CONFIG, 'config.txt untouched without a rebuild');
      assert.ok(!existsSync(join(root, 'usr/local/bin/k0s')), 'no join before the reboot');
      if (viaFlag) {
        assert.match(first.stdout, /is not rebooted \(a root directory\): boot the Pi from it, then run the same command again/);
        assert.deepEqual(standInCalls(root), [], '`reboot` is never run in a chroot');
        bootRpiOs(root, board); // the user reboots the Pi
      } else {
        assert.match(first.stdout, /is not rebooted \(a root directory\): boot the Pi from it, then run the same command again to verify and join/);
        // Tasks after the reboot are listed once each, without their title twice.
        assert.match(first.stdout, /^↓ k0s worker running \[SKIPPED \(waits for the next run\)\]$/m);
        assert.deepEqual(standInCalls(root), []);
        // Running it again before the reboot stops again, changing nothing.
        const h = treeHash(root);
        const again = await runCli(args(root), { env: env() });
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /is not rebooted \(a root directory\)/);
        assert.equal(treeHash(root), h);
        bootRpiOs(root, board); // the user reboots
      }

      const second = await runCli(args(root, '--verbose'), { env: env() });
      assert.equal(second.code, 0, second.stderr + second.stdout);
      assert.match(second.stdout, /\[x\] Rebooted into the new kernel and cmdline \(done: /);
      assert.match(second.stdout, /\[x\] After the reboot: kernel, cgroups and CFS bandwidth verified \(done: .*memory controller on\)/);
      const calls = standInCalls(root).filter((c) => c[1] !== 'status');
      assert.deepEqual(calls, [
        ['k0s', 'install', 'worker', '--token-file', '/etc/k0s/k0stoken'],
        ['k0s', 'start'],
        ['systemctl', 'start', 'k0sworker.service'],
      ]);
      assert.ok(sim.requests.includes(`/${TAG}/k0s-${TAG}-arm64`));
      // The next boot starts the enabled unit: the worker runs, on the same kernel, with the flags.
      const boot = bootRpiOs(root, board);
      assert.deepEqual([boot.started, boot.failed], [['k0sworker'], []]);
      assert.ok(boot.controllers.includes('memory') && boot.cmdline.endsWith(PATCHED.trim()));
      assert.equal(execFileSync('chroot', [root, '/usr/local/bin/k0s', 'status']).toString().match(/Role: worker/)?.[0], 'Role: worker');

      const h = treeHash(root, [STANDIN_LOG]);
      const third = await runCli(args(root), { env: env() });
      assert.equal(third.code, 0, third.stderr);
      assert.match(third.stdout, /already done, 0 changed/);
      assert.equal(treeHash(root, [STANDIN_LOG]), h, 'a finished node is left alone');
    });
  }

  it('a kernel without CFS_BANDWIDTH: auto plans a rebuild for the board (dry run: exact commands, nothing changed)', async () => {
    const root = piRoot({ board: 'pi5', without: ['CFS_BANDWIDTH'] });
    roots.push(root);
    const cache = mkdtempSync(join(work, 'cache-'));
    const h = treeHash(root);
    const res = await runCli(args(root, '--dry-run', '--kernel-jobs', '3'), { env: { XDG_CACHE_HOME: cache } });
    assert.equal(res.code, 0, res.stderr + res.stdout);
    assert.equal(treeHash(root), h, 'dry run changed nothing');
    assert.ok(!existsSync(join(cache, 'pi-prep')), 'nothing cloned or built');
    const dir = join(cache, 'pi-prep/linux-rpi-6.6.y');
    const out = res.stdout;
    assert.match(out, /6\.6\.51\+rpt-rpi-2712 lacks CONFIG_CFS_BANDWIDTH \(\/boot\/config-6\.6\.51\+rpt-rpi-2712\): rebuild from rpi-6\.6\.y/);
    const make = `make -C ${dir} ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- LOCALVERSION=`;
    for (const line of [
      `on this machine: run \`git clone --depth=1 --branch rpi-6.6.y -- ${REPO} ${dir}\``,
      `on this machine: run \`${make} bcm2712_defconfig\``,
      `on this machine: run \`${dir}/scripts/config --file ${dir}/.config --enable CGROUPS`,
      `--set-str LOCALVERSION -k0s --disable LOCALVERSION_AUTO\``,
      `on this machine: run \`${make} olddefconfig\``,
      `on this machine: run \`${make} -j3 Image.gz modules dtbs\``,
      `on this machine: run \`${make} INSTALL_MOD_PATH=${dir}/pi-prep-modules modules_install\``,
      `copy ${dir}/arch/arm64/boot/Image.gz to /boot/firmware/kernel_2712-k0s.img`,
      `copy ${dir}/arch/arm64/boot/dts/broadcom/*.dtb to /boot/firmware/ (mode 0644)`,
      'write /boot/firmware/config.txt (',
      '+ kernel=kernel_2712-k0s.img',
      '+ auto_initramfs=0',
      '+ console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet splash plymouth.ignore-udev cfg80211.ieee80211_regdom=GB cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1',
    ]) assert.ok(out.includes(line), `plan has: ${line}\n${out}`);
    assert.match(out, /is not rebooted \(a root directory\)/);
  });

  it('--kernel skip keeps a kernel without CFS_BANDWIDTH; verification after the reboot says what is missing', async () => {
    const root = piRoot({ board: 'pi4', without: ['CFS_BANDWIDTH'], bringsMemory: false });
    roots.push(root);
    const first = await runCli(args(root, '--kernel', 'skip'), { env: env() });
    assert.equal(first.code, 0, first.stderr);
    bootRpiOs(root, 'pi4');
    const second = await runCli(args(root, '--kernel', 'skip'), { env: env() });
    assert.equal(second.code, 1);
    assert.match(second.stderr, /after the reboot: no memory controller in \/sys\/fs\/cgroup\/cgroup.controllers: check cgroup_enable=memory in \/boot\/firmware\/cmdline.txt/);
    assert.ok(!existsSync(join(root, 'usr/local/bin/k0s')), 'not joined');
  });

  it('refuses a Pi 2 style board and a 32-bit userland with the fix named, changing nothing', async () => {
    const root = piRoot({ board: 'pi4' });
    roots.push(root);
    writeFileSync(join(root, 'proc/device-tree/compatible'), 'raspberrypi,2-model-b\0brcm,bcm2836\0');
    writeFileSync(join(root, 'proc/device-tree/model'), 'Raspberry Pi 2 Model B Rev 1.1\0');
    const h = treeHash(root);
    const res = await runCli(args(root), { env: env() });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /Raspberry Pi 2 Model B Rev 1.1 cannot run a 64-bit k0s worker: use a Pi 3, 4, 5 or Zero 2 W/);
    assert.equal(treeHash(root), h);
    const bad = await runCli(['rpios', '--root', root, '--kernel', 'sometimes']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--kernel/);
  });

  // Bookworm's /boot/cmdline.txt is a note ("DO NOT EDIT THIS FILE ... moved to /boot/firmware");
  // with the boot partition not mounted, editing it would change nothing the firmware reads.
  const NOTE = 'DO NOT EDIT THIS FILE\n\nThe file you are looking for has moved to /boot/firmware/cmdline.txt\n';
  const broken: [string, RegExp, (root: string) => void][] = [
    ['/boot/firmware empty (boot partition not mounted)', /\/boot\/firmware holds no cmdline\.txt: the boot partition is not mounted there; mount the boot partition at \/boot\/firmware/, (root) => {
      rmSync(join(root, 'boot/firmware'), { recursive: true });
      mkdirSync(join(root, 'boot/firmware'));
    }],
    ['/boot/firmware a symlink', /\/boot\/firmware is a symlink, not the boot partition's mount point/, (root) => {
      renameSync(join(root, 'boot/firmware'), join(root, 'boot/real-firmware'));
      symlinkSync('real-firmware', join(root, 'boot/firmware'));
    }],
    ['/boot/firmware/cmdline.txt a symlink', /\/boot\/firmware\/cmdline\.txt is a symlink, not a file/, (root) => {
      renameSync(join(root, 'boot/firmware/cmdline.txt'), join(root, 'boot/firmware/cmdline.real'));
      symlinkSync('cmdline.real', join(root, 'boot/firmware/cmdline.txt'));
    }],
    ['/boot/firmware/cmdline.txt a directory', /\/boot\/firmware\/cmdline\.txt is a directory, not a file/, (root) => {
      rmSync(join(root, 'boot/firmware/cmdline.txt'));
      mkdirSync(join(root, 'boot/firmware/cmdline.txt'));
    }],
  ];
  for (const [name, why, breakIt] of broken) {
    it(`refuses to edit any cmdline.txt when ${name}, changing nothing`, async () => {
      const root = piRoot({ board: 'pi4' });
      roots.push(root);
      writeFileSync(join(root, 'boot/cmdline.txt'), NOTE);
      breakIt(root);
      const h = treeHash(root);
      const res = await runCli(args(root), { env: env() });
      assert.equal(res.code, 1, res.stderr + res.stdout);
      assert.match(res.stderr, why);
      assert.doesNotMatch(res.stderr, /^\s+at /m, 'no stack trace');
      assert.equal(readFileSync(join(root, 'boot/cmdline.txt'), 'utf8'), NOTE);
      assert.equal(treeHash(root), h);
      // A dry run still prints its checklist, the failing check in it.
      const dry = await runCli(args(root, '--dry-run'), { env: env() });
      assert.equal(dry.code, 1, dry.stderr);
      assert.match(dry.stdout, /^- \[ \] Raspberry Pi OS 64-bit on a supported Pi \(blocked: /m);
      assert.match(dry.stdout, /^- \[ \] cgroup flags in cmdline\.txt \(failed: /m);
      assert.equal(treeHash(root), h);
    });
  }

  it('a cmdline.txt byte that is not UTF-8 is kept as it was, not rewritten as U+FFFD', async () => {
    const root = piRoot({ board: 'pi4' });
    roots.push(root);
    const original = Buffer.concat([Buffer.from(BOOKWORM_CMDLINE.trimEnd() + ' label=caf'), Buffer.from([0xe9]), Buffer.from('\n')]);
    writeFileSync(join(root, 'boot/firmware/cmdline.txt'), original);
    const res = await runCli(args(root), { env: env() });
    assert.equal(res.code, 0, res.stderr);
    const want = Buffer.concat([original.subarray(0, original.length - 1), Buffer.from(' cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n')]);
    assert.deepEqual(readFileSync(join(root, 'boot/firmware/cmdline.txt')), want);
    assert.deepEqual(readFileSync(join(root, 'boot/firmware/cmdline.txt.pi-prep.bak')), original);
  });

  it('refuses flags that would push cmdline.txt past the kernel\'s 2048-byte command line, changing nothing', async () => {
    const root = piRoot({ board: 'pi4', cmdline: BOOKWORM_CMDLINE.trimEnd() + ' ' + 'x'.repeat(2000 - BOOKWORM_CMDLINE.length) + '\n' });
    roots.push(root);
    const h = treeHash(root);
    const res = await runCli(args(root), { env: env() });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /with the cgroup flags the kernel command line in \/boot\/firmware\/cmdline\.txt would be \d+ bytes, more than the kernel's 2047: remove parameters you do not need, then run again/);
    assert.equal(treeHash(root), h);
  });

  it('a planted cmdline.txt.pi-prep.bak symlink is refused instead of standing in for the backup', async () => {
    const root = piRoot({ board: 'pi4' });
    roots.push(root);
    symlinkSync('/dev/null', join(root, 'boot/firmware/cmdline.txt.pi-prep.bak'));
    const res = await runCli(args(root), { env: env() });
    assert.equal(res.code, 3, res.stderr);
    assert.match(res.stderr, /\/boot\/firmware\/cmdline\.txt\.pi-prep\.bak is a symlink, not pi-prep's backup: remove it, then run again/);
    assert.equal(readFileSync(join(root, 'boot/firmware/cmdline.txt'), 'utf8'), BOOKWORM_CMDLINE);
  });
});
