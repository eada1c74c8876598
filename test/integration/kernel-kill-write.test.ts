import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const LOOP = fileURLToPath(new URL('../helpers/write-loop.js', import.meta.url));
const FILES = ['/boot/firmware/cmdline.txt', '/boot/firmware/config.txt'];
const version = (p: string, which: 'old' | 'new') => `${which} ${p}\n` + (which === 'old' ? 'a' : 'b').repeat(256 * 1024) + '\n';

describe('kill -9 while cmdline.txt and config.txt are being rewritten', () => {
  it('leaves the old or the new file every time, never a mix (20 kills)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pi-prep-kill-'));
    try {
      mkdirSync(join(root, 'boot/firmware'), { recursive: true });
      for (const p of FILES) writeFileSync(join(root, p), version(p, 'old'));
      for (let i = 0; i < 20; i++) {
        const child = spawn(process.execPath, [LOOP, root, ...FILES], { stdio: ['ignore', 'pipe', 'inherit'] });
        // Kill once it is writing continuously; where the kill lands varies, the outcome may not.
        await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
        await new Promise((r) => setImmediate(r));
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        for (const p of FILES) {
          const body = readFileSync(join(root, p), 'utf8');
          assert.ok(body === version(p, 'old') || body === version(p, 'new'), `${p} is whole after kill ${i + 1}`);
          assert.equal(readFileSync(join(root, p + '.pi-prep.bak'), 'utf8'), version(p, 'old'), 'backup is the first version');
        }
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
