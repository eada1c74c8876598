import type { Target } from '../../targets/target.js';

/** One block device as lsblk reports it (--bytes --json --paths --tree). */
export interface BlockDevice {
  path: string;
  type: string;
  size: number;
  ro: boolean;
  rm: boolean;
  hotplug: boolean;
  tran: string | null;
  subsystems: string;
  model: string | null;
  vendor: string | null;
  mountpoint: string | null;
  children: BlockDevice[];
}

/** rpi-imager's column set (src/drivelist/drivelist_linux.cpp), singular MOUNTPOINT for older util-linux. */
export const LSBLK_COLUMNS = 'name,type,subsystems,ro,rm,hotplug,size,model,vendor,tran,mountpoint';

export function lsblkArgv(device?: string): string[] {
  return ['lsblk', '--bytes', '--json', '--paths', '--tree', '--output', LSBLK_COLUMNS, ...(device ? [device] : [])];
}

const bool = (v: unknown) => v === true || v === 1 || v === '1';
const str = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : null);

/** Parse lsblk JSON (old util-linux prints numbers and booleans as strings; accept both). */
export function parseLsblk(json: string): BlockDevice[] {
  const doc = JSON.parse(json) as { blockdevices?: unknown[] };
  const conv = (raw: unknown): BlockDevice => {
    const r = raw as Record<string, unknown>;
    return {
      path: String(r.name ?? r.path ?? r.kname),
      type: String(r.type ?? ''),
      size: Number(r.size ?? 0),
      ro: bool(r.ro),
      rm: bool(r.rm),
      hotplug: bool(r.hotplug),
      tran: str(r.tran),
      subsystems: String(r.subsystems ?? ''),
      model: str(r.model),
      vendor: str(r.vendor),
      mountpoint: str(r.mountpoint),
      children: Array.isArray(r.children) ? r.children.map(conv) : [],
    };
  };
  return (doc.blockdevices ?? []).map(conv);
}

/** Every block device, or just `device` (with its partitions), read-only through the target. */
export async function listBlockDevices(target: Target, device?: string): Promise<BlockDevice[]> {
  const res = await target.run(lsblkArgv(device), { readOnly: true, allowFailure: Boolean(device) });
  if (res.exitCode !== 0) return [];
  return parseLsblk(res.stdout);
}

/** Mount points of a device and all its partitions. */
export function mountsOf(d: BlockDevice): { device: string; mountpoint: string }[] {
  const own = d.mountpoint ? [{ device: d.path, mountpoint: d.mountpoint }] : [];
  return [...own, ...d.children.flatMap(mountsOf)];
}
