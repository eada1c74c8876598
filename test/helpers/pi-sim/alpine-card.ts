import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const MT = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
export const STOCK_CMDLINE = 'modules=loop,squashfs,sd-mod,usb-storage quiet console=tty1';
/** The boot repository of an alpine-rpi tarball: the base set only (aports mkimg.rpi.sh). */
const BOOT_REPO = ['alpine-base', 'busybox', 'chrony', 'dhcpcd', 'doas', 'e2fsprogs', 'network-extras', 'openssl', 'openssh', 'tzdata', 'wget', 'wpa_supplicant', 'iw'];

/**
 * A card as a user has it after extracting the alpine-rpi tarball to a FAT partition and running
 * setup-alpine and `lbu commit` on the Pi (the seed's way): one 64 MiB FAT32 partition at 4 MiB,
 * free space after it, and <hostname>.apkovl.tar.gz with what setup-alpine configured.
 */
export function setupAlpineCard(dir: string, o: { sizeMiB?: number; hostname?: string; world?: string[] } = {}): string {
  const img = join(dir, 'card.img');
  const host = o.hostname ?? 'pi4';
  execFileSync('truncate', ['-s', `${o.sizeMiB ?? 400}M`, img]);
  execFileSync('sfdisk', ['-q', img], { input: 'label: dos\nstart=8192, size=131072, type=c, bootable\n' });
  // 512-byte clusters: 64 MiB must still hold 65525 clusters to be read as FAT32.
  execFileSync('mkfs.vfat', ['-F', '32', '-s', '1', '-n', 'ALPINE', '--offset', '8192', img, String(131072 / 2)], { stdio: 'ignore' });
  const stage = mkdtempSync(join(tmpdir(), 'pi-prep-card-'));
  try {
    const put = (p: string, data: string) => {
      mkdirSync(dirname(join(stage, p)), { recursive: true });
      writeFileSync(join(stage, p), data);
    };
    put('boot/cmdline.txt', `${STOCK_CMDLINE}\n`);
    put('boot/config.txt', '# do not modify this file as it will be overwritten on upgrade.\n# create and/or modify usercfg.txt instead.\n[all]\narm_64bit=1\ninclude usercfg.txt\n');
    put('boot/.alpine-release', 'alpine-rpi-3.21.2 250108\n');
    put('boot/apks/.boot_repository', '');
    for (const p of BOOT_REPO) put(`boot/apks/aarch64/${p}-1.0-r0.apk`, `sim apk ${p}\n`);
    // What setup-alpine leaves in /etc (setup-hostname, setup-interfaces, setup-lbu, setup-apkrepos, setup-sshd, setup-ntp).
    put('ovl/etc/hostname', `${host}\n`);
    put('ovl/etc/hosts', `127.0.0.1\t${host} localhost.localdomain localhost\n::1\t\tlocalhost localhost.localdomain\n`);
    put('ovl/etc/network/interfaces', 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n');
    put('ovl/etc/lbu/lbu.conf', '# what cipher to use with -e option\nDEFAULT_CIPHER=aes-256-cbc\n\n# Uncomment below to override the default media\nLBU_MEDIA=mmcblk0p1\n');
    put('ovl/etc/apk/world', (o.world ?? ['alpine-base', 'chrony', 'openssh']).join('\n') + '\n');
    put('ovl/etc/apk/repositories', '/media/mmcblk0p1/apks\nhttps://dl-cdn.alpinelinux.org/alpine/v3.21/main\nhttps://dl-cdn.alpinelinux.org/alpine/v3.21/community\n');
    const levels: Record<string, string[]> = {
      sysinit: ['devfs', 'dmesg', 'mdev', 'hwdrivers', 'modloop'],
      boot: ['modules', 'sysctl', 'hostname', 'bootmisc', 'syslog'],
      default: ['networking', 'sshd', 'chronyd'],
      shutdown: ['mount-ro', 'killprocs', 'savecache'],
    };
    for (const [l, svcs] of Object.entries(levels)) {
      mkdirSync(join(stage, 'ovl/etc/runlevels', l), { recursive: true });
      for (const s of svcs) symlinkSync(`/etc/init.d/${s}`, join(stage, 'ovl/etc/runlevels', l, s));
    }
    execFileSync('tar', ['--owner=0', '--group=0', '--numeric-owner', '-czf', join(stage, `boot/${host}.apkovl.tar.gz`), '-C', join(stage, 'ovl'), 'etc']);
    const off = `${img}@@${8192 * 512}`;
    execFileSync('mcopy', ['-s', '-i', off, join(stage, 'boot/cmdline.txt'), join(stage, 'boot/config.txt'), join(stage, 'boot/.alpine-release'),
      join(stage, `boot/${host}.apkovl.tar.gz`), join(stage, 'boot/apks'), '::/'], { env: MT, stdio: ['ignore', 'pipe', 'pipe'] });
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return img;
}
