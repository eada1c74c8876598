import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLEANUP_MODULE = fileURLToPath(new URL('../../src/core/cleanup.js', import.meta.url));

it('signal handlers installed twice (a fleet worker runs main() per host) still clean up before exiting', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pi-prep-sighandlers-'));
  const out = join(dir, 'cleaned');
  try {
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import { writeFileSync } from 'node:fs';
      const { exitOnSignals, onInterrupt } = await import(${JSON.stringify(CLEANUP_MODULE)});
      exitOnSignals(() => undefined);
      exitOnSignals(() => undefined);
      // An asynchronous cleanup (a loop device detached, an ssh master stopped): it must finish.
      onInterrupt(async () => {
        await new Promise((r) => setImmediate(r));
        writeFileSync(${JSON.stringify(out)}, 'cleaned');
      });
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1 << 30);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    await new Promise<void>((r) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && r()));
    child.kill('SIGTERM');
    assert.equal(await exited, 143);
    assert.equal(readFileSync(out, 'utf8'), 'cleaned');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
