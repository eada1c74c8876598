import { pbkdf2Sync } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';

/** One entry of an Alpine overlay (apkovl) tarball: owners and modes are exactly these. */
export type OverlayEntry =
  | { type: 'file'; path: string; data: string | Buffer; mode: number; uid?: number; gid?: number }
  | { type: 'dir'; path: string; mode: number; uid?: number; gid?: number }
  | { type: 'symlink'; path: string; target: string; uid?: number; gid?: number };

export interface OverlayOptions {
  hostname: string;
  /** authorized_keys lines for root; none: no sshd at all (a card without SSH, asked for with --no-ssh). */
  sshKeys: string[];
  /** Wi-Fi, for wpa_supplicant (wlan0 then gets DHCP too). */
  wifi?: { ssid: string; psk: string; country?: string };
  /** `LBU_MEDIA` for lbu.conf: the boot partition's device name (mmcblk0p1 on a Pi's SD slot). */
  lbuMedia: string;
  /** Package repositories, one per line in /etc/apk/repositories. */
  repositories: string[];
  /** /etc/apk/world: installed from the card's repository at every boot. */
  world: string[];
  /** fstab lines (e.g. the data partition at /var/lib/k0s). */
  fstab: string[];
  /** Extra services per runlevel, on top of Alpine's own set. */
  services?: Partial<Record<Runlevel, string[]>>;
  /** Files to add or replace (init scripts, conf.d, ...). */
  extra?: OverlayEntry[];
}

export type Runlevel = 'sysinit' | 'boot' | 'default' | 'shutdown';

/**
 * The services a diskless Alpine enables on its own when there is no overlay (facts.md), plus
 * what a k0s worker needs: networking, sshd, chronyd, and cgroups at boot. No clock service:
 * initramfs-init adds hwclock when the board has an RTC (Pi 5) and swclock otherwise.
 */
export const BASE_RUNLEVELS: Record<Runlevel, string[]> = {
  sysinit: ['devfs', 'dmesg', 'mdev', 'hwdrivers', 'modloop'],
  boot: ['modules', 'sysctl', 'hostname', 'bootmisc', 'syslog', 'cgroups', 'localmount'],
  default: ['networking', 'sshd', 'chronyd'],
  shutdown: ['mount-ro', 'killprocs', 'savecache'],
};

/** The packages the card's own repository holds that a headless worker uses from the first boot. */
export const BASE_WORLD = ['alpine-base', 'chrony', 'openssh', 'e2fsprogs', 'tzdata'];

/** Valid RFC 1123 host name (one label): what /etc/hostname and the apkovl's name may be. */
export function isHostname(h: string): boolean {
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(h);
}

/** The overlay's files for a headless, persistent Alpine with cgroups (v2, unified) ready for k0s. */
export function overlayEntries(o: OverlayOptions): OverlayEntry[] {
  const e: OverlayEntry[] = [];
  const dir = (path: string, mode = 0o755) => e.push({ type: 'dir', path, mode });
  const file = (path: string, data: string, mode = 0o644) => e.push({ type: 'file', path, data, mode });
  for (const d of ['etc', 'etc/apk', 'etc/apk/protected_paths.d', 'etc/init.d', 'etc/conf.d', 'etc/lbu', 'etc/network', 'etc/runlevels', 'etc/ssh', 'etc/ssh/sshd_config.d', 'root']) dir(d);
  file('etc/hostname', `${o.hostname}\n`);
  file('etc/hosts', `127.0.0.1\tlocalhost localhost.localdomain\n::1\t\tlocalhost localhost.localdomain\n127.0.1.1\t${o.hostname}\n`);
  const ifaces = ['auto lo', 'iface lo inet loopback', '', 'auto eth0', 'iface eth0 inet dhcp', ''];
  if (o.wifi) ifaces.push('auto wlan0', 'iface wlan0 inet dhcp', '');
  file('etc/network/interfaces', ifaces.join('\n'));
  file('etc/apk/repositories', o.repositories.join('\n') + '\n');
  file('etc/apk/world', [...new Set(o.world)].sort().join('\n') + '\n');
  file('etc/fstab', o.fstab.join('\n') + '\n');
  file('etc/lbu/lbu.conf', `# pi-prep: where lbu commit saves the overlay\nLBU_BACKUPDIR=\nBACKUP_LIMIT=3\nLBU_MEDIA=${o.lbuMedia}\n`);
  // cgroup v2 only: k0s >= 1.36 refuses the hybrid hierarchy OpenRC uses by default.
  file('etc/rc.conf', 'rc_cgroup_mode="unified"\nrc_cgroup_controllers="cpuset cpu io memory hugetlb pids"\n');
  const keys = o.sshKeys.map((k) => k.trim()).filter(Boolean);
  if (keys.length) {
    file('etc/ssh/sshd_config.d/pi-prep.conf', 'PermitRootLogin prohibit-password\nPasswordAuthentication no\n');
    dir('root/.ssh', 0o700);
    file('root/.ssh/authorized_keys', keys.join('\n') + '\n', 0o600);
  }
  if (o.wifi) {
    dir('etc/wpa_supplicant');
    file('etc/wpa_supplicant/wpa_supplicant.conf', wpaSupplicantConf(o.wifi), 0o600);
  }
  const levels: Record<Runlevel, string[]> = { ...BASE_RUNLEVELS };
  if (!keys.length) levels.default = levels.default.filter((svc) => svc !== 'sshd');
  for (const [lvl, svcs] of Object.entries(o.services ?? {}) as [Runlevel, string[]][]) levels[lvl] = [...levels[lvl], ...svcs];
  if (o.wifi) levels.boot = [...levels.boot, 'wpa_supplicant'];
  for (const [lvl, svcs] of Object.entries(levels) as [Runlevel, string[]][]) {
    dir(`etc/runlevels/${lvl}`);
    for (const s of [...new Set(svcs)]) e.push({ type: 'symlink', path: `etc/runlevels/${lvl}/${s}`, target: `/etc/init.d/${s}` });
  }
  for (const x of o.extra ?? []) {
    const i = e.findIndex((y) => y.path === x.path);
    if (i >= 0) e.splice(i, 1);
    e.push(x);
  }
  return e;
}

