import { createHash } from 'node:crypto';
import { closeSync, existsSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Everything a write leaves behind under each path, as one listing: per entry its type, mode,
 * owner, size, mtime and ctime (nanoseconds) and content hash; a directory's mtime changes when an
 * entry is made or removed in it, even one removed again. A block device is hashed through its
 * node (what a write through the node would change). Atime is left out: reading is allowed.
 * `statOnly`: files not hashed (a loop device's backing file, hashed through the device instead).
 */
export function fsState(paths: string[], exclude: string[] = [], statOnly: string[] = []): string {
  const lines: string[] = [];
  const walk = (p: string) => {
    if (exclude.includes(p)) return;
    if (!existsSync(p) && !isLink(p)) return void lines.push(`${p} absent`);
    const s = lstatSync(p, { bigint: true });
    let what = `${p} ${s.mode.toString(8)} ${s.uid}:${s.gid} ${s.size} m${s.mtimeNs} c${s.ctimeNs}`;
    if (s.isSymbolicLink()) what += ` -> ${readlinkSync(p)}`;
    else if ((s.isFile() || s.isBlockDevice()) && !statOnly.includes(p)) what += ` ${hashFile(p)}`;
    lines.push(what);
    if (s.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  };
  for (const p of paths) walk(p);
  return lines.join('\n');
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function hashFile(p: string): string {
  const h = createHash('sha256');
  const buf = Buffer.alloc(4 * 1024 * 1024);
  const fd = openSync(p, 'r');
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** The lines of two listings that differ, for an assertion message. */
export function stateDiff(before: string, after: string): string {
  const a = new Set(before.split('\n'));
  const b = new Set(after.split('\n'));
  return [...[...a].filter((l) => !b.has(l)).map((l) => `- ${l}`), ...[...b].filter((l) => !a.has(l)).map((l) => `+ ${l}`)].slice(0, 40).join('\n');
}
