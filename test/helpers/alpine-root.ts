import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildRoot, osRelease, recordingScript, STANDIN_LOG, writeFile } from './fixture-root.js';
import { kernelConfig, TAG } from './k0s-release.js';
import { k0sStandIn } from './k0s-standin.js';
import { TestHttpServer } from './http-server.js';
import { createHash } from 'node:crypto';

/**
 * A running diskless Alpine on a Pi 4, as a chroot: arm64 busybox, Alpine's files, the boot media
 * at /media/mmcblk0p1 (ro), and /dev/mmcblk0 = a loop device on a card image the test owns, so
 * sfdisk, mkfs.ext4 and blkid (the host's real ones, copied in) act on a real partition table.
 * Stand-ins for what cannot run here (apk, lbu, rc-service, rc-update, mount, reboot) record argv
 * and do what the real tool does to the files this recipe reads back.
 */

const FIRMWARE_ARGS = 'coherent_pool=1M 8250.nr_uarts=0 snd_bcm2835.enable_headphones=0 bcm2708_fb.fbwidth=0 bcm2708_fb.fbheight=0 smsc95xx.macaddr=DC:A6:32:00:00:01 vc_mem.mem_base=0x3ec00000 vc_mem.mem_size=0x40000000';
export const STOCK_CMDLINE = 'modules=loop,squashfs,sd-mod,usb-storage quiet console=tty1';
const MEDIA = '/media/mmcblk0p1';

/** Kill the pi-prep process (the stand-in's parent) after the Nth recorded call: an interrupted run. */
const KILL = `if [ -n "$PI_PREP_TEST_KILL_AT" ] && [ "$(wc -l < ${STANDIN_LOG})" -eq "$PI_PREP_TEST_KILL_AT" ]; then kill -9 $PPID; fi`;
const standIn = (body: string) => recordingScript(`(\n${body}\n)\nrc=$?\n${KILL}\nexit $rc`);

const APK = standIn(`
case "$1" in
  info) shift; [ "$1" = -e ] && shift; rc=0
    for p; do if grep -qx "$p" /etc/apk/world; then echo "$p"; else rc=1; fi; done; exit $rc ;;
  add) shift
    for p; do grep -qx "$p" /etc/apk/world || echo "$p" >> /etc/apk/world
      [ -L /etc/apk/cache ] && touch "$(readlink /etc/apk/cache)/$p-1.0-r0.apk"; done ;;
esac`);

const RC_SERVICE = standIn(`[ "$2" = start ] && mkdir -p /run/openrc/started && ln -sf /etc/init.d/$1 /run/openrc/started/$1; exit 0`);
const RC_UPDATE = standIn(`[ "$1" = add ] && mkdir -p /etc/runlevels/$3 && ln -sf /etc/init.d/$2 /etc/runlevels/$3/$2; exit 0`);

/** lbu as alpine-conf's lbu.in: saves /etc (only symlinks under /etc/init.d) and included paths. */
const LBU = standIn(`
LIST=/etc/apk/protected_paths.d/lbu.list
. /etc/lbu/lbu.conf
MNT=/media/$LBU_MEDIA
files() {
  find etc ! -path 'etc/init.d/*' \\( -type f -o -type l \\); find etc/init.d -type l
  [ -f $LIST ] && sed -n 's/^+//p' $LIST | while read p; do [ -e "$p" ] && find "$p" \\( -type f -o -type l \\); done
}
manifest() {
  cd / && files | sort -u | while read f; do
    if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else echo "$f $(md5sum < "$f" | cut -c1-32)"; fi
  done
}
case "$1" in
  include) shift; mkdir -p /etc/apk/protected_paths.d
    for p; do p=\${p#/}; grep -qx "+$p" $LIST 2>/dev/null || echo "+$p" >> $LIST; done ;;
  status) manifest > /tmp/lbu.now
    diff $MNT/.lbu-standin-manifest /tmp/lbu.now | grep '^[-+][^-+]' | cut -d' ' -f1 | sed 's/^+/U /;s/^-/D /' ; exit 0 ;;
  commit) [ "$2" = -d ] && rm -f $MNT/*.apkovl.tar.gz
    cd / && tar --no-recursion -czf $MNT/$(cat /etc/hostname).apkovl.tar.gz $(files | sort -u)
    manifest > $MNT/.lbu-standin-manifest ;;
esac`);

