import { buildRoot, osRelease } from './fixture-root.js';
import { kernelConfig } from './k0s-release.js';
import { chrootable } from './sshd.js';

/**
 * A Pi 4 root (Debian 12) for an sshd chroot; `broken` lacks a kernel option k0s requires. arm64
 * runs its busybox under qemu like a Pi; amd64 runs natively (SSH and pi-prep costs alone).
 */
export function piRoot(broken: boolean, files: Record<string, string> = {}, arch: 'arm64' | 'amd64' = 'arm64'): string {
  return chrootable(() =>
    buildRoot({
      arch,
      init: 'systemd',
      files: {
        '/etc/os-release': osRelease('debian', '12', 'Debian GNU/Linux 12 (bookworm)'),
        '/proc/sys/kernel/osrelease': '6.6.51-v8+\n',
        '/boot/config-6.6.51-v8+': kernelConfig(broken ? ['NETFILTER_XT_MATCH_COMMENT'] : []),
        '/proc/device-tree/model': 'Raspberry Pi 4 Model B Rev 1.4\0',
        '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory pids\n',
        '/proc/meminfo': 'MemTotal:        3884376 kB\n',
        ...files,
      },
    }),
  );
}
