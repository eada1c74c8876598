import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { Target } from '../../targets/target.js';
import { e2fsckArgv, expectedPartitions, parseSfdiskDump } from './card-tools.js';
import type { ManifestFile } from './extract.js';
import { readFat32, readFatFiles } from './fat-reader.js';
import { DATA_LABEL } from '../alpine/paths.js';
import type { CardLayout } from './layout.js';

/** What one part of a card was found to be: right, or why not. */
export interface Finding {
  ok: boolean;
  why: string;
}

/** A card (or image) as read now, against what the plan asks for. */
export interface CardState {
  table: Finding;
  boot: Finding;
  data: Finding;
  /** Every part is as planned: nothing to write, nothing to erase. */
  right: boolean;
}

/** What a finished card holds, for the comparison. */
export interface CardExpectation {
  layout: CardLayout;
  /** Every shared boot file (Alpine's, cmdline.txt, usercfg.txt) with its SHA-256. */
  bootFiles: ManifestFile[];
  /** The card's overlay: its name, and the file the plan makes for a given writing time. */
  apkovl: { name: string; at: (writtenAt: number) => ManifestFile };
  /** The data partition's pi-prep/ files (none without --join). */
  join?: { tokenSha256: string; k0sSha256: string };
}

const ok = (why: string): Finding => ({ ok: true, why });
const no = (why: string): Finding => ({ ok: false, why });

/**
 * Read a card without mounting or writing it: the partition table (sfdisk --dump), every file of the
 * FAT boot filesystem with its SHA-256 (pi-prep's own reader), the ext4 data filesystem's label,
 * e2fsck -fn, and its pi-prep/ files (debugfs, read-only). A dry run reads it the same way.
 */
export async function inspectCard(t: Target, path: string, want: CardExpectation): Promise<CardState> {
  const l = want.layout;
  const info = await t.stat(path);
  if (!info || (info.type === 'file' && info.size < l.diskBytes)) {
    const none = no(info ? 'the image is smaller than the layout' : 'no card yet: the image is created');
    return { table: none, boot: none, data: none, right: false };
  }
  const [table, boot, data] = await Promise.all([tableFinding(t, path, l), bootFinding(path, want), dataFinding(t, path, want)]);
  return { table, boot, data, right: table.ok && boot.ok && data.ok };
}

async function tableFinding(t: Target, path: string, l: CardLayout): Promise<Finding> {
  const dump = await t.run(['sfdisk', '--dump', path], { readOnly: true, allowFailure: true });
  const got = dump.exitCode === 0 ? parseSfdiskDump(dump.stdout) : [];
  if (!got.length) return no('no partition table');
  if (JSON.stringify(got) !== JSON.stringify(expectedPartitions(l))) return no('another partition table than planned');
  return ok('MBR as planned: p1 FAT32 LBA bootable, p2 Linux');
}

async function bootFinding(path: string, want: CardExpectation): Promise<Finding> {
  const offset = want.layout.boot.offset;
  let found;
  try {
    found = await readFat32(path, offset);
  } catch {
    return no(`no FAT32 filesystem at byte ${offset}`);
  }
  const byPath = new Map(found.map((f) => [f.path, f]));
  for (const f of want.bootFiles) {
    const got = byPath.get(f.path);
    if (!got) return no(`${f.path} is missing`);
    if (got.sha256 !== f.sha256 || got.size !== f.size) return no(`${f.path} differs`);
  }
  // Another overlay (another host name) would be the one initramfs-init might pick.
  const other = found.find((f) => !f.path.includes('/') && f.path.endsWith('.apkovl.tar.gz') && f.path !== want.apkovl.name);
  if (other) return no(`it holds another overlay, ${other.path}: the card's identity differs`);
  const ovl = (await readFatFiles(path, offset, [want.apkovl.name])).get(want.apkovl.name);
  if (!ovl) return no(`${want.apkovl.name} is missing: the card has another host name`);
  const at = overlayTime(ovl);
  const planned = at === undefined ? undefined : want.apkovl.at(at);
  if (!planned || planned.sha256 !== createHash('sha256').update(ovl).digest('hex')) {
    return no(`${want.apkovl.name} differs from the plan (keys, Wi-Fi, join, or saved by lbu on a Pi)`);
  }
  return ok(`${want.bootFiles.length + 1} files read back with their SHA-256, ${want.apkovl.name} as planned`);
}

/** The writing time a pi-prep overlay carries: the mtime of its first entry (every entry has it). */
function overlayTime(gz: Buffer): number | undefined {
  try {
    const tar = gunzipSync(gz);
    const n = parseInt(tar.subarray(136, 148).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
    return Number.isSafeInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

async function dataFinding(t: Target, path: string, want: CardExpectation): Promise<Finding> {
  const dev = `${path}?offset=${want.layout.data.offset}`;
  const head = await t.run(['dumpe2fs', '-h', dev], { readOnly: true, allowFailure: true });
  const label = /^Filesystem volume name:\s*(\S*)/m.exec(head.stdout)?.[1];
  if (head.exitCode !== 0 || label === undefined) return no(`no ext4 filesystem at byte ${want.layout.data.offset}`);
  if (label !== DATA_LABEL) return no(`the data filesystem is labelled ${label || '(none)'}, not ${DATA_LABEL}`);
  const fsck = await t.run(e2fsckArgv(path, want.layout), { readOnly: true, allowFailure: true });
  if (fsck.exitCode !== 0) return no('e2fsck -fn finds errors on the data filesystem');
  const mode = async (p: string) => /Mode:\s+(0\d{3})/.exec((await debugfs(t, dev, `stat ${p}`)).stdout)?.[1];
  if ((await mode('/k0s')) === undefined) return no('k0s/ is missing from the data filesystem');
  if ((await mode('/pi-prep')) !== '0700') return no('pi-prep/ is missing or not 0700');
  const tokenMode = await mode('/pi-prep/join.token');
  if (!want.join) return tokenMode === undefined ? ok(`ext4 "${DATA_LABEL}", e2fsck clean, no join token (no --join)`) : no('it holds a join token, and this card has no --join');
  if (tokenMode !== '0600') return no('the join token is missing or not 0600');
  // The token is compared by hash in memory: never shown, never kept.
  const token = (await debugfs(t, dev, 'cat /pi-prep/join.token')).stdout;
  if (createHash('sha256').update(token).digest('hex') !== want.join.tokenSha256) return no('it holds another join token: the card joins another way');
  if ((await mode('/pi-prep/k0s')) !== '0755' || (await ext4Sha256(path, want.layout.data.offset, '/pi-prep/k0s')) !== want.join.k0sSha256) return no('pi-prep/k0s is missing or another build');
  return ok(`ext4 "${DATA_LABEL}", e2fsck clean, k0s and the join token (0600) as planned`);
}

function debugfs(t: Target, dev: string, request: string) {
  return t.run(['debugfs', '-R', request, dev], { readOnly: true, allowFailure: true });
}

/** SHA-256 of a file on the ext4 filesystem, streamed from debugfs (a binary: not through a string). */
function ext4Sha256(path: string, offset: number, file: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const p = spawn('debugfs', ['-R', `cat ${file}`, `${path}?offset=${offset}`], { stdio: ['ignore', 'pipe', 'ignore'] });
    const h = createHash('sha256');
    p.stdout.on('data', (c: Buffer) => h.update(c));
    p.on('error', () => resolve(undefined));
    p.on('close', (code) => resolve(code === 0 ? h.digest('hex') : undefined));
  });
}
