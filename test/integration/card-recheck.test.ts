import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { LocalTarget } from '../../src/targets/local-target.js';
import { recheckCard, resolveCard, type Card } from '../../src/lib/disk/card-target.js';
import { imageArgv } from '../../src/lib/disk/card-tools.js';
import { runCli } from '../helpers/cli.js';
import { alpineTarball } from '../helpers/card-inspect.js';
import { RefusedError } from '../../src/core/errors.js';

const opts = { size: 64 * 1024 * 1024 };
/** What the image-file task runs: dd conv=excl oflag=nofollow for a new image. */
const createImage = (card: Card) => {
  const argv = imageArgv(card.path, card.bytes, card.kind === 'image' && card.exists);
  execFileSync(argv[0]!, argv.slice(1), { stdio: 'ignore' });
};

describe('alpine-sd re-checks its target right before the first write', () => {
  it('an image swapped for a symlink (say, to a disk) between check and write is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pi-prep-recheck-'));
    try {
      const img = join(dir, 'card.img');
      truncateSync((writeFileSync(img, ''), img), opts.size);
      const t = new LocalTarget();
      const card = await resolveCard(t, img, opts);
      await recheckCard(t, img, card, opts); // unchanged: fine
      const other = join(dir, 'other.img');
      truncateSync((writeFileSync(other, ''), other), opts.size);
      renameSync(img, join(dir, 'moved.img'));
      symlinkSync(other, img);
      await assert.rejects(recheckCard(t, img, card, opts), (err: Error) => err instanceof RefusedError && /changed since it was checked/.test(err.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a new image replaced by a symlink is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pi-prep-recheck-'));
    try {
      const img = join(dir, 'new.img');
      const t = new LocalTarget();
      const card = await resolveCard(t, img, opts);
      assert.equal(card.kind === 'image' && card.exists, false);
      symlinkSync('/dev/null', img);
      await assert.rejects(recheckCard(t, img, card, opts), /the new image file was replaced/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the read-only loop a killed verify step left is detached by the next run; not while a run holds the image', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pi-prep-recheck-'));
    const img = join(dir, 'left.img');
    truncateSync((writeFileSync(img, ''), img), opts.size);
    const saved = process.env.PI_PREP_LOCK_DIR;
    process.env.PI_PREP_LOCK_DIR = join(dir, 'locks');
    // What `kill -9` during `fsck.vfat` leaves: losetup --read-only --offset (the boot partition).
    const attach = () => execFileSync('losetup', ['--read-only', '--find', '--show', '--offset', '4194304', '--sizelimit', '1048576', img], { encoding: 'utf8' }).trim();
    const attached = () => execFileSync('losetup', ['--associated', img], { encoding: 'utf8' }).trim();
    let loop = attach();
    try {
      // Another live run holds the image: its loop is its own.
      const { lockTarget } = await import('../../src/core/target-lock.js');
      const unlock = lockTarget(img, img);
      await assert.rejects(resolveCard(new LocalTarget(), img, { ...opts, adoptLoops: true }), /is attached as a loop device/);
      unlock();
      // Nobody holds it: the leftover is detached and the image is usable.
      const card = await resolveCard(new LocalTarget(), img, { ...opts, adoptLoops: true });
      assert.equal(card.kind, 'image');
      assert.equal(attached(), '');
      loop = '';
      // A read-write loop (someone's mount, a test) is never taken for a leftover.
      loop = execFileSync('losetup', ['--find', '--show', '--offset', '4194304', img], { encoding: 'utf8' }).trim();
      await assert.rejects(resolveCard(new LocalTarget(), img, { ...opts, adoptLoops: true }), /is attached as a loop device/);
    } finally {
      if (loop && attached()) execFileSync('losetup', ['-d', loop]);
      if (saved === undefined) delete process.env.PI_PREP_LOCK_DIR;
      else process.env.PI_PREP_LOCK_DIR = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an image attached as a loop device is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pi-prep-recheck-'));
    const img = join(dir, 'attached.img');
    truncateSync((writeFileSync(img, ''), img), opts.size);
    const loop = execFileSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).trim();
    try {
      await assert.rejects(resolveCard(new LocalTarget(), img, opts), /is attached as a loop device/);
    } finally {
      execFileSync('losetup', ['-d', loop]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a link that appears at a new image path after the checks is never followed: the file it points to keeps every byte', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pi-prep-recheck-'));
    try {
      const img = join(dir, 'new.img');
      const t = new LocalTarget();
      const card = await resolveCard(t, img, opts);
      // The world changes while the tarball is read: someone plants a link to a big file.
      const victim = join(dir, 'victim');
      writeFileSync(victim, Buffer.alloc(1024 * 1024, 1));
      symlinkSync(victim, img);
      assert.throws(() => createImage(card));
      assert.equal(statSync(victim).size, 1024 * 1024);
      assert.ok(readFileSync(victim).every((b) => b === 1));
      assert.ok(lstatSync(img).isSymbolicLink());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a new image is created by pi-prep itself, and the re-check compares its device and inode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pi-prep-recheck-'));
    try {
      const img = join(dir, 'new.img');
      const t = new LocalTarget();
      const card = await resolveCard(t, img, opts);
      createImage(card);
      assert.equal(statSync(img).size, opts.size);
      await recheckCard(t, img, card, opts);
      // Swapped for another plain file (not a link): still not the file pi-prep created.
      renameSync(img, join(dir, 'moved.img'));
      truncateSync((writeFileSync(img, ''), img), opts.size);
      await assert.rejects(recheckCard(t, img, card, opts), /changed since it was checked/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('a typo under /dev, however spelled, is refused (exit 3) and creates nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pi-prep-devtypo-'));
    symlinkSync('/dev', join(dir, 'devlink'));
    const spellings: [string, string | undefined][] = [
      ['//dev/sdzz', undefined], ['/./dev/sdzz', undefined], ['/dev//sdzz', undefined], ['../dev/sdzz', '/tmp'], [join(dir, 'devlink', 'sdzz'), undefined],
    ];
    for (const [given, cwd] of spellings) {
      it(`${given}${cwd ? ` from ${cwd}` : ''}`, async () => {
        const r = await runCli(['alpine-sd', given, '--no-ssh', '--hostname', 'pi-t', '--tarball', alpineTarball(), '--size', '64M'], { cwd });
        assert.equal(r.code, 3, r.stderr + r.stdout);
        assert.match(r.stderr, /^pi-prep: .*\/dev\/sdzz does not exist: run `pi-prep disks` to see the cards this machine has\n$/);
        assert.equal(existsSync('/dev/sdzz'), false);
      });
    }
    it('cleans up', () => rmSync(dir, { recursive: true, force: true }));
  });
});