/** The apkovl's file name: what `lbu commit` writes too, so it replaces ours in place. */
export function apkovlName(hostname: string): string {
  return `${hostname}.apkovl.tar.gz`;
}

/** A gzipped ustar archive of the entries, root:root unless given, with the given modes. */
export function packOverlay(entries: OverlayEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const blocks: Buffer[] = [];
  for (const en of entries) {
    const data = en.type === 'file' ? Buffer.from(en.data) : Buffer.alloc(0);
    const mode = en.type === 'symlink' ? 0o777 : en.mode;
    const name = en.type === 'dir' ? `${en.path.replace(/\/$/, '')}/` : en.path;
    blocks.push(ustarHeader(name, {
      mode, uid: en.uid ?? 0, gid: en.gid ?? 0, size: data.length, mtime,
      type: en.type === 'file' ? 'File' : en.type === 'dir' ? 'Directory' : 'SymbolicLink',
      link: en.type === 'symlink' ? en.target : '',
    }));
    if (data.length) {
      blocks.push(data);
      const pad = (512 - (data.length % 512)) % 512;
      if (pad) blocks.push(Buffer.alloc(pad));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks), { level: 9 });
}

/** One 512-byte ustar header, encoded by the tar package (checksum, octal fields, name/prefix split). */
function ustarHeader(name: string, h: { mode: number; uid: number; gid: number; size: number; mtime: number; type: 'File' | 'Directory' | 'SymbolicLink'; link: string }): Buffer {
  const header = new Header({
    path: name, mode: h.mode & 0o7777, uid: h.uid, gid: h.gid, size: h.size, mtime: new Date(h.mtime * 1000), type: h.type,
    linkpath: h.link, uname: h.uid === 0 ? 'root' : '', gname: h.gid === 0 ? 'root' : '',
  });
  // A name that needs a pax extended header would be read differently by busybox tar: refuse it.
  if (header.encode()) throw new Error(`overlay path too long: ${name}`);
  return header.block!;
}

/**
 * The WPA2 pre-shared key derived from the passphrase (PBKDF2-SHA1, SSID as salt, 4096 rounds),
 * as wpa_passphrase writes it: the apkovl sits on the FAT boot media, which anyone holding the card
 * can read, so the passphrase itself is never stored there.
 */
/**
 * The SSID as hex: wpa_supplicant's quoted strings have no escapes (it reads to the last `"`), so a
 * name holding `"`, `\` or any byte is written in the one form it reads back byte for byte.
 */
export function wpaSupplicantConf(w: { ssid: string; psk: string; country?: string }): string {
  const country = w.country ? `country=${w.country}\n` : '';
  return `${country}network={\n\tssid=${Buffer.from(w.ssid).toString('hex')}\n\tpsk=${wpaPsk(w.psk, w.ssid)}\n}\n`;
}

export function wpaPsk(passphrase: string, ssid: string): string {
  return pbkdf2Sync(passphrase, ssid, 4096, 32, 'sha1').toString('hex');
}
