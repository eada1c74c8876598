import { gunzipSync } from 'node:zlib';
import { readText, type Target } from './target.js';
import { parseOsRelease, type OsRelease } from './probes/os-release.js';
import { boardFromCpuinfo, boardFromDeviceTree, type Board } from './probes/board.js';
import { kernelConfigPaths, parseKernelConfig, type KernelConfig } from './probes/kernel-config.js';
import { parseCgroups, type CgroupInfo } from './probes/cgroups.js';

export type K0sArch = 'amd64' | 'arm64' | 'arm';

export interface Facts {
  /** `uname -m` as the target's own userland reports it. */
  arch: string;
  k0sArch: K0sArch | undefined;
  os: OsRelease;
  init: 'systemd' | 'openrc' | 'unknown';
  board: Board | undefined;
  /** The Pi boot partition's mount point: /boot/firmware (Bookworm on) or /boot; undefined when neither has cmdline.txt. */
  bootDir: string | undefined;
  /** Why there is no boot dir when /boot/firmware exists but is not a mounted boot partition. */
  bootProblem?: string;
  kernelRelease: string;
  kernelConfig: { source: string; options: KernelConfig } | undefined;
  cgroup: CgroupInfo;
  memTotalBytes: number | undefined;
  /** Free bytes where k0s keeps its data (/var/lib/k0s, or its nearest existing parent). */
  dataDirFreeBytes: number | undefined;
  localhostResolves: boolean;
}

export function k0sArchFor(unameM: string): K0sArch | undefined {
  if (unameM === 'x86_64' || unameM === 'amd64') return 'amd64';
  if (unameM === 'aarch64' || unameM === 'arm64') return 'arm64';
  if (unameM === 'armv7l' || unameM === 'armv8l') return 'arm';
  return undefined;
}

const text = readText;

/** Probe everything once; targets cache the result for the run. */
export async function probeFacts(t: Target): Promise<Facts> {
  const arch = (await t.run(['uname', '-m'], { readOnly: true })).stdout.trim();
  const kernelRelease = await probeKernelRelease(t);
  const [os, init, board, bootDir, kernelConfig, cgroup, memTotalBytes, dataDirFreeBytes, hosts] = await Promise.all([
    text(t, '/etc/os-release').then(async (s) => parseOsRelease(s ?? (await text(t, '/usr/lib/os-release')))),
    probeInit(t),
    probeBoard(t),
    probeBootDir(t),
    probeKernelConfig(t, kernelRelease),
    Promise.all([text(t, '/sys/fs/cgroup/cgroup.controllers'), text(t, '/proc/cgroups')]).then(([a, b]) => parseCgroups(a, b)),
    text(t, '/proc/meminfo').then((s) => {
      const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(s ?? '');
      return m ? Number(m[1]) * 1024 : undefined;
    }),
    t.freeBytes('/var/lib/k0s'),
    text(t, '/etc/hosts'),
  ]);
  return {
    arch,
    k0sArch: k0sArchFor(arch),
    os,
    init,
    board,
    bootDir: bootDir.dir,
    ...(bootDir.problem ? { bootProblem: bootDir.problem } : {}),
    kernelRelease,
    kernelConfig,
    cgroup,
    memTotalBytes,
    dataDirFreeBytes,
    localhostResolves: /^\s*[0-9a-fA-F:.]+\s+(.*\s)?localhost(\s|$)/m.test(hosts ?? ''),
  };
}

/**
 * The running kernel: /proc/sys/kernel/osrelease on a live system (a fixture root may hold one
 * too); a card mounted on a workstation has no /proc, so the newest /lib/modules entry stands in.
 */
async function probeKernelRelease(t: Target): Promise<string> {
  const fromProc = (await text(t, '/proc/sys/kernel/osrelease'))?.trim();
  if (fromProc) return fromProc;
  if (t.kind === 'root') {
    const mods = await t.readDir('/lib/modules');
    if (mods.length > 0) return mods.sort(compareVersions).at(-1)!;
  }
  return (await t.run(['uname', '-r'], { readOnly: true })).stdout.trim();
}

async function probeInit(t: Target): Promise<Facts['init']> {
  if (await t.stat('/sbin/openrc')) return 'openrc';
  for (const p of ['/run/systemd/system', '/lib/systemd/systemd', '/usr/lib/systemd/systemd']) {
    if (await t.stat(p)) return 'systemd';
  }
  if (await t.stat('/sbin/openrc-run')) return 'openrc';
  return 'unknown';
}

async function probeBoard(t: Target): Promise<Board | undefined> {
  const dt = boardFromDeviceTree(await text(t, '/proc/device-tree/model'), await text(t, '/proc/device-tree/compatible'));
  if (dt?.soc) return dt;
  return boardFromCpuinfo(await text(t, '/proc/cpuinfo')) ?? dt;
}

/**
 * Where `/boot/firmware` exists it is the boot partition (Bookworm on) and nothing else will do:
 * when it is empty the partition is not mounted, and `/boot/cmdline.txt` is only the firmware's
 * "moved to /boot/firmware" note. Links and directories are refused, never followed.
 */
async function probeBootDir(t: Target): Promise<{ dir?: string; problem?: string }> {
  const mount = 'mount the boot partition at /boot/firmware (see /etc/fstab), then run again';
  const fw = await t.stat('/boot/firmware');
  if (fw) {
    if (fw.type !== 'dir') return { problem: `/boot/firmware is a ${kind(fw.type)}, not the boot partition's mount point: ${mount}` };
    const c = await t.stat('/boot/firmware/cmdline.txt');
    if (c?.type === 'file') return { dir: '/boot/firmware' };
    if (c) return { problem: `/boot/firmware/cmdline.txt is a ${kind(c.type)}, not a file: put the boot partition's own cmdline.txt there` };
    return { problem: `/boot/firmware holds no cmdline.txt: the boot partition is not mounted there; ${mount}` };
  }
  return (await t.stat('/boot/cmdline.txt'))?.type === 'file' ? { dir: '/boot' } : {};
}

function kind(type: string): string {
  return type === 'dir' ? 'directory' : type === 'file' ? 'regular file' : type;
}

async function probeKernelConfig(t: Target, release: string): Promise<Facts['kernelConfig']> {
  for (const source of kernelConfigPaths(release)) {
    const raw = await t.readFile(source);
    if (!raw) continue;
    const body = source.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
    return { source, options: parseKernelConfig(body) };
  }
  return undefined;
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.\-+]/);
  const pb = b.split(/[.\-+]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = Number(x);
    const ny = Number(y);
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) && x !== '' && y !== '' ? nx - ny : x.localeCompare(y);
    if (c !== 0) return c;
  }
  return 0;
}
