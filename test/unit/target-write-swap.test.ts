import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RootTarget } from '../../src/targets/root-target.js';
import { LocalTarget } from '../../src/targets/local-target.js';
import { writeSeam } from '../../src/core/atomic-write.js';
import { RefusedError } from '../../src/core/errors.js';

/**
 * The write rule for files on this machine (a root directory, or the machine itself): the
 * directory is decided once; right before the write it is opened again without following links
 * and must be the same one (device, inode). The test holds the write between the two and swaps
 * the directory for a symlink to a directory elsewhere.
 */
describe('a directory swapped for a symlink between the decision and the write', () => {
  const dirs: string[] = [];
  afterEach(() => {
    writeSeam.beforeRecheck = undefined;
    dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
  });
  const temp = (name: string) => {
    const d = mkdtempSync(join(tmpdir(), `pi-prep-swap-${name}-`));
    dirs.push(d);
    return d;
  };
  /** At the point of interest: DIR moved aside (kept, with what it held) and a symlink to ELSEWHERE in its place. */
  const swapAt = (dir: string, elsewhere: string) => {
    let swapped = false;
    writeSeam.beforeRecheck = (d) => {
      if (swapped || d !== dir) return;
      swapped = true;
      renameSync(dir, `${dir}.moved`);
      symlinkSync(elsewhere, dir);
    };
    return () => swapped;
  };
  const refusedFor = (dir: string) => (err: unknown) => {
    assert.ok(err instanceof RefusedError, String(err));
    assert.equal(err.message, `${dir} changed while pi-prep was writing into it (a symlink or another directory is there now): nothing was written; find what else changes it, then run again`);
    return true;
  };

  for (const how of ['writeFile', 'putFile', 'writeFile with backup'] as const) {
    it(`root target, ${how}: refused, nothing written outside the root nor in the moved directory`, async () => {
      const root = temp('root');
      const outside = temp('outside');
      const k0sDir = join(root, 'etc/k0s');
      mkdirSync(k0sDir, { recursive: true });
      writeFileSync(join(k0sDir, 'k0stoken'), 'old token\n', { mode: 0o600 });
      const src = join(temp('src'), 'k0s');
      writeFileSync(src, 'a binary');
      const t = new RootTarget(root);
      const swapped = swapAt(k0sDir, outside);
      const write = how === 'putFile'
        ? t.putFile(src, '/etc/k0s/k0stoken', { mode: 0o600 })
        : t.writeFile('/etc/k0s/k0stoken', 'secret token\n', { mode: 0o600, secret: true, backup: how !== 'writeFile' });
      await assert.rejects(write, refusedFor(k0sDir));
      assert.ok(swapped(), 'the world was changed at the point of interest');
      assert.deepEqual(readdirSync(outside), [], 'nothing outside the root');
      assert.deepEqual(readdirSync(`${k0sDir}.moved`), ['k0stoken'], 'no temp, no backup left in the moved directory');
      assert.equal(readFileSync(join(`${k0sDir}.moved`, 'k0stoken'), 'utf8'), 'old token\n');
    });
  }

  it('this machine (local target): refused the same way', async () => {
    const base = temp('local');
    const outside = temp('outside');
    const dir = join(base, 'conf');
    mkdirSync(dir);
    const swapped = swapAt(dir, outside);
    await assert.rejects(new LocalTarget().writeFile(join(dir, 'file.conf'), 'x\n'), refusedFor(dir));
    assert.ok(swapped());
    assert.deepEqual(readdirSync(outside), []);
    assert.deepEqual(readdirSync(`${dir}.moved`), []);
  });

  it('no swap: the write lands, through the descriptor, with its mode', async () => {
    const root = temp('root');
    const t = new RootTarget(root);
    await t.writeFile('/etc/k0s/k0stoken', 'secret token\n', { mode: 0o600, secret: true });
    assert.equal(readFileSync(join(root, 'etc/k0s/k0stoken'), 'utf8'), 'secret token\n');
    assert.deepEqual((await t.stat('/etc/k0s/k0stoken'))?.mode, 0o600);
    assert.deepEqual(readdirSync(join(root, 'etc/k0s')), ['k0stoken']);
  });
});
