import { RefusedError, TaskFailedError } from '../../core/errors.js';
import { done, todo, type RunContext, type Task } from '../../run/task.js';
import { mountAt, parseMounts, partitionNode, type AlpineLayout } from '../../lib/alpine/layout.js';
import { DATA_DIR, DATA_DIR_SOURCE, DATA_FSTAB, DATA_FSTAB_LINES, DATA_LABEL, DATA_MOUNT, PI_PREP_DIR } from '../../lib/alpine/paths.js';
import { readText } from '../../targets/target.js';

export { DATA_DIR, DATA_LABEL };
export const FSTAB = '/etc/fstab';
/** The new filesystem's first directories (mkfs.ext4 -d), so the bind mount works from its first boot. */
const SKELETON = '/tmp/pi-prep-data-skeleton';
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
  const mounts = (await readText(ctx.target, '/proc/mounts')) ?? '';
  const swaps = (await readText(ctx.target, '/proc/swaps')) ?? '';
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
      await ctx.target.mkdir(`${SKELETON}/k0s`, 0o755);
      await ctx.target.mkdir(`${SKELETON}/pi-prep`, 0o700);
      await ctx.target.run([
        'mkfs.ext4', '-q', '-F', '-L', DATA_LABEL, '-d', SKELETON, '-E', `offset=${plan.start * 512},nodiscard`, disk, `${(plan.size * 512) / 1024}k`,
      ]);
      await ctx.target.run(['rm', '-rf', SKELETON]);
    },
  };
}

function partitionNumber(node: string, index: number): number {
  const m = /(\d+)$/.exec(node);
  return m ? Number(m[1]) : index + 1;
}

/**
 * localmount mounts fstab entries at boot, in order, after Alpine's mkmntdirs made their mount
 * points: the partition at DATA_MOUNT, then its k0s directory bound to /var/lib/k0s. A line for
 * either mount point that says something else is replaced; every other line is kept.
 */
export function fstabTask(): Task {
  const ours = (l: string) => DATA_FSTAB.some((e) => l.trim().split(/\s+/)[1] === e.file) && !l.trim().startsWith('#');
  const has = (text: string) => DATA_FSTAB_LINES.every((want) => text.split('\n').some((l) => l.trim().split(/\s+/).join(' ') === want.split('\t').join(' ')));
  return {
    id: 'data-fstab',
    title: `${FSTAB} mounts the data partition at ${DATA_MOUNT} and its k0s directory at ${DATA_DIR}`,
    async check(ctx) {
      const text = (await readText(ctx.target, FSTAB)) ?? '';
      if (has(text)) return done(`${DATA_MOUNT} and ${DATA_DIR} (bind) in ${FSTAB}`);
      const other = text.split('\n').filter(ours);
      return todo(other.length ? `replace ${other.map((l) => `"${l.trim()}"`).join(', ')}` : `no ${DATA_MOUNT} and ${DATA_DIR} lines in ${FSTAB}`);
    },
    async apply(ctx) {
      const text = (await readText(ctx.target, FSTAB)) ?? '';
      const kept = text.split('\n').filter((l) => l !== '' && !ours(l));
      await ctx.target.writeFile(FSTAB, [...kept, ...DATA_FSTAB_LINES].join('\n') + '\n', { mode: 0o644 });
    },
  };
}

/** Both mounts up (the boot does it; this covers a node booted before the partition existed). */
export function dataMountedTask(): Task {
  return {
    id: 'data-mounted',
    title: `Data partition mounted at ${DATA_MOUNT}, ${DATA_DIR} bound to ${DATA_DIR_SOURCE}`,
    async check(ctx) {
      const mounts = parseMounts((await readText(ctx.target, '/proc/mounts')));
      const data = mountAt(mounts, DATA_MOUNT);
      const dir = mountAt(mounts, DATA_DIR);
      if (data && dir) return done(`${data.device} (${data.type}) at ${DATA_MOUNT} and ${DATA_DIR}`);
      return todo(!data ? `nothing mounted at ${DATA_MOUNT}` : `nothing mounted at ${DATA_DIR}`);
    },
    async apply(ctx) {
      const mounts = parseMounts((await readText(ctx.target, '/proc/mounts')));
      if (!mountAt(mounts, DATA_MOUNT)) await ctx.target.run(['mount', DATA_MOUNT]);
      for (const [d, mode] of [[DATA_DIR_SOURCE, 0o755], [PI_PREP_DIR, 0o700]] as const) {
        if (!(await ctx.target.stat(d))) await ctx.target.mkdir(d, mode);
      }
      if (!mountAt(mounts, DATA_DIR)) await ctx.target.run(['mount', DATA_DIR]);
    },
  };
}
