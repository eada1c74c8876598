import { posix } from 'node:path';
import { RefusedError, TaskFailedError } from '../../core/errors.js';
import { done, todo, type RunContext, type Task } from '../../core/task.js';
import { LBU_LIST, type PersistTracker } from './lbu.js';
import { mountAt, parseMounts, partitionNode, type AlpineLayout } from './layout.js';

import { DATA_DIR, DATA_LABEL } from './paths.js';
export { DATA_DIR, DATA_LABEL };
export const FSTAB = '/etc/fstab';
export const FSTAB_LINE = `LABEL=${DATA_LABEL} ${DATA_DIR} ext4 defaults 0 2`;
/**
 * Diskless Alpine does not create mount points at boot, and /var lives in RAM: lbu keeps this
 * small file, so /var/lib/k0s exists again when localmount mounts the partition over it.
 */
export const MOUNTPOINT_MARK = `${DATA_DIR}/.pi-prep-mountpoint`;
const MIN_SECTORS = (64 * 1024 * 1024) / 512;
const ALIGN = 2048; // 1 MiB in 512-byte sectors, as fdisk and sfdisk align

export interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
}

export interface FreeRegion {
  start: number;
  end: number;
  sectors: number;
}

/** `sfdisk -F DISK`: the table of unpartitioned regions (Start End Sectors Size). */
export function parseFreeRegions(text: string): FreeRegion[] {
  const out: FreeRegion[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+\S+\s*$/.exec(line);
    if (m) out.push({ start: Number(m[1]), end: Number(m[2]), sectors: Number(m[3]) });
  }
  return out;
}

/** The largest free region, aligned to 1 MiB at both ends; undefined when under 64 MiB. */
export function pickRegion(regions: FreeRegion[]): { start: number; size: number } | undefined {
  let best: { start: number; size: number } | undefined;
  for (const r of regions) {
    const start = Math.ceil(r.start / ALIGN) * ALIGN;
    const size = Math.floor((r.end + 1 - start) / ALIGN) * ALIGN;
    if (size >= MIN_SECTORS && (!best || size > best.size)) best = { start, size };
  }
  return best;
}

/** `blkid -o export` lines into a map (LABEL, TYPE, UUID…). */
export function parseBlkid(text: string): Map<string, string> {
  return new Map(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]));
}

/** What the data-partition task found or plans; later tasks (reboot, mount) read it. */
export interface DataPartitionState {
  disk?: string;
  node?: string;
  plan?: { kind: 'create'; number: number; start: number; size: number } | { kind: 'format'; start: number; size: number };
}

const isLinuxType = (t: string) => ['83', 'L', '0fc63daf-8483-4772-8e79-3d69d8477de4'].includes(t.toLowerCase()) || t.toUpperCase() === '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

async function partitions(ctx: RunContext, disk: string): Promise<SfdiskPartition[]> {
  const res = await ctx.target.run(['sfdisk', '--json', disk], { readOnly: true, allowFailure: true });
  if (res.exitCode !== 0) {
    throw new TaskFailedError(`${disk} has no partition table sfdisk can read (${res.stderr.trim().split('\n').at(-1)}): give a disk with one as --data-device`);
  }
  const table = (JSON.parse(res.stdout) as { partitiontable: { partitions?: SfdiskPartition[] } }).partitiontable;
  return table.partitions ?? [];
}

/** Devices starting with `prefix` that are mounted or used as swap on the target. */
async function inUse(ctx: RunContext, prefix: string): Promise<string[]> {
  const mounts = (await ctx.target.readFile('/proc/mounts'))?.toString('utf8') ?? '';
  const swaps = (await ctx.target.readFile('/proc/swaps'))?.toString('utf8') ?? '';
  const devs = [...mounts.split('\n'), ...swaps.split('\n').slice(1)].map((l) => l.split(/\s+/)[0] ?? '');
  return [...new Set(devs.filter((d) => d.startsWith(prefix)))];
}

