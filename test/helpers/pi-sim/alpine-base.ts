/**
 * The files Alpine's packages put in a diskless Pi's root before the overlay is unpacked: what
 * `apk add` from the boot repository gives at every boot (initramfs-init). Only what the recipes,
 * lbu and OpenRC read is here; init scripts carry their packages' real `depend()` lines (openrc,
 * openssh, chrony, alpine-baselayout), since the simulated OpenRC resolves `need` from them.
 */

/** OpenRC's own services (openrc package) and Alpine's additions, with the dependencies that matter. */
const OPENRC_SCRIPTS: Record<string, string> = {
  devfs: '', dmesg: '', sysfs: '', fsck: '', root: '', modules: '', sysctl: '', hostname: '', syslog: '',
  'mount-ro': '', killprocs: '', savecache: '', firstboot: '', modloop: 'need dev-mount', 'dev-mount': '',
  mdev: 'provide dev', hwdrivers: 'need dev', swclock: 'provide clock', hwclock: 'provide clock',
  localmount: 'need fsck root\n\tuse lvm modules mtab\n\tafter lvm modules',
  bootmisc: 'need localmount\n\tbefore logger',
  networking: 'need localmount\n\tafter bootmisc hwdrivers modules\n\tprovide net',
  cgroups: 'need sysfs',
};

/** Packages of the base set (the card's boot repository) and the init scripts each one brings. */
export const PACKAGE_SCRIPTS: Record<string, Record<string, string>> = {
  openssh: { sshd: 'use logger dns\n\tneed net\n\tafter firewall' },
  chrony: { chronyd: 'use net dns logger\n\tafter firewall' },
  'wpa_supplicant': { 'wpa_supplicant': 'need localmount\n\tbefore networking' },
};

const script = (name: string, depend: string) =>
  `#!/sbin/openrc-run\n# ${name} (simulated: its effect is modelled by the simulator)\n${depend ? `depend() {\n\t${depend}\n}\n` : ''}`;

/** alpine-conf's lbu.conf as installed. */
export const DEFAULT_LBU_CONF = `# what cipher to use with -e option
DEFAULT_CIPHER=aes-256-cbc

# Uncomment the row below to encrypt config by default
# ENCRYPTION=$DEFAULT_CIPHER

# Uncomment below to override the default media
# LBU_MEDIA=usb

# Set the LBU_BACKUPDIR variable in case you prefer to save the apkovls
# in a normal directory instead of mounting an external medium.
# LBU_BACKUPDIR=/root/config-backups

# Keep backups of the overlay
# BACKUP_LIMIT=3
`;

/** OpenSSH's sshd_config on Alpine (3.19+): drop-ins included first, root by key only. */
export const SSHD_CONFIG = `Include /etc/ssh/sshd_config.d/*.conf
#PermitRootLogin prohibit-password
AuthorizedKeysFile	.ssh/authorized_keys
#PasswordAuthentication yes
Subsystem	sftp	internal-sftp
`;

/** Base files (path -> contents, mode) of alpine-base and friends; always installed. */
export function baseFiles(version: string): Record<string, { data: string; mode: number }> {
  const f: Record<string, { data: string; mode: number }> = {};
  const put = (p: string, data: string, mode = 0o644) => (f[p] = { data, mode });
  put('/etc/os-release', `NAME="Alpine Linux"\nID=alpine\nVERSION_ID=${version}\nPRETTY_NAME="Alpine Linux v${version.split('.').slice(0, 2).join('.')}"\nHOME_URL="https://alpinelinux.org/"\n`);
  put('/etc/alpine-release', `${version}\n`);
  put('/etc/hostname', 'localhost\n');
  put('/etc/hosts', '127.0.0.1\tlocalhost localhost.localdomain\n::1\t\tlocalhost localhost.localdomain\n');
  put('/etc/fstab', '/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0\n/dev/usbdisk\t/media/usb\tvfat\tnoauto\t0 0\n');
  put('/etc/lbu/lbu.conf', DEFAULT_LBU_CONF);
  put('/etc/rc.conf', '# Global OpenRC configuration settings\n#rc_parallel="NO"\n#rc_cgroup_mode="hybrid"\n');
  put('/etc/apk/arch', 'aarch64\n');
  put('/etc/apk/world', 'alpine-base\n');
  put('/etc/profile', 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nfor script in /etc/profile.d/*.sh ; do [ -r "$script" ] && . "$script"; done\n');
  for (const [name, dep] of Object.entries(OPENRC_SCRIPTS)) put(`/etc/init.d/${name}`, script(name, dep), 0o755);
  return f;
}

/** The files a package of the base set adds when installed. */
export function packageFiles(pkg: string): Record<string, { data: string; mode: number }> {
  const f: Record<string, { data: string; mode: number }> = {};
  for (const [name, dep] of Object.entries(PACKAGE_SCRIPTS[pkg] ?? {})) f[`/etc/init.d/${name}`] = { data: script(name, dep), mode: 0o755 };
  if (pkg === 'openssh') f['/etc/ssh/sshd_config'] = { data: SSHD_CONFIG, mode: 0o644 };
  return f;
}

/** Services whose effect the simulator models itself (everything else runs its script). */
export const MODELLED_SERVICES = new Set([...Object.keys(OPENRC_SCRIPTS), ...Object.values(PACKAGE_SCRIPTS).flatMap((s) => Object.keys(s))]);
