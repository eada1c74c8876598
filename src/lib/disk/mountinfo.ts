import { readFile } from 'node:fs/promises';

export interface Mount {
  /** The mount's source: /dev/sdb1 for a disk; anything else for virtual filesystems. */
  device: string;
  mountpoint: string;
}

/**
 * Every mounted filesystem, as the kernel lists them in /proc/self/mountinfo: no df, so no
 * mount point split at a space, and nothing to hang on a dead network mount (nothing is statted).
 */
export async function mountTable(file = '/proc/self/mountinfo'): Promise<Mount[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return parseMountinfo(text);
}

/** proc(5): `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`. */
export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 3) continue;
    out.push({ device: unescapeOctal(fields[dash + 2]!), mountpoint: unescapeOctal(fields[4]!) });
  }
  return out;
}

/** The kernel writes space, tab, newline and backslash in paths as \040, \011, \012, \134. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
