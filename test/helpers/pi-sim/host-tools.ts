import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { writeFile } from '../fixture-root.js';

/**
 * This machine's own tool (and its libraries) inside a root: the real sfdisk, mkfs.ext4, blkid and
 * mtools act on the card from inside the node, where Alpine would have its own builds of them.
 */
export function installHostTool(root: string, host: string, dest: string): void {
  const libs = execFileSync('ldd', [host]).toString().match(/\/[^\s)]+/g) ?? [];
  for (const lib of libs) {
    const to = join(root, lib);
    if (!existsSync(to)) {
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(lib, to);
    }
  }
  writeFile(root, dest, readFileSync(host), 0o755);
}
