import { lastLine } from '../../core/text.js';
import { onInterrupt } from '../../core/cleanup.js';
import { TaskFailedError } from '../../core/errors.js';
import type { RunContext } from '../../run/task.js';
import { readFat32 } from '../../lib/disk/fat-reader.js';
import type { ManifestFile } from '../../lib/disk/extract.js';
import type { CardLayout } from '../../lib/disk/layout.js';
import { e2fsckArgv, loopArgv } from '../../lib/disk/card-tools.js';
import { progressReporter } from '../../lib/disk/progress.js';

/**
 * Read every file back from the boot filesystem and compare its SHA-256 with what was meant to be
 * written; a fake or failing card shows up here, not on the Pi.
 */
export async function verifyBootFiles(path: string, l: CardLayout, expected: ManifestFile[], log: (line: string) => void): Promise<void> {
  const total = expected.reduce((n, f) => n + f.size, 0);
  const progress = progressReporter('verify', total, log);
  let found;
  try {
    found = await readFat32(path, l.boot.offset, (n) => progress(n));
  } catch (err) {
    throw new TaskFailedError(`the boot filesystem on ${path} cannot be read back (${(err as Error).message}): the card may be failing; try another card`);
  }
  progress(0, true);
  const byPath = new Map(found.map((f) => [f.path, f]));
  for (const want of expected) {
    const got = byPath.get(want.path);
    if (!got) throw new TaskFailedError(`verification failed: ${want.path} is missing from the boot partition of ${path}: try another card`);
    if (got.sha256 !== want.sha256 || got.size !== want.size) {
      throw new TaskFailedError(`verification failed: ${want.path} on ${path} does not read back as written (the card may be fake or failing): try another card`);
    }
  }
  log(`read back ${expected.length} files (${total} bytes): every SHA-256 matches`);
}

/** fsck.vfat -n and e2fsck -fn must both find nothing to fix. */
export async function fsckBoth(ctx: RunContext, path: string, l: CardLayout): Promise<void> {
  const t = ctx.target;
  // A dry run records the attach and gets no device name back: the plan names the loop by its role.
  // A planned attach (a dry run) names no device: the plan names the loop by its role.
  const attach = await t.run(loopArgv(path, l));
  const loop = attach.planned ? '<read-only loop of the boot partition>' : attach.stdout.trim();
  const forget = attach.planned ? () => undefined : onInterrupt(() => t.run(['losetup', '--detach', loop]).then(() => undefined));
  try {
    const fat = await t.run(['fsck.vfat', '-n', loop], { allowFailure: true });
    if (fat.exitCode !== 0) throw new TaskFailedError(`fsck.vfat -n found errors on the boot filesystem of ${path}: ${lastLine(fat.stdout)}`);
    if (fat.stdout) ctx.log(`fsck.vfat: ${lastLine(fat.stdout)}`);
  } finally {
    await t.run(['losetup', '--detach', loop]);
    forget();
  }
  const ext = await t.run(e2fsckArgv(path, l), { allowFailure: true });
  if (ext.exitCode !== 0) throw new TaskFailedError(`e2fsck -fn found errors on the data filesystem of ${path}: ${lastLine(ext.stdout || ext.stderr)}`);
  if (ext.stdout) ctx.log(`e2fsck: ${lastLine(ext.stdout)}`);
}
