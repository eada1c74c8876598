import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RootTarget } from '../../src/targets/root-target.js';

describe('root target paths', () => {
  it('absolute and .. symlinks inside the root never lead outside it', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'pi-prep-outside-'));
    const root = mkdtempSync(join(tmpdir(), 'pi-prep-rt-'));
    try {
      writeFileSync(join(outside, 'secret'), 'host file');
      mkdirSync(join(root, 'etc'));
      mkdirSync(join(root, 'run'));
      symlinkSync(outside, join(root, 'etc/abs-dir'));          // absolute: means ROOT/<outside>
      symlinkSync('../../../../..' + outside, join(root, 'etc/up'));
      symlinkSync('/run/real', join(root, 'etc/resolv.conf'));
      const t = new RootTarget(root);
      assert.equal(await t.readFile('/etc/abs-dir/secret'), undefined);
      assert.equal(await t.readFile('/etc/up/secret'), undefined);
      await t.writeFile('/etc/abs-dir/secret', 'written');
      assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'host file');
      assert.ok(existsSync(join(root, outside, 'secret')));
      await t.writeFile('/etc/resolv.conf', 'nameserver 127.0.0.1\n');
      assert.equal(readFileSync(join(root, 'run/real'), 'utf8'), 'nameserver 127.0.0.1\n');
      assert.equal((await t.stat('/etc/resolv.conf'))?.type, 'symlink');
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