/** mount: remount flips ro/rw in /proc/mounts as the kernel would show it; `mount DIR` mounts from fstab. */
const MOUNT = standIn(`
if [ "$1" = -o ]; then
  mode=\${2#remount,}
  awk -v d="$3" -v m="$mode" '$2 == d { sub(/^(ro|rw)/, m, $4) } { print }' /proc/mounts > /tmp/mounts && cat /tmp/mounts > /proc/mounts
elif [ "$1" = /var/lib/k0s ]; then
  echo "/dev/mmcblk0p2 /var/lib/k0s ext4 rw,relatime 0 0" >> /proc/mounts
fi`);

const REBOOT = standIn('exit 0');

/** The k0s release (arm64 only), its stand-in able to kill the run too (see KILL). */
export async function killableK0sRelease(): Promise<TestHttpServer> {
  const server = await new TestHttpServer().start();
  const name = `k0s-${TAG}-arm64`;
  const body = `${k0sStandIn(TAG)}${KILL}\n# k0s stand-in for arm64\n`;
  server.routes.set(`/${TAG}/${name}`, { body });
  server.routes.set(`/${TAG}/sha256sums.txt`, { body: `${createHash('sha256').update(body).digest('hex')} *${name}\n` });
  return server;
}

export interface Card {
  img: string;
  loop: string;
  minor: number;
  detach(): void;
}

/** A card image: dos table, a 64 MiB FAT32 boot partition at 4 MiB, free space after it, on a loop device. */
export function makeCard(dir: string, sizeMiB = 400): Card {
  const img = join(dir, 'card.img');
  execFileSync('truncate', ['-s', `${sizeMiB}M`, img]);
  execFileSync('sfdisk', ['-q', img], { input: 'label: dos\nstart=8192, size=131072, type=c\n' });
  execFileSync('mkfs.vfat', ['-F', '32', '-n', 'ALPINE', '--offset', '8192', img, String(131072 / 2)], { stdio: 'ignore' });
  const loop = execFileSync('losetup', ['-f', '--show', img]).toString().trim();
  const minor = Number(/loop(\d+)$/.exec(loop)![1]);
  let attached = true;
  return {
    img, loop, minor,
    detach() {
      if (attached) execFileSync('losetup', ['-d', loop]);
      attached = false;
    },
  };
}

/** The host's own tool (and its libraries) inside the root: real sfdisk, mkfs.ext4, blkid. */
export function installHostTool(root: string, host: string, dest: string): void {
  const libs = execFileSync('ldd', [host]).toString().match(/\/[^\s)]+/g) ?? [];
  for (const lib of libs) {
    const to = join(root, lib);
    if (!existsSync(to)) {
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(lib, to);
    }
  }
  writeFile(root, dest, readFileSync(host), 0o755);
}

export interface AlpineRootOptions {
  card: Card;
  /** Packages already in /etc/apk/world. */
  world?: string[];
  os?: { id: string; pretty: string };
}

