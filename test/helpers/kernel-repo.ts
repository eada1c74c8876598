import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const KERNEL_CACHE = process.env.PI_PREP_KERNEL_CACHE ?? '/var/cache/pi-prep-test';

/** The cached git repository made from Debian's linux-source (branch rpi-6.1.y); made on first use. */
export function kernelRepo(): string {
  const script = fileURLToPath(new URL('../../../scripts/make-kernel-repo.sh', import.meta.url));
  return execFileSync('bash', [script, KERNEL_CACHE], { encoding: 'utf8' }).trim().split('\n').at(-1)!;
}

/** What tinyconfig lacks for the fragment and the Pi DTBs: modules, users (namespaces need them), block devices, SysV IPC, BCM2835. */
export const TINY_EXTRA = ['CONFIG_MODULES=y', 'CONFIG_MULTIUSER=y', 'CONFIG_BLOCK=y', 'CONFIG_SYSVIPC=y', 'CONFIG_ARCH_BCM=y', 'CONFIG_ARCH_BCM2835=y', ''].join('\n');
