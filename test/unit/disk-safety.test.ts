import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseLsblk, type BlockDevice } from '../../src/lib/disk/lsblk.js';
import { candidateDisks, diskVerdict } from '../../src/lib/disk/safety.js';
import { fatNameProblem } from '../../src/lib/disk/fat-names.js';
import { safeEntryPath } from '../../src/lib/disk/extract.js';
import { RefusedError } from '../../src/core/errors.js';
import { parseMountinfo } from '../../src/lib/disk/mountinfo.js';

const dev = (over: Partial<BlockDevice> & { path: string }): BlockDevice => ({
  type: 'disk', size: 32e9, ro: false, rm: false, hotplug: false, tran: null, subsystems: 'block:scsi:usb:pci',
  model: 'Card Reader', vendor: 'Generic', mountpoint: null, children: [], ...over,
});

describe('disk verdicts (rpi-imager rules)', () => {
  const cases: [string, BlockDevice, 'ok' | 'refused', RegExp][] = [
    ['USB card reader', dev({ path: '/dev/sdb', rm: true, tran: 'usb' }), 'ok', /removable/],
    ['built-in SD slot with rm=0', dev({ path: '/dev/mmcblk0', subsystems: 'block:mmc:mmc_host:platform' }), 'ok', /removable/],
    ['SATA system disk', dev({ path: '/dev/sda', subsystems: 'block:scsi:pci', tran: 'sata' }), 'refused', /system disk: not removable/],
    ['disk with / on a partition', dev({ path: '/dev/sdc', rm: true, tran: 'usb', children: [dev({ path: '/dev/sdc1', type: 'part', mountpoint: '/' })] }), 'refused', /mounted at \//],
    ['USB disk holding /boot', dev({ path: '/dev/sdd', hotplug: true, children: [dev({ path: '/dev/sdd1', type: 'part', mountpoint: '/boot/firmware' })] }), 'refused', /\/boot\/firmware/],
    ['swap on it', dev({ path: '/dev/sde', rm: true, children: [dev({ path: '/dev/sde2', type: 'part', mountpoint: '[SWAP]' })] }), 'refused', /SWAP/],
    ['NVMe', dev({ path: '/dev/nvme0n1', subsystems: 'block:nvme:pci', tran: 'nvme' }), 'refused', /NVMe/],
    ['read-only card', dev({ path: '/dev/sdf', rm: true, ro: true }), 'refused', /read-only/],
    ['a partition', dev({ path: '/dev/sdb1', type: 'part', rm: true }), 'refused', /partition/],
    ['loop without --loop', dev({ path: '/dev/loop3', type: 'loop', subsystems: 'block' }), 'refused', /--loop/],
    ['empty reader', dev({ path: '/dev/sdg', rm: true, size: 0 }), 'refused', /no medium/],
    ['zram', dev({ path: '/dev/zram0', subsystems: 'block' }), 'refused', /not a disk/],
    ['automounted card', dev({ path: '/dev/sdh', rm: true, children: [dev({ path: '/dev/sdh1', type: 'part', mountpoint: '/media/me/bootfs' })] }), 'ok', /unmounted with your consent/],
    ['USB disk in a RAID', dev({ path: '/dev/sdi', hotplug: true, children: [dev({ path: '/dev/sdi1', type: 'part', children: [dev({ path: '/dev/md0', type: 'raid1', mountpoint: '/mnt/storage' })] })] }), 'refused', /raid1 volume \(\/dev\/md0\)/],
    ['USB disk with unmounted LVM', dev({ path: '/dev/sdj', rm: true, children: [dev({ path: '/dev/sdj1', type: 'part', children: [dev({ path: '/dev/mapper/vg-data', type: 'lvm' })] })] }), 'refused', /lvm volume/],
    ['card mounted outside the automount places', dev({ path: '/dev/sdk', rm: true, children: [dev({ path: '/dev/sdk1', type: 'part', mountpoint: '/srv/backup' })] }), 'refused', /mounted at \/srv\/backup, not where cards are automounted/],
  ];
  for (const [name, d, want, reason] of cases) {
    it(name, () => {
      const v = diskVerdict(d);
      assert.equal(v.verdict, want, v.reason);
      assert.match(v.reason, reason);
    });
  }

  it('a loop device is acceptable only with --loop', () => {
    assert.equal(diskVerdict(dev({ path: '/dev/loop3', type: 'loop', subsystems: 'block' }), { allowLoop: true }).verdict, 'ok');
  });

  it('an eMMC (it has boot0) is a system disk even though MMC counts as removable', () => {
    const all = [dev({ path: '/dev/mmcblk0', subsystems: 'block:mmc:mmc_host' }), dev({ path: '/dev/mmcblk0boot0', subsystems: 'block:mmc' })];
    const v = candidateDisks(all).find((x) => x.device === '/dev/mmcblk0')!;
    assert.equal(v.verdict, 'refused');
    assert.match(v.reason, /eMMC/);
  });

  it('mounts from the kernel\'s mount table count too, even when lsblk shows none', () => {
    const d = dev({ path: '/dev/sdb', rm: true, children: [dev({ path: '/dev/sdb1', type: 'part' })] });
    assert.equal(diskVerdict(d, { extraMounts: [{ device: '/dev/sdb1', mountpoint: '/home' }] }).verdict, 'refused');
  });

  it('reads /proc/self/mountinfo: optional fields skipped, escaped spaces, tabs and backslashes restored', () => {
    const text = [
      '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
      '47 27 7:0 / /media/me/My\\040Card rw,relatime shared:5 master:2 - vfat /dev/sdb1 rw',
      '48 27 7:1 / /media/a\\011b\\134c rw - ext4 /dev/sdc1 rw',
      '49 27 0:50 / /proc rw,nosuid - proc proc rw',
      'garbage',
      '',
    ].join('\n');
    assert.deepEqual(parseMountinfo(text), [
      { device: '/dev/root', mountpoint: '/mnt2' },
      { device: '/dev/sdb1', mountpoint: '/media/me/My Card' },
      { device: '/dev/sdc1', mountpoint: '/media/a\tb\\c' },
      { device: 'proc', mountpoint: '/proc' },
    ]);
  });

  it('parses lsblk JSON from old util-linux (strings) and new (booleans)', () => {
    const old = parseLsblk('{"blockdevices":[{"name":"/dev/sdb","type":"disk","subsystems":"block:scsi:usb:pci","ro":"0","rm":"1","hotplug":"1","size":"31914983424","model":"SD  ","vendor":null,"tran":"usb","mountpoint":null}]}');
    assert.equal(old[0]!.rm, true);
    assert.equal(old[0]!.ro, false);
    assert.equal(old[0]!.size, 31914983424);
    assert.equal(old[0]!.model, 'SD');
  });
});

describe('tar entry names', () => {
  it('normalises ./ and refuses escapes', () => {
    assert.equal(safeEntryPath('./boot/vmlinuz-rpi', 't'), 'boot/vmlinuz-rpi');
    assert.equal(safeEntryPath('./', 't'), '');
    assert.throws(() => safeEntryPath('../etc/passwd', 't'), RefusedError);
    assert.throws(() => safeEntryPath('a/../../x', 't'), RefusedError);
    assert.throws(() => safeEntryPath('/etc/passwd', 't'), RefusedError);
  });

  it('FAT name rules', () => {
    assert.equal(fatNameProblem('overlays/vc4-kms-v3d.dtbo'), undefined);
    assert.match(fatNameProblem('a:b')!, /characters/);
    assert.match(fatNameProblem('dir/what?')!, /characters/);
    assert.match(fatNameProblem('trailing.')!, /dot or space/);
    assert.match(fatNameProblem('CON')!, /reserved/);
  });
});
