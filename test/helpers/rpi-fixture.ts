import { buildRoot, recordingScript } from './fixture-root.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { kernelConfig } from './k0s-release.js';
import { SYSTEMCTL } from './pi-sim/rpios-boot.js';

/** The running kernel's config: what k0s needs plus every option of kernel-configs/ (minus `without`). */
export function piKernelConfig(without: string[] = []): string {
  const frag = readFileSync(fileURLToPath(new URL('../../../kernel-configs/k0s-worker.config', import.meta.url)), 'utf8');
  const extra = [...frag.matchAll(/^CONFIG_([A-Z0-9_]+)=([ym])$/gm)].map((m) => m[1]!).filter((o) => !without.includes(o));
  return kernelConfig(without) + extra.map((o) => `CONFIG_${o}=y`).join('\n') + '\n';
}

/** cmdline.txt and config.txt as Raspberry Pi OS Bookworm ships them (2024-11 image). */
export const BOOKWORM_CMDLINE = 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet splash plymouth.ignore-udev cfg80211.ieee80211_regdom=GB\n';
export const BOOKWORM_CONFIG = `# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Additional overlays and parameters are documented
# /boot/firmware/overlays/README

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Automatically load overlays for detected DSI displays
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Don't have the firmware create an initial video= setting in cmdline.txt.
# Use the kernel's default instead.
disable_fw_kms_setup=1

# Run in 64-bit mode
arm_64bit=1

# Disable compensation for displays with overscan
disable_overscan=1

# Run as fast as firmware / UART allow
arm_boost=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
# This line should be removed if the legacy DWC2 controller is required
# (e.g. for USB device mode) or if USB support is not required.
otg_mode=1

[cm5]
dtoverlay=dwc2,dr_mode=host

[all]
`;
export const BOOKWORM_OS_RELEASE = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`;

export const BOARDS = {
  pi4: { model: 'Raspberry Pi 4 Model B Rev 1.4', compatible: 'raspberrypi,4-model-b\0brcm,bcm2711\0', release: '6.6.51+rpt-rpi-v8', dtb: 'bcm2711-rpi-4-b.dtb' },
  pi5: { model: 'Raspberry Pi 5 Model B Rev 1.0', compatible: 'raspberrypi,5-model-b\0brcm,bcm2712\0', release: '6.6.51+rpt-rpi-2712', dtb: 'bcm2712-rpi-5-b.dtb' },
} as const;

/**
 * Stands in for reboot: records argv (tests assert a root directory is never rebooted). What a
 * reboot brings is the boot simulator's (pi-sim/rpios-boot.ts), run by the test as the user's reboot.
 */
export function rebootStandIn(): string {
  return recordingScript('echo "simulated Pi: the test boots it (bootRpiOs)" >&2');
}

export interface PiRootOptions {
  board: keyof typeof BOARDS;
  /** Options missing from the running kernel's config. */
  without?: string[];
  cmdline?: string;
  bootFiles?: Record<string, string | Buffer>;
  /** false: the kernel lacks CONFIG_MEMCG, so no cmdline brings the memory controller. */
  bringsMemory?: boolean;
}

/** A Raspberry Pi OS 64-bit root as a Pi runs it, in an arm64 chroot. */
export function piRoot(o: PiRootOptions): string {
  const b = BOARDS[o.board];
  const boot: Record<string, string | Buffer> = {};
  for (const [k, v] of Object.entries(o.bootFiles ?? {})) boot[`/boot/firmware/${k}`] = v;
  return buildRoot({
    arch: 'arm64',
    init: 'systemd',
    files: {
      '/etc/os-release': BOOKWORM_OS_RELEASE,
      '/proc/device-tree/model': `${b.model}\0`,
      '/proc/device-tree/compatible': b.compatible,
      '/proc/sys/kernel/osrelease': `${b.release}\n`,
      '/proc/sys/kernel/random/boot_id': '6f1c3e1a-0000-4000-8000-000000000001\n',
      '/proc/meminfo': 'MemTotal:        3884376 kB\n',
      [`/boot/config-${b.release}`]: piKernelConfig([...(o.without ?? []), ...(o.bringsMemory === false ? ['MEMCG'] : [])]),
      '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io pids\n',
      '/boot/firmware/cmdline.txt': o.cmdline ?? BOOKWORM_CMDLINE,
      '/boot/firmware/config.txt': BOOKWORM_CONFIG,
      [`/boot/firmware/${b.dtb}`]: Buffer.from(`stock ${b.dtb}\n`),
      '/boot/firmware/kernel8.img': Buffer.from('stock kernel8.img\n'),
      '/boot/firmware/kernel_2712.img': Buffer.from('stock kernel_2712.img\n'),
      ...boot,
    },
    standIns: { '/sbin/reboot': rebootStandIn(), '/bin/systemctl': SYSTEMCTL },
  });
}
