import type { Facts } from '../targets/facts.js';
import { isEnabled } from '../targets/probes/kernel-config.js';
import { cmdlineProblems } from './cmdline.js';

export type Level = 'required' | 'warning';
export type Status = 'pass' | 'warn' | 'fail';

/** One line of `pi-prep check`: what, how it stands, and the fix. */
export interface ReadinessItem {
  id: string;
  title: string;
  level: Level;
  status: Status;
  detail: string;
  fix?: string;
}

/** As `k0s sysinfo` (internal/pkg/sysinfo/host_linux.go) for a worker; the `|` means either will do. */
export const REQUIRED_KERNEL_OPTIONS = [
  'CGROUPS', 'CGROUP_SCHED', 'FAIR_GROUP_SCHED', 'NAMESPACES', 'UTS_NS', 'IPC_NS', 'PID_NS', 'NET_NS',
  'NET', 'INET', 'NETFILTER', 'NF_CONNTRACK', 'NETFILTER_XTABLES',
  'NETFILTER_XT_TARGET_REDIRECT|IP_NF_TARGET_REDIRECT', 'NETFILTER_XT_MATCH_COMMENT', 'EXT4_FS', 'PROC_FS',
];
export const WARNED_KERNEL_OPTIONS = ['CFS_BANDWIDTH', 'BLK_CGROUP', 'NETFILTER_ADVANCED'];
export const REQUIRED_CONTROLLERS = ['cpu', 'cpuset', 'memory', 'pids'];
export const OPTIONAL_CONTROLLERS = ['hugetlb', 'io'];

const MiB = 1024 * 1024;
const fmtMiB = (n: number) => `${Math.round(n / MiB)} MiB`;

function item(id: string, title: string, level: Level, ok: boolean | undefined, detail: string, fix?: string): ReadinessItem {
  const status: Status = ok === true ? 'pass' : ok === undefined || level === 'warning' ? 'warn' : 'fail';
  return { id, title, level, status, detail, ...(status !== 'pass' && fix ? { fix } : {}) };
}

