import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';

/** A file found on a FAT32 volume. */
export interface FatFile {
  path: string;
  size: number;
  sha256: string;
}

interface Bpb {
  bytesPerSector: number;
  clusterBytes: number;
  reserved: number;
  fats: number;
  fatSectors: number;
  rootCluster: number;
  dataStart: number;
}

/**
 * A small read-only FAT32 reader: walks every directory from the volume at `offset` and hashes
 * every file by following its cluster chain. pi-prep's own check of what mtools wrote, with no
 * mount and no extra copy.
 */
export async function readFat32(path: string, offset: number, onBytes?: (n: number) => void): Promise<FatFile[]> {
  const fh = await open(path, 'r');
  try {
    const { bpb, fat } = await volume(fh, offset);
    const out: FatFile[] = [];
    await walk(fh, bpb, fat, bpb.rootCluster, '', async (path, size, first) => {
      const hash = createHash('sha256');
      if (size > 0) await readChain(fh, bpb, fat, first, size, (buf) => { hash.update(buf); onBytes?.(buf.length); });
      out.push({ path, size, sha256: hash.digest('hex') });
    });
    return out;
  } finally {
    await fh.close();
  }
}

/**
 * The contents of the named files (paths from the volume's root) that exist, plus any top-level
 * file whose name `alsoTop` accepts (listed with an empty buffer: only its name is wanted).
 * Nothing else is read.
 */
export async function readFatFiles(path: string, offset: number, names: string[], alsoTop?: (name: string) => boolean): Promise<Map<string, Buffer>> {
  const fh = await open(path, 'r');
  try {
    const { bpb, fat } = await volume(fh, offset);
    const out = new Map<string, Buffer>();
    const dirs = new Set(names.flatMap((n) => n.split('/').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('/'))));
    await walk(fh, bpb, fat, bpb.rootCluster, '', async (p, size, first) => {
      if (!p.includes('/') && alsoTop?.(p)) out.set(p, Buffer.alloc(0));
      if (!names.includes(p)) return;
      const parts: Buffer[] = [];
      if (size > 0) await readChain(fh, bpb, fat, first, size, (buf) => parts.push(buf));
      out.set(p, Buffer.concat(parts));
    }, (dir) => dirs.has(dir));
    return out;
  } finally {
    await fh.close();
  }
}

async function volume(fh: FileHandle, offset: number): Promise<{ bpb: Bpb; fat: Buffer }> {
  const bs = await readAt(fh, offset, 512);
  if (bs[510] !== 0x55 || bs[511] !== 0xaa) throw new Error('no FAT boot sector signature');
  const bytesPerSector = bs.readUInt16LE(11);
  const spc = bs[13]!;
  const bpb: Bpb = {
    bytesPerSector,
    clusterBytes: bytesPerSector * spc,
    reserved: bs.readUInt16LE(14),
    fats: bs[16]!,
    fatSectors: bs.readUInt32LE(36),
    rootCluster: bs.readUInt32LE(44),
    dataStart: 0,
  };
  if (bs.readUInt16LE(22) !== 0 || bpb.fatSectors === 0) throw new Error('not a FAT32 volume');
  bpb.dataStart = offset + (bpb.reserved + bpb.fats * bpb.fatSectors) * bytesPerSector;
  const fat = await readAt(fh, offset + bpb.reserved * bytesPerSector, bpb.fatSectors * bytesPerSector);
  return { bpb, fat };
}

async function readAt(fh: FileHandle, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
    if (bytesRead === 0) throw new Error(`short read at ${pos + got}`);
    got += bytesRead;
  }
  return buf;
}

/** Cluster chain as runs of consecutive clusters (mtools allocates files mostly contiguously). */
function chain(fat: Buffer, first: number): [number, number][] {
  const runs: [number, number][] = [];
  let c = first;
  let guard = fat.length / 4;
  while (c >= 2 && c < 0x0ffffff8 && guard-- > 0) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === c) last[1]++;
    else runs.push([c, 1]);
    c = fat.readUInt32LE(c * 4) & 0x0fffffff;
  }
  if (guard <= 0) throw new Error('a cluster chain loops');
  return runs;
}

async function readChain(fh: FileHandle, b: Bpb, fat: Buffer, first: number, size: number | undefined, each: (buf: Buffer) => void): Promise<void> {
  let left = size ?? Infinity;
  for (const [start, count] of chain(fat, first)) {
    let len = count * b.clusterBytes;
    if (len > left) len = left;
    let pos = b.dataStart + (start - 2) * b.clusterBytes;
    while (len > 0) {
      const n = Math.min(len, 4 << 20);
      each(await readAt(fh, pos, n));
      pos += n;
      len -= n;
      left -= n;
    }
    if (left <= 0) break;
  }
  if (size !== undefined && left > 0) throw new Error(`a file's cluster chain is shorter than its size`);
}

type OnFile = (path: string, size: number, firstCluster: number) => Promise<void>;

async function walk(fh: FileHandle, b: Bpb, fat: Buffer, cluster: number, prefix: string, onFile: OnFile, enter: (dir: string) => boolean = () => true): Promise<void> {
  const parts: Buffer[] = [];
  await readChain(fh, b, fat, cluster, undefined, (buf) => parts.push(buf));
  const dir = Buffer.concat(parts);
  let lfn: string[] = [];
  for (let i = 0; i + 32 <= dir.length; i += 32) {
    const e = dir.subarray(i, i + 32);
    if (e[0] === 0x00) break;
    if (e[0] === 0xe5) { lfn = []; continue; }
    const attr = e[11]!;
    if (attr === 0x0f) {
      const seq = e[0]! & 0x1f;
      const chars = [...range(e, 1, 10), ...range(e, 14, 26), ...range(e, 28, 32)];
      lfn[seq - 1] = String.fromCharCode(...chars.filter((c) => c !== 0x0000 && c !== 0xffff));
      continue;
    }
    if (attr & 0x08) { lfn = []; continue; } // volume label
    const name = lfn.length ? lfn.join('') : shortName(e);
    lfn = [];
    if (name === '.' || name === '..') continue;
    const first = (e.readUInt16LE(20) << 16) | e.readUInt16LE(26);
    const path = prefix ? `${prefix}/${name}` : name;
    if (attr & 0x10) {
      if (enter(path)) await walk(fh, b, fat, first, path, onFile, enter);
    } else {
      await onFile(path, e.readUInt32LE(28), first);
    }
  }
}

function range(e: Buffer, from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i += 2) out.push(e.readUInt16LE(i));
  return out;
}

function shortName(e: Buffer): string {
  const nt = e[12]!;
  let base = e.subarray(0, 8).toString('latin1').trimEnd();
  let ext = e.subarray(8, 11).toString('latin1').trimEnd();
  if (base.charCodeAt(0) === 0x05) base = '\xe5' + base.slice(1);
  if (nt & 0x08) base = base.toLowerCase();
  if (nt & 0x10) ext = ext.toLowerCase();
  return ext ? `${base}.${ext}` : base;
}
