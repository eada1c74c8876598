import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAT32_MIN_CLUSTERS, chooseFat32Geometry } from '../../src/lib/disk/fat32.js';
import { ALIGN, planLayout, sfdiskScript } from '../../src/lib/disk/layout.js';
import { parseSize } from '../../src/lib/disk/size.js';
import { mkfsVfatArgv, parseSfdiskDump, expectedPartitions } from '../../src/lib/disk/card-tools.js';
import { UsageError } from '../../src/core/errors.js';

const M = 1024 * 1024;

describe('FAT32 geometry (the cluster-count rule)', () => {
  it('256 MiB needs clusters smaller than 4 KiB to stay FAT32', () => {
    const g = chooseFat32Geometry(256 * M);
    assert.ok(g.sectorsPerCluster < 8, `got ${g.sectorsPerCluster} sectors per cluster`);
    assert.ok(g.clusters >= FAT32_MIN_CLUSTERS);
  });

  it('every size from 40 MiB to 64 GiB gets at least 65525 clusters', () => {
    for (let mib = 40; mib <= 65536; mib = Math.ceil(mib * 1.37)) {
      const g = chooseFat32Geometry(mib * M);
      assert.ok(g.clusters >= FAT32_MIN_CLUSTERS, `${mib} MiB: ${g.clusters} clusters`);
    }
  });

  it('refuses a boot size no FAT32 fits in, naming the flag', () => {
    assert.throws(() => chooseFat32Geometry(16 * M), (e: unknown) => e instanceof UsageError && /--boot-size/.test(e.message));
  });

  it('mkfs.vfat and fsck.vfat agree with the computed cluster count (real tools, image files)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pi-prep-fat-'));
    try {
      for (const mib of [36, 64, 256, 1024]) {
        const img = join(dir, `${mib}.img`);
        const l = planLayout(mib * M + 80 * M, mib * M);
        execFileSync('truncate', ['-s', String(l.diskBytes), img]);
        const [cmd, ...args] = mkfsVfatArgv(img, l);
        execFileSync(cmd!, args, { stdio: 'pipe' });
        const loop = execFileSync('losetup', ['-r', '-f', '--show', '-o', String(l.boot.offset), '--sizelimit', String(l.boot.bytes), img]).toString().trim();
        try {
          const out = execFileSync('fsck.vfat', ['-n', loop]).toString();
          const m = /(\d+)\/(\d+) clusters/.exec(out);
          assert.ok(m, out);
          // mkfs.fat aligns its FATs, so it may give a few clusters fewer: the margin covers that.
          const real = Number(m![2]);
          assert.ok(real >= FAT32_MIN_CLUSTERS, `${mib} MiB: only ${real} clusters`);
          assert.ok(Math.abs(real - l.boot.fat.clusters) <= 16, `${mib} MiB: fsck says ${real}, computed ${l.boot.fat.clusters}`);
        } finally {
          execFileSync('losetup', ['-d', loop]);
        }
        const info = execFileSync('minfo', ['-i', `${img}@@${l.boot.offset}`], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }).toString();
        assert.match(info, /disk type="FAT32/, `${mib} MiB is not FAT32`);
        rmSync(img);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('card layout', () => {
  it('aligns partitions to 4 MiB, boot first, data to the end less 1 MiB', () => {
    const l = planLayout(2 * 1024 * M, 256 * M);
    assert.equal(l.boot.offset, ALIGN);
    assert.equal(l.data.offset, ALIGN + 256 * M);
    assert.equal(l.data.offset % ALIGN, 0);
    assert.ok(l.data.offset + l.data.bytes <= l.diskBytes - M);
  });

  it('sfdisk reads the script back as the expected table (real sfdisk on an image)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pi-prep-sfdisk-'));
    try {
      const img = join(dir, 'x.img');
      const l = planLayout(600 * M, 128 * M, 200 * M);
      execFileSync('truncate', ['-s', String(l.diskBytes), img]);
      execFileSync('sfdisk', ['-q', img], { input: sfdiskScript(l) });
      assert.deepEqual(parseSfdiskDump(execFileSync('sfdisk', ['--dump', img]).toString()), expectedPartitions(l));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a card too small for the partitions is bad input that names the fix', () => {
    assert.throws(() => planLayout(200 * M, 256 * M), (e: unknown) => e instanceof UsageError && /--size|--boot-size/.test(e.message));
  });

  it('parses sizes in binary units and rejects junk', () => {
    assert.equal(parseSize('2G', '--size'), 2 * 1024 * M);
    assert.equal(parseSize('256MiB', '--size'), 256 * M);
    // A card's label counts in SI units: "8GB" is 8 x 10^9 bytes, smaller than 8 GiB.
    assert.equal(parseSize('8GB', '--size'), 8e9);
    assert.equal(parseSize('8gb', '--size'), 8e9);
    assert.equal(parseSize('8GiB', '--size'), 8 * 1024 * M);
    assert.equal(parseSize('8G', '--size'), 8 * 1024 * M);
    assert.equal(parseSize('512B', '--size'), 512);
    assert.equal(parseSize('1048576', '--size'), M);
    assert.throws(() => parseSize('8Gi', '--size'), /8GB \(decimal, as on a card's label\)/);
    assert.throws(() => parseSize('lots', '--size'), UsageError);
    assert.throws(() => parseSize('0', '--size'), UsageError);
  });

  it('a size no file or card can have is bad input (exit 2), not a failure of truncate later', () => {
    assert.throws(() => parseSize('99999999T', '--size'), (e: unknown) => e instanceof UsageError && e.message === '--size 99999999T is more than 16T, the largest image or card pi-prep writes: use e.g. --size 2G');
    assert.equal(parseSize('16T', '--size'), 16 * 1024 ** 4);
  });
});