/** Probe a partition's signature through the whole disk at its offset (no partition node needed). */
async function probeAt(ctx: RunContext, disk: string, start: number): Promise<Map<string, string> | undefined> {
  const res = await ctx.target.run(['blkid', '-p', '-O', String(start * 512), '-o', 'export', disk], { readOnly: true, allowFailure: true });
  if (res.exitCode === 2) return undefined; // nothing found
  if (res.exitCode !== 0) throw new TaskFailedError(`blkid could not probe ${disk} at sector ${start}: ${res.stderr.trim()}`);
  return parseBlkid(res.stdout);
}

/**
 * The k0s data partition: found by its label, or made from the disk's free space. The new
 * partition is written with the kernel left alone (the card's first partition is in use; the
 * reboot this recipe needs anyway makes the kernel read the new table) and formatted through its
 * offset on the whole disk, so nothing depends on a partition node appearing.
 */
export function dataPartitionTask(l: AlpineLayout, state: DataPartitionState, dataDevice?: string): Task {
  return {
    id: 'data-partition',
    title: `ext4 data partition labelled ${DATA_LABEL}`,
    async check(ctx) {
      const disk = dataDevice ?? l.bootDisk;
      if (!disk) throw new TaskFailedError(`cannot tell which disk holds the boot media (${l.mediaMount?.device ?? 'not mounted'}): pass --data-device /dev/DISK`);
      const st = await ctx.target.stat(disk);
      if (st?.type !== 'block') throw new TaskFailedError(`${disk} is not a block device on ${ctx.target.label}: pass --data-device with a whole disk`);
      state.disk = disk;
      // Another disk than the boot media's: nothing on it may be in use (mounted or swap).
      const busy = dataDevice && dataDevice !== l.bootDisk ? await inUse(ctx, disk) : [];
      if (busy.length) throw new RefusedError(`refusing --data-device ${disk}: ${busy.join(', ')} in use; unmount it (or swapoff) first`);
      const parts = await partitions(ctx, disk);
      for (const [i, p] of parts.entries()) {
        const sig = await probeAt(ctx, disk, p.start);
        if (sig?.get('LABEL') !== DATA_LABEL) continue;
        if (sig.get('TYPE') !== 'ext4') throw new TaskFailedError(`${p.node} is labelled ${DATA_LABEL} but holds ${sig.get('TYPE')}, not ext4: relabel it, or make it ext4 yourself`);
        state.node = partitionNode(disk, partitionNumber(p.node, i));
        return done(`${state.node}: ext4, LABEL=${DATA_LABEL}, ${Math.round((p.size * 512) / 2 ** 20)} MiB`);
      }
      // A partition this recipe made but did not format yet (an interrupted run): the last one,
      // of Linux type, with no signature at all. Anything else is never formatted.
      const last = parts.at(-1);
      const lastNode = last && partitionNode(disk, partitionNumber(last.node, parts.length - 1));
      if (last && lastNode && isLinuxType(last.type) && parts.length > 1 && !(await probeAt(ctx, disk, last.start)) && !(await inUse(ctx, lastNode)).length) {
        state.node = lastNode;
        state.plan = { kind: 'format', start: last.start, size: last.size };
        return todo(`${state.node} is empty: make it ext4 labelled ${DATA_LABEL}`);
      }
      const region = pickRegion(parseFreeRegions((await ctx.target.run(['sfdisk', '-F', disk], { readOnly: true })).stdout));
      if (!region) throw new TaskFailedError(`no free space (64 MiB or more) on ${disk} for the k0s data partition: pass --data-device with a disk that has some`);
      const number = Math.max(0, ...parts.map((p, i) => partitionNumber(p.node, i))) + 1;
      state.node = partitionNode(disk, number);
      state.plan = { kind: 'create', number, start: region.start, size: region.size };
      return todo(`create ${state.node} from free space: ${Math.round((region.size * 512) / 2 ** 20)} MiB at sector ${region.start}`);
    },
    async apply(ctx) {
      const disk = state.disk!;
      const plan = state.plan!;
      if (plan.kind === 'create') {
        await ctx.target.run(['sfdisk', '--append', '--no-reread', '--no-tell-kernel', disk], { input: `start=${plan.start}, size=${plan.size}, type=L\n` });
      }
      await ctx.target.run([
        'mkfs.ext4', '-q', '-F', '-L', DATA_LABEL, '-E', `offset=${plan.start * 512},nodiscard`, disk, `${(plan.size * 512) / 1024}k`,
      ]);
    },
  };
}

