import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO } from './card-inspect.js';

/**
 * The repository's sources as a user's clone has them (tracked and untracked-not-ignored files
 * of the work tree, no dist/ or node_modules/), copied to DEST: npm's `prepare` then runs there,
 * never under the running tests' dist/.
 */
export function copySources(dest: string): void {
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: REPO }).toString().split('\0').filter(Boolean);
  for (const f of files) {
    if (!existsSync(join(REPO, f))) continue; // deleted in the work tree, not yet committed
    mkdirSync(dirname(join(dest, f)), { recursive: true });
    cpSync(join(REPO, f), join(dest, f));
  }
}
