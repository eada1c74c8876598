import type { Target } from '../../targets/target.js';

/** One line of /proc/mounts. */
export interface MountEntry {
  device: string;
  dir: string;
  type: string;
  options: string[];
}

/** Where a running Alpine keeps what matters to this recipe. Read from files only. */
export interface AlpineLayout {
  isAlpine: boolean;
  versionId: string;
  arch: string;
  /** Root on tmpfs: only what lbu commits survives a reboot. */
  diskless: boolean;
  /** LBU_MEDIA from /etc/lbu/lbu.conf (e.g. mmcblk0p1), or undefined. */
  lbuMedia: string | undefined;
  /** The boot media's mount point (/media/LBU_MEDIA, or LBU_BACKUPDIR), or /boot on a sys install. */
  mediaDir: string | undefined;
  /** The boot media's entry in /proc/mounts, when mounted. */
  mediaMount: MountEntry | undefined;
  /** The whole disk holding the boot media (/dev/mmcblk0 for /dev/mmcblk0p1). */
  bootDisk: string | undefined;
  hostname: string;
}

/** Parse /proc/mounts; octal escapes (\040 for a space) decoded. */
export function parseMounts(text: string | undefined): MountEntry[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return (text ?? '')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4)
    .map((f) => ({ device: unescape(f[0]!), dir: unescape(f[1]!), type: f[2]!, options: f[3]!.split(',') }));
}

/** The last mount at dir wins, as the kernel shows it. */
export function mountAt(mounts: MountEntry[], dir: string): MountEntry | undefined {
  return mounts.filter((m) => m.dir === dir).at(-1);
}

/** KEY=value lines of a shell config (lbu.conf), quotes removed; commented lines ignored. */
export function parseShellVars(text: string | undefined): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!.trim().replace(/\s+#.*$/, '');
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    vars.set(m[1]!, v);
  }
  return vars;
}

/** /dev/mmcblk0p1 -> /dev/mmcblk0, /dev/nvme0n1p2 -> /dev/nvme0n1, /dev/sda1 -> /dev/sda. */
export function diskOf(partition: string): string | undefined {
  const m = /^(\/dev\/(?:mmcblk\d+|nvme\d+n\d+|loop\d+))p\d+$/.exec(partition) ?? /^(\/dev\/(?:[shv]d[a-z]+))\d+$/.exec(partition);
  return m?.[1];
}

/** The device node of partition `n` of `disk` (a p before the number when the disk name ends in a digit). */
export function partitionNode(disk: string, n: number): string {
  return /\d$/.test(disk) ? `${disk}p${n}` : `${disk}${n}`;
}

export async function probeAlpine(t: Target): Promise<AlpineLayout> {
  const f = await t.facts();
  const text = async (p: string) => (await t.readFile(p))?.toString('utf8');
  const mounts = parseMounts(await text('/proc/mounts'));
  const root = mountAt(mounts, '/');
  const lbu = parseShellVars(await text('/etc/lbu/lbu.conf'));
  const lbuMedia = lbu.get('LBU_MEDIA') || undefined;
  const diskless = root?.type === 'tmpfs';
  let mediaDir: string | undefined;
  if (diskless) mediaDir = lbu.get('LBU_BACKUPDIR') || (lbuMedia ? `/media/${lbuMedia}` : undefined);
  else mediaDir = f.bootDir;
  const mediaMount = mediaDir ? mountAt(mounts, mediaDir) : undefined;
  return {
    isAlpine: f.os.id === 'alpine',
    versionId: f.os.versionId,
    arch: f.arch,
    diskless,
    lbuMedia,
    mediaDir,
    mediaMount,
    bootDisk: mediaMount ? diskOf(mediaMount.device) : undefined,
    hostname: (await text('/etc/hostname'))?.trim() || 'localhost',
  };
}

/** What is wrong with the layout for this recipe, each with its fix; empty when fit. */
export function layoutProblems(l: AlpineLayout): string[] {
  const p: string[] = [];
  if (!l.isAlpine) return ['this is not Alpine Linux (/etc/os-release): use `pi-prep rpios` on Raspberry Pi OS, or `pi-prep linux`'];
  if (l.arch !== 'aarch64') p.push(`the CPU is ${l.arch}, not aarch64: install Alpine's aarch64 build (alpine-rpi-*-aarch64.tar.gz)`);
  if (l.diskless && !l.lbuMedia && !l.mediaDir) p.push('LBU_MEDIA is not set in /etc/lbu/lbu.conf: run `setup-lbu` and pick the boot media (e.g. mmcblk0p1)');
  if (l.mediaDir && !l.mediaMount) p.push(`the boot media is not mounted at ${l.mediaDir}: mount it (\`mount ${l.mediaDir}\`)`);
  if (!l.mediaDir) p.push('no boot partition found (no cmdline.txt in /boot): mount it');
  return p;
}