export function alpineRoot(o: AlpineRootOptions): string {
  const world = o.world ?? ['alpine-base', 'chrony', 'openssh', 'curl'];
  const root = buildRoot({
    arch: 'arm64',
    init: 'openrc',
    files: {
      '/etc/os-release': osRelease(o.os?.id ?? 'alpine', '3.21.3', o.os?.pretty ?? 'Alpine Linux v3.21', 'HOME_URL="https://alpinelinux.org/"\n'),
      '/etc/alpine-release': '3.21.3\n',
      '/etc/hostname': 'pi4\n',
      '/etc/lbu/lbu.conf': '# what cipher to use with -e option\nDEFAULT_CIPHER=aes-256-cbc\n\n# Uncomment the row below to encrypt config by default\n# ENCRYPTION=$DEFAULT_CIPHER\n\n# Uncomment below to override the default media\nLBU_MEDIA=mmcblk0p1\n',
      '/etc/rc.conf': '# Global OpenRC configuration settings\n#rc_parallel="NO"\n# This sets the mode used to mount cgroups.\n# "hybrid" mounts cgroups version 2 on /sys/fs/cgroup/unified and\n# cgroups version 1 on /sys/fs/cgroup.\n#rc_cgroup_mode="hybrid"\n',
      '/etc/fstab': '/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0\n/dev/usbdisk\t/media/usb\tvfat\tnoauto\t0 0\n',
      '/etc/apk/world': world.join('\n') + '\n',
      '/etc/init.d/cgroups': '#!/sbin/openrc-run\ndescription="Mount the control groups."\n',
      '/etc/runlevels/default/.keep': '',
      [`${MEDIA}/cmdline.txt`]: `${STOCK_CMDLINE}\n`,
      [`${MEDIA}/config.txt`]: '# do not modify this file as it will be overwritten on upgrade.\n# create and/or modify usercfg.txt instead.\n',
      [`${MEDIA}/.alpine-release`]: 'alpine-rpi-3.21.3 250214\n',
      '/proc/mounts': [
        'tmpfs / tmpfs rw,relatime,mode=755 0 0',
        'proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0',
        'sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0',
        `/dev/mmcblk0p1 ${MEDIA} vfat ro,relatime,fmask=0022,dmask=0022,codepage=437,iocharset=ascii,shortname=mixed,errors=remount-ro 0 0`,
        '/dev/loop0 /.modloop squashfs ro,relatime 0 0',
        '',
      ].join('\n'),
      '/proc/cmdline': `${FIRMWARE_ARGS} ${STOCK_CMDLINE}\n`,
      '/proc/partitions': 'major minor  #blocks  name\n\n 179        0   31166976 mmcblk0\n 179        1      65536 mmcblk0p1\n',
      '/proc/sys/kernel/osrelease': '6.6.71-0-rpi\n',
      '/proc/config.gz': gzipSync(kernelConfig()),
      '/proc/cgroups': '#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t0\t1\t1\ncpu\t0\t1\t1\ncpuacct\t0\t1\t1\nblkio\t0\t1\t1\nmemory\t0\t1\t0\ndevices\t0\t1\t1\nfreezer\t0\t1\t1\npids\t0\t1\t1\n',
      '/proc/meminfo': 'MemTotal:        3881424 kB\n',
      '/proc/device-tree/model': 'Raspberry Pi 4 Model B Rev 1.4\0',
    },
    standIns: {
      '/sbin/apk': APK,
      '/usr/sbin/lbu': LBU,
      '/sbin/rc-service': RC_SERVICE,
      '/sbin/rc-update': RC_UPDATE,
      '/bin/mount': MOUNT,
      '/sbin/reboot': REBOOT,
    },
  });
  for (const [host, dest] of [['/usr/sbin/sfdisk', '/sbin/sfdisk'], ['/usr/sbin/mke2fs', '/sbin/mkfs.ext4'], ['/usr/sbin/blkid', '/sbin/blkid']] as const) {
    installHostTool(root, host, dest);
  }
  if (existsSync('/etc/mke2fs.conf')) writeFile(root, '/etc/mke2fs.conf', readFileSync('/etc/mke2fs.conf'));
  execFileSync('mknod', [join(root, 'dev/mmcblk0'), 'b', '7', String(o.card.minor)]);
  // The card as it came from setup-alpine: an overlay holding this /etc, committed.
  execFileSync('chroot', [root, '/usr/sbin/lbu', 'commit', '-d']);
  rmSync(join(root, STANDIN_LOG), { force: true });
  cpSync(join(root, 'etc'), join(root, 'var/lib/pristine-etc'), { recursive: true, verbatimSymlinks: true });
  return root;
}

/**
 * What a reboot does to a diskless Pi: RAM is gone, /etc comes back from the base system plus the
 * overlay lbu committed, the kernel reads cmdline.txt and the partition table, OpenRC mounts fstab
 * (if the mount point exists) and starts the boot and default runlevels.
 */
