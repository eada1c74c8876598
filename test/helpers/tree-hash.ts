import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** One hash over every path, type, mode, owner, link target and content under dir. */
export function treeHash(dir: string, exclude: string[] = []): string {
  const h = createHash('sha256');
  const walk = (p: string, rel: string) => {
    if (exclude.includes(rel)) return;
    const s = lstatSync(p);
    h.update(`${rel}\0${s.mode}\0${s.uid}:${s.gid}\0`);
    if (s.isSymbolicLink()) h.update(readlinkSync(p));
    else if (s.isFile()) h.update(readFileSync(p));
    else if (s.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e), `${rel}/${e}`);
  };
  walk(dir, '');
  return h.digest('hex');
}
