import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { alpineTarball, bootFile, bootFiles, e2fsck, fsckVfat, partitions, sha256, sh, tarballFiles } from '../helpers/card-inspect.js';
import { jsonData } from '../helpers/json-contract.js';

const M = 1024 * 1024;

/** Real disks lsblk lists on this machine: only ever given to --dry-run. */
function realDisks(): string[] {
  const doc = JSON.parse(sh('lsblk', ['--json', '--paths', '--nodeps', '--output', 'name,type'])) as { blockdevices: { name: string; type: string }[] };
  return doc.blockdevices.filter((d) => d.type === 'disk').map((d) => d.name);
}

describe('pi-prep alpine-sd on loop devices and against bad targets', () => {
  let work: string;
  let tarball: string;
  const loops: string[] = [];
  const attach = (img: string, ...flags: string[]) => {
    const dev = sh('losetup', [...flags, '-f', '--show', img]).trim();
    loops.push(dev);
    return dev;
  };

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'pi-prep-sd-dev-'));
    tarball = alpineTarball();
  });
  after(() => {
    for (const l of loops) execFileSync('losetup', ['-d', l], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  });

  it('writes a verified card onto a loop device (--loop --yes with the exact device)', async () => {
    const img = join(work, 'loop.img');
    sh('truncate', ['-s', '640M', img]);
    const dev = attach(img);
    const r = await runCli(['alpine-sd', dev, '--no-ssh', '--loop', '--yes', '--tarball', tarball, '--hostname', 'looped']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const parts = partitions(dev);
    assert.deepEqual(parts.map((p) => [p.start, p.type, p.bootable]), [[8192, 'c', true], [532480, '83', false]]);
    assert.match(fsckVfat(dev, 4 * M, 256 * M), /files/);
    assert.match(e2fsck(dev, 260 * M), /k0s-data/);
    const want = tarballFiles(tarball);
    const got = bootFiles(dev, 4 * M);
    for (const [p, h] of want) if (p !== 'cmdline.txt') assert.equal(got.get(p), h, p);
    assert.match(bootFile(dev, 4 * M, 'cmdline.txt').toString(), /cgroup_enable=memory/);
    assert.ok(got.has('looped.apkovl.tar.gz'));
  });

  it('refuses a loop device without --loop, and without --yes when nobody can type', async () => {
    const img = join(work, 'guard.img');
    sh('truncate', ['-s', '600M', img]);
    const dev = attach(img);
    const before = sha256(img);
    const noLoop = await runCli(['alpine-sd', dev, '--no-ssh', '--yes', '--tarball', tarball]);
    assert.equal(noLoop.code, 3, noLoop.stderr);
    assert.match(noLoop.stderr, /loop device: add --loop/);
    const noYes = await runCli(['alpine-sd', dev, '--no-ssh', '--loop', '--tarball', tarball]);
    assert.equal(noYes.code, 3, noYes.stderr);
    assert.match(noYes.stderr, /--yes and the device named exactly/);
    const link = join(work, 'alias');
    symlinkSync(dev, link);
    const viaLink = await runCli(['alpine-sd', link, '--no-ssh', '--loop', '--yes', '--tarball', tarball]);
    assert.equal(viaLink.code, 3, viaLink.stderr);
    assert.match(viaLink.stderr, new RegExp(`run again with ${dev}`));
    assert.equal(sha256(img), before, 'a refused run changed the device');
  });

  it('sizes that do not fit the card are refused before anything is written (exit 2, one line)', async () => {
    const img = join(work, 'small.img');
    sh('truncate', ['-s', '600M', img]);
    const dev = attach(img);
    const before = sha256(img);
    for (const [flags, why] of [
      [['--size', '4G'], new RegExp(`^pi-prep: --size 4G is for a new image file, and ${dev} is a 600M disk used whole: drop --size\n$`)],
      [['--size', '600M'], /--size 600M is for a new image file/],
      [['--data-size', '1G'], /^pi-prep: 600M is too small for a 256M boot partition and a 1G data partition: use a card \(or --size\) of at least 1\.3G, or a smaller --boot-size\/--data-size\n$/],
    ] as const) {
      const r = await runCli(['alpine-sd', dev, '--no-ssh', '--loop', '--yes', '--tarball', tarball, '--hostname', 'sized', ...flags]);
      assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, why);
    }
    assert.equal(sha256(img), before, 'a refused run changed the device');
  });

  it('refuses (exit 3, dry run) every real disk of this machine', async () => {
    const disks = realDisks();
    assert.ok(disks.length > 0, 'lsblk lists no disk');
    for (const d of disks) {
      const r = await runCli(['alpine-sd', d, '--no-ssh', '--dry-run', '--tarball', tarball]);
      assert.equal(r.code, 3, `${d}: ${r.stderr}`);
      assert.match(r.stderr, /refusing|system disk|not a disk/);
    }
  });

  it('refuses bad targets (dry run): char device, directory, symlink to a system disk, missing device, read-only, a file that is not an image', async () => {
    const dir = join(work, 'a-directory');
    mkdirSync(dir);
    const sysLink = join(work, 'system-disk');
    symlinkSync(realDisks()[0]!, sysLink);
    const roImg = join(work, 'ro.img');
    sh('truncate', ['-s', '600M', roImg]);
    const ro = attach(roImg, '-r');
    const notImage = join(work, 'notes.txt');
    writeFileSync(notImage, 'my notes, not a disk image\n');
    const cases: [string, string[], RegExp][] = [
      ['/dev/null', [], /character device/],
      [dir, [], /directory/],
      [sysLink, [], /system disk|refusing/],
      ['/dev/sdzz9', [], /does not exist/],
      [ro, ['--loop'], /read-only/],
      [notImage, [], /not a disk image.*--force/],
    ];
    for (const [t, extra, why] of cases) {
      const r = await runCli(['alpine-sd', t, '--no-ssh', '--dry-run', '--tarball', tarball, ...extra]);
      assert.equal(r.code, 3, `${t}: ${r.stderr}`);
      assert.match(r.stderr, why, t);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${t}: ${r.stderr}`);
    }
    assert.equal(execFileSync('cat', [notImage]).toString(), 'my notes, not a disk image\n');
    const forced = await runCli(['alpine-sd', notImage, '--no-ssh', '--dry-run', '--force', '--tarball', tarball, '--size', '600M']);
    assert.equal(forced.code, 0, forced.stderr);
  });

  it('pi-prep disks lists this machine\'s disks with a verdict and reason', async () => {
    const r = await runCli(['disks', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { disks: list } = jsonData<{ disks: { device: string; verdict: string; reason: string }[] }>(r.stdout, 'disks');
    for (const d of realDisks()) {
      const v = list.find((x) => x.device === d);
      assert.ok(v, `${d} missing`);
      assert.equal(v!.verdict, 'refused');
      assert.ok(v!.reason.length > 0);
    }
  });

  it('a card mounted at a path with a space has that one mount point (the unmount step gets it whole)', async () => {
    const img = join(work, 'spaced.img');
    sh('truncate', ['-s', '32M', img]);
    sh('mkfs.ext4', ['-q', '-F', img]);
    const dev = attach(img);
    const at = join(work, 'media', 'My Card');
    mkdirSync(at, { recursive: true });
    sh('mount', [dev, at]);
    try {
      const r = await runCli(['disks', '--json', '--loop']);
      assert.equal(r.code, 0, r.stderr);
      const { disks } = jsonData<{ disks: { device: string; mounts: { device: string; mountpoint: string }[] }[] }>(r.stdout, 'disks');
      assert.deepEqual(disks.find((d) => d.device === dev)?.mounts, [{ device: dev, mountpoint: at }]);
    } finally {
      sh('umount', [at]);
    }
  });
});