export function simulateBoot(root: string, card: Card): void {
  const p = (x: string) => join(root, x);
  // RAM: /etc, /run, /tmp, /usr/local and the tmpfs under /var/lib/k0s are gone.
  rmSync(p('etc'), { recursive: true, force: true });
  cpSync(p('var/lib/pristine-etc'), p('etc'), { recursive: true, verbatimSymlinks: true });
  for (const d of ['run', 'tmp', 'usr/local/bin']) {
    rmSync(p(d), { recursive: true, force: true });
    mkdirSync(p(d), { recursive: true });
  }
  const mounted = existsSync(p('var/lib/k0s/.standin-mounted')); // the data partition was mounted before
  if (!mounted) rmSync(p('var/lib/k0s'), { recursive: true, force: true });
  const ovl = readdirSync(p(MEDIA)).find((f) => f.endsWith('.apkovl.tar.gz'));
  if (ovl) execFileSync('tar', ['-xzf', p(`${MEDIA}/${ovl}`), '-C', root]);

  const cmdline = readFileSync(p(`${MEDIA}/cmdline.txt`), 'utf8').split('\n')[0]!;
  writeFileSync(p('proc/cmdline'), `${FIRMWARE_ARGS} ${cmdline}\n`);
  const table = execFileSync('sfdisk', ['-d', card.loop]).toString();
  const parts = [...table.matchAll(/p(\d+) : start=\s*(\d+), size=\s*(\d+)/g)];
  writeFileSync(p('proc/partitions'), 'major minor  #blocks  name\n\n 179        0   31166976 mmcblk0\n' +
    parts.map((m) => ` 179        ${m[1]}   ${Number(m[3]) / 2} mmcblk0p${m[1]}`).join('\n') + '\n');
  const rc = readFileSync(p('etc/rc.conf'), 'utf8');
  if (/^rc_cgroup_mode="unified"/m.test(rc) && /cgroup_enable=memory/.test(cmdline)) {
    rmSync(p('proc/cgroups'), { force: true });
    mkdirSync(p('sys/fs/cgroup'), { recursive: true });
    writeFileSync(p('sys/fs/cgroup/cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma\n');
  }
  const mounts = readFileSync(p('proc/mounts'), 'utf8').split('\n').filter((l) => l && !l.includes(' /var/lib/k0s '))
    .map((l) => (l.includes(` ${MEDIA} `) ? l.replace(/ rw,/, ' ro,') : l));
  // localmount: the fstab line by label, if a k0s-data ext4 exists and the mount point is there.
  const fstab = readFileSync(p('etc/fstab'), 'utf8');
  const data = parts.find((m) => labelAt(card.loop, Number(m[2])) === 'k0s-data');
  if (/^LABEL=k0s-data\s+\/var\/lib\/k0s\s+ext4/m.test(fstab) && data && existsSync(p('var/lib/k0s')) && statSync(p('var/lib/k0s')).isDirectory()) {
    if (!mounted) {
      // A fresh ext4 hides the tmpfs directory: only lost+found shows.
      rmSync(p('var/lib/k0s'), { recursive: true, force: true });
      mkdirSync(p('var/lib/k0s/lost+found'), { recursive: true });
      writeFileSync(p('var/lib/k0s/.standin-mounted'), '');
    }
    mounts.push(`/dev/mmcblk0p${data[1]} /var/lib/k0s ext4 rw,relatime 0 0`);
  }
  writeFileSync(p('proc/mounts'), mounts.join('\n') + '\n');
  // OpenRC starts the boot and default runlevels.
  for (const level of ['boot', 'default']) {
    const dir = p(`etc/runlevels/${level}`);
    if (!existsSync(dir)) continue;
    for (const svc of readdirSync(dir).filter((s) => !s.startsWith('.'))) {
      mkdirSync(p('run/openrc/started'), { recursive: true });
      writeFileSync(p(`run/openrc/started/${svc}`), '');
      if (svc === 'k0sworker') {
        mkdirSync(p('run/k0s'), { recursive: true });
        writeFileSync(p('run/k0s/standin-started'), '');
      }
    }
  }
}

export function labelAt(dev: string, startSector: number): string | undefined {
  try {
    const out = execFileSync('blkid', ['-p', '-O', String(startSector * 512), '-s', 'LABEL', '-o', 'value', dev]).toString().trim();
    return out || undefined;
  } catch {
    return undefined;
  }
}

export function workDir(): string {
  return mkdtempSync(join(tmpdir(), 'pi-prep-alpine-'));
}