/** What any k0s worker needs, from probed facts only. */
export function workerReadiness(f: Facts): ReadinessItem[] {
  const items: ReadinessItem[] = [];
  items.push(item('arch', 'CPU architecture k0s ships for', 'required', f.k0sArch !== undefined,
    `${f.arch}${f.k0sArch ? ` -> k0s-*-${f.k0sArch}` : ''}`, 'k0s builds exist for amd64, arm64 and arm only'));
  items.push(item('init', 'Init system k0s can install into', 'required', f.init !== 'unknown',
    f.init, 'k0s install needs systemd or OpenRC'));

  const cfg = f.kernelConfig;
  const enabled = (opt: string) => (cfg ? opt.split('|').some((o) => isEnabled(cfg.options, o)) : undefined);
  if (!cfg) {
    items.push(item('kernel-config', 'Kernel config readable', 'warning', undefined,
      `no config for ${f.kernelRelease} at /proc/config.gz, /boot/config-*, /usr/lib/modules/*/config`,
      'run `modprobe configs` (Raspberry Pi OS builds IKCONFIG as a module) so /proc/config.gz appears'));
  } else {
    const missing = REQUIRED_KERNEL_OPTIONS.filter((o) => !enabled(o));
    items.push(item('kernel-required', 'Kernel options k0s requires', 'required', missing.length === 0,
      missing.length ? `missing: ${missing.map((o) => `CONFIG_${o}`).join(', ')} (${cfg.source})` : `all ${REQUIRED_KERNEL_OPTIONS.length} set (${cfg.source})`,
      'use a kernel with these options (on a Pi: `pi-prep rpios --kernel rebuild`)'));
    for (const opt of WARNED_KERNEL_OPTIONS) {
      const on = enabled(opt);
      items.push(item(`kernel-${opt.toLowerCase()}`, `CONFIG_${opt}`, 'warning', on, on ? 'set' : 'not set',
        opt === 'CFS_BANDWIDTH' ? 'CPU limits are not enforced without it: `pi-prep rpios --kernel rebuild` on a Pi' : `a kernel with CONFIG_${opt}`));
    }
  }

  const cg = f.cgroup;
  items.push(item('cgroup-v2', 'cgroup v2 (unified hierarchy)', 'required', cg.version === undefined ? undefined : cg.version === 2,
    cg.version === undefined ? 'not mounted here (a root directory has no /sys)' : `cgroup v${cg.version}`,
    f.init === 'openrc' ? 'set rc_cgroup_mode="unified" in /etc/rc.conf and reboot' : 'boot with systemd.unified_cgroup_hierarchy=1 (k0s >= 1.36.1 rejects cgroup v1)'));
  if (cg.version !== undefined) {
    const missing = REQUIRED_CONTROLLERS.filter((c) => !cg.controllers.includes(c));
    items.push(item('cgroup-controllers', 'cgroup controllers cpu cpuset memory pids', 'required', missing.length === 0,
      missing.length ? `missing: ${missing.join(', ')}` : cg.controllers.join(' '),
      missing.includes('memory') ? 'add cgroup_enable=memory to cmdline.txt and reboot (`pi-prep rpios` does it on a Pi)' : 'enable the missing controllers in the kernel'));
    const optional = OPTIONAL_CONTROLLERS.filter((c) => !cg.controllers.includes(c));
    items.push(item('cgroup-optional', 'cgroup controllers hugetlb io', 'warning', optional.length === 0,
      optional.length ? `missing: ${optional.join(', ')}` : 'present', 'optional: only some workloads need them'));
  }

  items.push(item('memory', 'Memory at least 500 MiB', 'warning', f.memTotalBytes === undefined ? undefined : f.memTotalBytes >= 500 * MiB,
    f.memTotalBytes === undefined ? 'unknown' : fmtMiB(f.memTotalBytes), 'k0s may run out of memory on this machine'));
  items.push(item('disk', 'Free space for /var/lib/k0s at least 1300 MiB', 'warning',
    f.dataDirFreeBytes === undefined ? undefined : f.dataDirFreeBytes >= 1300 * MiB,
    f.dataDirFreeBytes === undefined ? 'unknown' : `${fmtMiB(f.dataDirFreeBytes)} free`, 'free space or mount a larger disk at /var/lib/k0s'));
  items.push(item('localhost', 'localhost resolves', 'required', f.localhostResolves,
    f.localhostResolves ? '/etc/hosts' : 'no localhost entry in /etc/hosts', 'add `127.0.0.1 localhost` to /etc/hosts'));
  return items;
}

/** Raspberry Pi items: only for Pis, or roots with a Pi boot partition. */
export function piReadiness(f: Facts, cmdline: string | undefined): ReadinessItem[] {
  const items: ReadinessItem[] = [];
  items.push(item('pi-boot-dir', 'Boot partition', 'required', f.bootDir !== undefined,
    f.bootDir ? `${f.bootDir}/cmdline.txt` : f.bootProblem ?? 'no cmdline.txt in /boot/firmware or /boot', 'mount the boot partition at /boot/firmware'));
  if (cmdline !== undefined) {
    const problems = cmdlineProblems(cmdline);
    items.push(item('pi-cmdline', 'cgroup flags in cmdline.txt', 'required', problems.length === 0,
      problems.length ? problems.join(', ') : 'cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1', 'run `pi-prep rpios` (it adds them), then reboot'));
  }
  return items;
}

export function isPi(f: Facts): boolean {
  return f.board?.soc !== undefined || /raspberry/i.test(f.board?.model ?? '') || f.os.id === 'raspbian' || f.bootDir === '/boot/firmware';
}

export function failedRequired(items: ReadinessItem[]): ReadinessItem[] {
  return items.filter((i) => i.status === 'fail');
}
