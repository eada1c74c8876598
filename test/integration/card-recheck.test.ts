import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { LocalTarget } from '../../src/targets/local-target.js';
import { recheckCard, resolveCard } from '../../src/steps/disk/card-target.js';
import { RefusedError } from '../../src/core/errors.js';

const opts = { size: 64 * 1024 * 1024 };

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
});
