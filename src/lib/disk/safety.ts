import type { BlockDevice } from './lsblk.js';
import { mountsOf } from './lsblk.js';

/** Mounted here, a disk is the system's (rpi-imager's list, plus the places a Linux boots from today). */
export const SYSTEM_MOUNTS = ['/', '/usr', '/var', '/home', '/boot', '/boot/firmware', '/boot/efi', '/etc', '/opt', '/srv', '[SWAP]'];

/** Where desktops automount cards: only partitions mounted here are unmounted for the user. */
export const AUTOMOUNT_DIRS = ['/media/', '/run/media/', '/mnt/'];

export type Verdict = 'ok' | 'refused';

export interface DiskVerdict {
  device: string;
  verdict: Verdict;
  reason: string;
  size: number;
  model: string;
  removable: boolean;
  mounts: { device: string; mountpoint: string }[];
}

export interface VerdictOptions {
  /** --loop: loop devices are acceptable targets (tests, image work). */
  allowLoop?: boolean;
  /** Mounted filesystems from the kernel's mount table (/proc/self/mountinfo): a second opinion next to lsblk. */
  extraMounts?: { device: string; mountpoint: string }[];
  /** Names of every block device (to spot an eMMC by its boot0 hardware partition). */
  allNames?: string[];
}

/** Devices rpi-imager never lists: optical, RAM disks, zram, an eMMC's hardware boot partitions. */
export function isHidden(d: BlockDevice): boolean {
  const name = d.path.replace(/^\/dev\//, '');
  return d.type === 'rom' || /^(sr|ram|zram)\d/.test(name) || /^mmcblk\d+boot\d+$/.test(name) || /^mmcblk\d+rpmb$/.test(name);
}

export function isRemovable(d: BlockDevice): boolean {
  const subs = d.subsystems.split(':');
  return d.rm || d.hotplug || d.tran === 'usb' || subs.includes('usb') || subs.includes('mmc') || /\/mmcblk\d+$/.test(d.path);
}

/** Virtual: nothing but the block layer behind it (loop, device-mapper, ...). */
export function isVirtual(d: BlockDevice): boolean {
  return d.subsystems === 'block' || d.subsystems === '';
}

function describe(d: BlockDevice): string {
  return [d.vendor, d.model].filter(Boolean).join(' ') || (d.tran ? `${d.tran} disk` : d.type);
}

/**
 * rpi-imager's rules, strictest first. A refusal's reason names what was found, so the user can
 * tell a wrong device from a wrong rule.
 */
export function diskVerdict(d: BlockDevice, opts: VerdictOptions = {}): DiskVerdict {
  const mounts = [...mountsOf(d), ...(opts.extraMounts ?? []).filter((m) => m.device === d.path || d.children.some((c) => c.path === m.device))];
  const uniq = mounts.filter((m, i) => mounts.findIndex((o) => o.device === m.device && o.mountpoint === m.mountpoint) === i);
  const base = { device: d.path, size: d.size, model: describe(d), removable: isRemovable(d), mounts: uniq };
  const no = (reason: string): DiskVerdict => ({ ...base, verdict: 'refused', reason });
  const name = d.path.replace(/^\/dev\//, '');
  const systemMount = uniq.find((m) => SYSTEM_MOUNTS.includes(m.mountpoint));

  if (d.type === 'part') return no(`${d.path} is a partition: name the whole disk instead`);
  if (systemMount) return no(`system disk: ${systemMount.device} is mounted at ${systemMount.mountpoint}`);
  const volume = descendants(d).find((c) => c.type !== 'part');
  if (volume) return no(`it holds a ${volume.type} volume (${volume.path}): pi-prep never writes RAID, LVM or encrypted disks`);
  const elsewhere = uniq.find((m) => !AUTOMOUNT_DIRS.some((dir) => m.mountpoint.startsWith(dir)));
  if (elsewhere) return no(`${elsewhere.device} is mounted at ${elsewhere.mountpoint}, not where cards are automounted: unmount it yourself if it really is the card`);
  if (/^nvme/.test(name) || d.tran === 'nvme' || d.subsystems.split(':').includes('nvme')) return no('NVMe disks are system disks: pi-prep never writes them');
  if (isHidden(d)) return no(`${d.type === 'rom' ? 'optical drive' : 'not a disk pi-prep writes'} (${name})`);
  if (d.type === 'loop') {
    if (!opts.allowLoop) return no('loop device: add --loop to write one');
  } else if (d.type !== 'disk') {
    return no(`${d.type} device, not a whole disk`);
  }
  if (d.ro) return no('read-only: check the card\'s lock switch or the reader');
  if (d.size === 0) return no('no medium: insert the card');
  if (/^mmcblk\d+$/.test(name) && opts.allNames?.includes(`/dev/${name}boot0`)) return no('internal eMMC (it has hardware boot partitions): a system disk');
  if (d.type !== 'loop' && !isRemovable(d) && !isVirtual(d)) return no('system disk: not removable, not USB or MMC');
  const mounted = uniq.length ? `; mounted at ${uniq.map((m) => m.mountpoint).join(', ')} (unmounted with your consent)` : '';
  return { ...base, verdict: 'ok', reason: `${d.type === 'loop' ? 'loop device' : isRemovable(d) ? 'removable' : 'virtual disk'}${mounted}` };
}

function descendants(d: BlockDevice): BlockDevice[] {
  return d.children.flatMap((c) => [c, ...descendants(c)]);
}

/** Every disk lsblk lists (partitions fold into their disk), with a verdict. */
export function candidateDisks(all: BlockDevice[], opts: VerdictOptions = {}): DiskVerdict[] {
  const allNames = all.flatMap((d) => [d.path, ...d.children.map((c) => c.path)]);
  return all.filter((d) => d.type !== 'loop' || opts.allowLoop).map((d) => diskVerdict(d, { ...opts, allNames }));
}