function partitionNumber(node: string, index: number): number {
  const m = /(\d+)$/.exec(node);
  return m ? Number(m[1]) : index + 1;
}

/** localmount mounts fstab entries at boot: the data partition, by label. */
export function fstabTask(): Task {
  return {
    id: 'data-fstab',
    title: `${FSTAB} mounts the data partition at ${DATA_DIR}`,
    async check(ctx) {
      const text = (await ctx.target.readFile(FSTAB))?.toString('utf8') ?? '';
      const line = text.split('\n').find((l) => l.trim().split(/\s+/)[1] === DATA_DIR && !l.trim().startsWith('#'));
      return line ? done(line.trim()) : todo(`no ${DATA_DIR} line in ${FSTAB}`);
    },
    async apply(ctx) {
      const text = (await ctx.target.readFile(FSTAB))?.toString('utf8') ?? '';
      await ctx.target.writeFile(FSTAB, (text === '' || text.endsWith('\n') ? text : text + '\n') + FSTAB_LINE + '\n', { mode: 0o644 });
    },
  };
}

/**
 * The mount point, kept by lbu (see MOUNTPOINT_MARK). Runs before the reboot and again once mounted.
 * Rewriting the same marker onto the mounted partition changes nothing lbu would save; only a new
 * include does (what `keep` is told, for dry runs).
 */
export function mountPointTask(id: string, keep: PersistTracker): Task {
  const entry = `+${MOUNTPOINT_MARK.slice(1)}`;
  return {
    id,
    title: `${DATA_DIR} exists at boot (${posix.basename(MOUNTPOINT_MARK)} saved by lbu)`,
    async check(ctx) {
      const list = (await ctx.target.readFile(LBU_LIST))?.toString('utf8') ?? '';
      const have = await ctx.target.stat(MOUNTPOINT_MARK);
      if (have && list.split('\n').includes(entry)) return done(`${MOUNTPOINT_MARK} kept by lbu`);
      return todo(!have ? `no ${MOUNTPOINT_MARK}` : `${MOUNTPOINT_MARK} is not in lbu's include list`);
    },
    async apply(ctx) {
      if (!(await ctx.target.stat(MOUNTPOINT_MARK))) {
        await ctx.target.writeFile(MOUNTPOINT_MARK, 'k0s data partition mount point: lbu keeps this file so the directory exists at boot\n', { mode: 0o644 });
        keep.rewritten.add(MOUNTPOINT_MARK.slice(1));
      }
      const list = (await ctx.target.readFile(LBU_LIST))?.toString('utf8') ?? '';
      if (!list.split('\n').includes(entry)) {
        await ctx.target.run(['lbu', 'include', MOUNTPOINT_MARK]);
        keep.changed = true;
      }
    },
  };
}

export function dataMountedTask(): Task {
  return {
    id: 'data-mounted',
    title: `Data partition mounted at ${DATA_DIR}`,
    async check(ctx) {
      const m = mountAt(parseMounts((await ctx.target.readFile('/proc/mounts'))?.toString('utf8')), DATA_DIR);
      return m ? done(`${m.device} (${m.type})`) : todo(`nothing mounted at ${DATA_DIR}`);
    },
    async apply(ctx) {
      await ctx.target.run(['mount', DATA_DIR]);
    },
  };
}
