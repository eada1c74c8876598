import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atomicWrite } from '../../src/core/atomic-write.js';

describe('atomic writes', () => {
  it('sweep the temp files a killed run left beside the file (one may hold a token), and keep a live run\'s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pi-prep-atomic-'));
    try {
      const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
      const dead = `.k0stoken.pi-prep-${pidMax + 1}-0badf00d.tmp`;
      const older = '.k0stoken.pi-prep-0badf00d.tmp'; // before temp names carried the pid
      const live = `.k0stoken.pi-prep-${process.pid}-0badf00d.tmp`;
      const other = `.config.txt.pi-prep-${pidMax + 1}-0badf00d.tmp`; // another file's: its own write sweeps it
      for (const n of [dead, older, live, other]) writeFileSync(join(dir, n), 'a full token copy');
      await atomicWrite(join(dir, 'k0stoken'), 'token\n', 0o600);
      assert.deepEqual(readdirSync(dir).sort(), ['k0stoken', live, other].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
