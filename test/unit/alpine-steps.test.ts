import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { diskOf, layoutProblems, mountAt, parseMounts, parseShellVars, partitionNode, type AlpineLayout } from '../../src/lib/alpine/layout.js';
import { parseFreeRegions, pickRegion, parseBlkid } from '../../src/steps/alpine/data-partition.js';
import { isUnified, setUnifiedMode } from '../../src/steps/alpine/openrc.js';
import { rebootTask } from '../../src/steps/alpine/reboot.js';
import type { RunContext } from '../../src/run/task.js';
import type { Target } from '../../src/targets/target.js';

describe('alpine layout', () => {
  it('reads /proc/mounts, with escapes, last mount winning', () => {
    const m = parseMounts('tmpfs / tmpfs rw 0 0\n/dev/mmcblk0p1 /media/mmcblk0p1 vfat ro,relatime 0 0\n/dev/sda1 /media/my\\040disk ext4 rw 0 0\n/dev/mmcblk0p1 /media/mmcblk0p1 vfat rw,relatime 0 0\n');
    assert.equal(mountAt(m, '/')?.type, 'tmpfs');
    assert.deepEqual(mountAt(m, '/media/mmcblk0p1')?.options, ['rw', 'relatime']);
    assert.equal(mountAt(m, '/media/my disk')?.device, '/dev/sda1');
  });
  it('reads lbu.conf: quotes, comments, commented defaults', () => {
    const v = parseShellVars('# LBU_MEDIA=usb\nLBU_MEDIA="mmcblk0p1" # the card\nDEFAULT_CIPHER=aes-256-cbc\n');
    assert.equal(v.get('LBU_MEDIA'), 'mmcblk0p1');
    assert.equal(v.get('DEFAULT_CIPHER'), 'aes-256-cbc');
  });
  it('finds the disk of a partition and the node of partition n', () => {
    assert.equal(diskOf('/dev/mmcblk0p1'), '/dev/mmcblk0');
    assert.equal(diskOf('/dev/nvme0n1p2'), '/dev/nvme0n1');
    assert.equal(diskOf('/dev/sda1'), '/dev/sda');
    assert.equal(diskOf('/dev/mapper/x'), undefined);
    assert.equal(partitionNode('/dev/mmcblk0', 2), '/dev/mmcblk0p2');
    assert.equal(partitionNode('/dev/sda', 2), '/dev/sda2');
  });
  it('names what is wrong, with the fix', () => {
    const base: AlpineLayout = { isAlpine: true, versionId: '3.21', arch: 'aarch64', diskless: true, lbuMedia: 'mmcblk0p1', mediaDir: '/media/mmcblk0p1',
      mediaMount: { device: '/dev/mmcblk0p1', dir: '/media/mmcblk0p1', type: 'vfat', options: ['ro'] }, bootDisk: '/dev/mmcblk0', hostname: 'pi' };
    assert.deepEqual(layoutProblems(base), []);
    assert.match(layoutProblems({ ...base, isAlpine: false })[0]!, /pi-prep rpios/);
    assert.match(layoutProblems({ ...base, arch: 'armv7l' })[0]!, /aarch64/);
    assert.match(layoutProblems({ ...base, lbuMedia: undefined, mediaDir: undefined, mediaMount: undefined }).join(';'), /setup-lbu/);
    assert.match(layoutProblems({ ...base, mediaMount: undefined })[0]!, /not mounted at \/media\/mmcblk0p1/);
  });
});

describe('data partition', () => {
  const sfdiskF = `Unpartitioned space /dev/loop0: 343 MiB, 359661568 bytes, 702464 sectors
Units: sectors of 1 * 512 = 512 bytes
Sector size (logical/physical): 512 bytes / 512 bytes

 Start     End Sectors  Size
  2048    8191    6144    3M
532481 1228799  696319  340M
`;
  it('parses sfdisk -F and picks the largest region, aligned to 1 MiB', () => {
    const r = parseFreeRegions(sfdiskF);
    assert.deepEqual(r, [{ start: 2048, end: 8191, sectors: 6144 }, { start: 532481, end: 1228799, sectors: 696319 }]);
    assert.deepEqual(pickRegion(r), { start: 534528, size: 694272 });
    assert.equal(pickRegion([{ start: 2048, end: 8191, sectors: 6144 }]), undefined, 'under 64 MiB');
  });
  it('parses blkid -o export', () => {
    assert.equal(parseBlkid('DEVNAME=/dev/loop0\nLABEL=k0s-data\nTYPE=ext4\n').get('LABEL'), 'k0s-data');
  });
});

describe('rc.conf', () => {
  it('replaces the commented default, keeps everything else', () => {
    const stock = '# mode\n#rc_cgroup_mode="hybrid"\nrc_parallel="NO"\n';
    assert.equal(setUnifiedMode(stock), '# mode\nrc_cgroup_mode="unified"\nrc_parallel="NO"\n');
    assert.equal(setUnifiedMode('rc_cgroup_mode="legacy"\n'), 'rc_cgroup_mode="unified"\n');
    assert.equal(setUnifiedMode('a=1\n'), 'a=1\nrc_cgroup_mode="unified"\n');
    assert.ok(isUnified(setUnifiedMode(stock)));
    assert.ok(!isUnified(stock));
    assert.ok(isUnified("rc_cgroup_mode='unified'\n"));
  });
});

describe('reboot', () => {
  /** A live machine that records what it is asked to run (no chroot can stand in for a reboot). */
  function liveTarget(files: Record<string, string>): Target & { ran: string[][] } {
    const ran: string[][] = [];
    return {
      kind: 'local', label: 'this machine', liveServices: true, canReboot: true, longJobs: true, ran,
      async run(argv: readonly string[]) { ran.push([...argv]); return { exitCode: 0, stdout: '', stderr: '' }; },
      async readFile(p: string) { return files[p] === undefined ? undefined : Buffer.from(files[p]!); },
      async facts() { return { cgroup: { version: 2, controllers: ['memory'] } } as never; },
    } as unknown as Target & { ran: string[][] };
  }
  const ctx = (target: Target, stops: string[]): RunContext => ({ target, local: target, dryRun: false, log() {}, host() {}, stopAfter: (m) => stops.push(m) });

  it('runs reboot only with --reboot, and stops the run either way', async () => {
    for (const reboot of [false, true]) {
      const t = liveTarget({ '/proc/cmdline': 'console=tty1\n', '/proc/partitions': '' });
      const stops: string[] = [];
      const task = rebootTask({}, { pending: false }, reboot);
      const c = await task.check(ctx(t, stops));
      assert.equal(c.done, false);
      assert.match(c.why, /booted without cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1/);
      await task.apply!(ctx(t, stops));
      assert.deepEqual(t.ran, reboot ? [['reboot']] : []);
      assert.match(stops[0]!, reboot ? /Rebooting/ : /Reboot now/);
    }
  });
  it('is done when the running kernel has the flags, cgroup v2 and the data partition', async () => {
    const t = liveTarget({ '/proc/cmdline': 'x cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n', '/proc/partitions': ' 179 2 100 mmcblk0p2\n' });
    const state = { pending: true };
    const c = await rebootTask({ node: '/dev/mmcblk0p2' }, state).check(ctx(t, []));
    assert.equal(c.done, true, c.why);
    assert.equal(state.pending, false);
  });
});
