/**
 * A diskless Alpine Pi booting from a real card image (a loop device), modelled from upstream:
 * - initramfs-init (alpinelinux/mkinitfs): / is a fresh tmpfs each boot: the base packages (from
 *   the card's boot repository, or the apk cache on it), then the first *.apkovl.tar.gz found at
 *   the top of a partition (nlplug-findfs) unpacked over it; /root made 0700; Alpine's default
 *   runlevels only without an overlay or with etc/.default_boot_services; hwclock or swclock by
 *   whether the board has an RTC. The boot media stays mounted read-only at /media/<dev>.
 * - OpenRC: runlevels sysinit, boot, default in order; a runlevel link to a missing script is an
 *   error; a `need` on a service that does not exist (or fails) keeps the service down; `use`,
 *   `after` order it; `provide` (net) counts. localmount runs mkmntdirs (Alpine's openrc patch)
 *   then mounts fstab in order; ext4 really is mounted (a loop device at the partition's offset)
 *   and a bind mount is a real bind mount, so what k0s and pi-prep write lands on the card.
 * - Services whose effect is the system's own (networking, sshd, ...) are modelled here; every
 *   other script runs through the openrc-run stand-in; daemons (supervise-daemon or
 *   command_background) run to completion after the runlevels, one at a time.
 * - The boot media directory goes back to the FAT partition when it is remounted read-only (the
 *   mount stand-in) or at a clean shutdown; a power cut loses what was not written back.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildRoot, STANDIN_LOG } from '../fixture-root.js';
import { installHostTool } from './host-tools.js';
import { kernelConfig } from '../k0s-release.js';
import { baseFiles, MODELLED_SERVICES, packageFiles } from './alpine-base.js';
import { APK, APK_DB, APK_FILES, LBU, MEDIA_CHECK, MEDIA_SYNC, MOUNT, OPENRC_RUN, RC_SERVICE, RC_UPDATE, standIn } from './alpine-standins.js';

const MT = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
const FIRMWARE_ARGS = 'coherent_pool=1M 8250.nr_uarts=0 snd_bcm2835.enable_headphones=0 bcm2708_fb.fbwidth=0 bcm2708_fb.fbheight=0 smsc95xx.macaddr=DC:A6:32:00:00:01 vc_mem.mem_base=0x3ec00000 vc_mem.mem_size=0x40000000';
const LEVELS = ['sysinit', 'boot', 'default'] as const;
/** Top-level folders of the boot media the simulator keeps on the card only (big, never written). */
const CARD_ONLY = new Set(['apks', 'boot', 'overlays']);

export interface BootReport {
  n: number;
  /** Stand-in calls of this boot (daemons included), argv with the name first. */
  calls: string[][];
  /** What a real boot would complain about: dangling runlevel links, unmet needs, failed mounts. */
  errors: string[];
  /** Packages of /etc/apk/world the boot could not install (not on the card, not in its cache). */
  missingPackages: string[];
  started: string[];
  /** The power was cut during this boot (PI_SIM_CUT_AT). */
  cut: boolean;
}

export interface SimAlpineOptions {
  /** The whole card (an image file). */
  image: string;
  /** How the Pi sees it: the SD slot (mmcblk0p1) or a USB adapter or SSD (sda1). */
  bus?: 'sd' | 'usb';
  board?: 'pi4' | 'pi5';
}

interface Partition {
  number: number;
  start: number;
  size: number;
  type?: string;
  label?: string;
}


/** The node's programs (busybox, stand-ins, host tools): built once per process, copied at each boot. */
let shared: string | undefined;
function template(): string {
  if (shared) return shared;
  const t = buildRoot({
    arch: 'arm64',
    init: 'openrc',
    standIns: {
      '/sbin/apk': APK, '/sbin/lbu': LBU, '/sbin/rc-update': RC_UPDATE, '/sbin/rc-service': RC_SERVICE,
      '/sbin/openrc-run': OPENRC_RUN, '/bin/mount': MOUNT,
      '/.sim/bin/media-sync': MEDIA_SYNC, '/.sim/bin/media-check': MEDIA_CHECK,
      // The world a job sees (world.sh makes its shell use these instead of busybox's applets).
      '/.sim/bin/ip': standIn('[ "$1" = route ] && [ -e /.sim/network-up ] && echo "default via 192.0.2.1 dev eth0"; exit 0'),
      '/.sim/bin/nc': standIn('[ ! -e /.sim/controller-down ]'),
      // A node still waiting after 30 waits never gets there: stop it and say so.
      '/.sim/bin/sleep': standIn('n=$(( $(cat /.sim/sleeps 2>/dev/null || echo 0) + 1 )); echo $n > /.sim/sleeps; [ -f /.sim/on-sleep ] && . /.sim/on-sleep; [ $n -gt 30 ] && { : > /.sim/stuck; kill -9 0; }; exit 0'),
      '/.sim/world.sh': 'ip() { /.sim/bin/ip "$@"; }\nnc() { /.sim/bin/nc "$@"; }\nsleep() { /.sim/bin/sleep "$@"; }\nmount() { /bin/mount "$@"; }\n',
    },
  });
  for (const [host, dest] of [['/usr/sbin/sfdisk', '/sbin/sfdisk'], ['/usr/sbin/mke2fs', '/sbin/mkfs.ext4'], ['/usr/sbin/blkid', '/sbin/blkid'], ['/usr/bin/mtools', '/usr/bin/mtools']] as const) {
    installHostTool(t, host, dest);
  }
  for (const tool of ['mcopy', 'mdel', 'mmd', 'mdir']) symlinkSync('mtools', join(t, 'usr/bin', tool));
  // mtools converts long FAT names through iconv: its codepage modules come along.
  const gconv = '/usr/lib/x86_64-linux-gnu/gconv';
  for (const f of ['gconv-modules', 'gconv-modules.d', 'IBM850.so', 'IBM437.so']) {
    if (existsSync(join(gconv, f))) cpSync(join(gconv, f), join(t, gconv, f), { recursive: true });
  }
  if (existsSync('/etc/mke2fs.conf')) cpSync('/etc/mke2fs.conf', join(t, 'etc/mke2fs.conf'));
  shared = t;
  process.on('exit', () => rmSync(t, { recursive: true, force: true }));
  return t;
}

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');
const lstatSafe = (p: string) => { try { return lstatSync(p); } catch { return undefined; } };

export class SimAlpinePi {
  readonly root: string;
  readonly loop: string;
  /** The card as the Pi names it. */
  readonly disk: string;
  /** A default route (and a package mirror) is there. */
  network = true;
  /** The controller in the join token answers. */
  controller = true;
  /** MD5s of the token files the controller accepts (all, when undefined): an old token after a reset is refused. */
  acceptedTokens?: string[];
  /** Shell run by the sleep stand-in each time the node waits (N = how many waits so far): the world changing at a held point. */
  onSleep = '';
  readonly boots: BootReport[] = [];
  private readonly template: string;
  private readonly work: string;
  private hostMounts: string[] = [];
  private partLoops: string[] = [];
  private media?: { dev: string; dir: string; offset: number };
  /** This boot's kernel command line (firmware's parameters left out). */
  private cmdline = '';

  constructor(private readonly o: SimAlpineOptions) {
    this.work = mkdtempSync(join(tmpdir(), 'pi-prep-sim-'));
    this.root = join(this.work, 'root');
    this.template = template();
    this.loop = execFileSync('losetup', ['-f', '--show', o.image]).toString().trim();
    this.disk = o.bus === 'usb' ? '/dev/sda' : '/dev/mmcblk0';
  }

  /** Partition n's device name as the Pi sees it. */
  part(n: number): string {
    return this.disk === '/dev/sda' ? `${this.disk}${n}` : `${this.disk}p${n}`;
  }

  /** Power on: a fresh RAM root, the overlay, the runlevels, then the daemons. */
  boot(opts: { cutAt?: number } = {}): BootReport {
    this.unmountAll();
    const report: BootReport = { n: this.boots.length + 1, calls: [], errors: [], missingPackages: [], started: [], cut: false };
    this.boots.push(report);
    // Never remove a root that still has the card's filesystem mounted inside: that would erase the card.
    const left = readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.split(' ')[1]?.startsWith(this.root + '/'));
    if (left.length) throw new Error(`simulator: still mounted under ${this.root}: ${left.join('; ')}`);
    rmSync(this.root, { recursive: true, force: true });
    cpSync(this.template, this.root, { recursive: true, verbatimSymlinks: true });
    const p = (x: string) => join(this.root, x);
    const minor = Number(/loop(\d+)$/.exec(this.loop)![1]);
    execFileSync('mknod', [p(`dev/${posix.basename(this.disk)}`), 'b', '7', String(minor)]);
    this.world();

    // nlplug-findfs: the first FAT partition with an apkovl on top is the boot media (else the first FAT one).
    this.media = undefined;
    const parts = this.partitions();
    let ovlName: string | undefined;
    let bootPart: Partition | undefined;
    for (const part of parts.filter((x) => x.type === 'vfat')) {
      const ovl = this.mdir(part, '::/').find((f) => /^::\/[^/]+\.apkovl\.tar\.gz/.test(f));
      if (ovl || !bootPart) bootPart = part;
      if (ovl) { ovlName = ovl.slice(3); break; }
    }
    const repo = new Set<string>();
    if (bootPart) {
      const dev = posix.basename(this.part(bootPart.number));
      this.media = { dev, dir: `/media/${dev}`, offset: bootPart.start * 512 };
      this.mountMedia(bootPart);
      for (const f of this.mdir(bootPart, '::/apks/aarch64/')) {
        const m = /\/([^/]+)-\d[^-]*-r\d+\.apk$/.exec(f);
        if (m) repo.add(m[1]!);
      }
    }
    writeFileSync(p('.sim/boot-repo'), [...repo].join('\n') + '\n');

    // The overlay, then the packages of its world (apk add --overlay-from-stdin leaves the overlay's files alone).
    const files = { ...baseFiles('3.21.2') };
    for (const [path, f] of Object.entries(files)) this.put(path, f);
    const ovlPath = ovlName && this.media ? p(`${this.media.dir.slice(1)}/${ovlName}`) : undefined;
    const ovlFiles = new Set<string>();
    if (ovlPath) {
      for (const f of execFileSync('tar', ['-tzf', ovlPath]).toString().split('\n').filter(Boolean)) ovlFiles.add(`/${f.replace(/\/$/, '')}`);
      execFileSync('tar', ['-xzpf', ovlPath, '--numeric-owner', '-C', this.root]);
      if (existsSync(p('root'))) chmodSync(p('root'), 0o700);
    }
    const world = [...new Set(['alpine-base', ...readFileSync(p('etc/apk/world'), 'utf8').split('\n').map((x) => x.trim()).filter(Boolean)])];
    // apk's cache: where the overlay's /etc/apk/cache link points (setup-apkcache, or pi-prep-media's link).
    const cacheLink = lstatSafe(p('etc/apk/cache'))?.isSymbolicLink() ? readlinkSync(p('etc/apk/cache')) : undefined;
    const cache = cacheLink ? p(cacheLink) : undefined;
    const installed: string[] = [];
    for (const pkg of world) {
      const cached = cache && existsSync(cache) && readdirSync(cache).some((f) => f.startsWith(`${pkg}-`) && f.endsWith('.apk'));
      if (repo.has(pkg) || pkg === 'alpine-base' || cached) {
        installed.push(pkg);
        for (const [path, f] of Object.entries(packageFiles(pkg))) {
          files[path] = f;
          if (!ovlFiles.has(path)) this.put(path, f);
        }
      } else report.missingPackages.push(pkg);
    }
    for (const l of [...LEVELS, 'shutdown']) mkdirSync(p(`etc/runlevels/${l}`), { recursive: true });
    mkdirSync(p('lib/apk/db'), { recursive: true });
    writeFileSync(p(APK_DB), installed.join('\n') + '\n');
    writeFileSync(p(APK_FILES), Object.entries(files).filter(([k]) => k.startsWith('/etc/')).map(([k, f]) => `${k.slice(1)}\tF\t${md5(f.data)}\t${f.mode.toString(8)}`).join('\n') + '\n');
    if (!ovlPath || existsSync(p('etc/.default_boot_services'))) {
      for (const s of ['devfs', 'dmesg', 'mdev', 'hwdrivers', 'modloop']) this.rcAdd(s, 'sysinit');
      for (const s of ['modules', 'sysctl', 'hostname', 'bootmisc', 'syslog']) this.rcAdd(s, 'boot');
      for (const s of ['mount-ro', 'killprocs', 'savecache']) this.rcAdd(s, 'shutdown');
      this.rcAdd('firstboot', 'default');
      rmSync(p('etc/.default_boot_services'), { force: true });
    }
    this.rcAdd(this.o.board === 'pi5' ? 'hwclock' : 'swclock', 'boot');

    // The kernel: its command line from the card, the partitions it found.
    const cmdline = this.media ? (readFileSync(p(`${this.media.dir.slice(1)}/cmdline.txt`), 'utf8').split('\n')[0] ?? '') : '';
    const major = this.disk === '/dev/sda' ? 8 : 179;
    const name = posix.basename(this.disk);
    this.proc({
      'proc/cmdline': `${FIRMWARE_ARGS} ${cmdline}\n`,
      'proc/partitions': `major minor  #blocks  name\n\n ${major}        0   ${this.diskBlocks()} ${name}\n` +
        parts.map((x) => ` ${major}        ${x.number}   ${x.size / 2} ${posix.basename(this.part(x.number))}`).join('\n') + '\n',
      'proc/mounts': [
        'tmpfs / tmpfs rw,relatime,mode=755 0 0',
        'proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0',
        'sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0',
        ...(this.media ? [`/dev/${this.media.dev} ${this.media.dir} vfat ro,relatime,fmask=0022,dmask=0022,codepage=437,iocharset=ascii,shortname=mixed,errors=remount-ro 0 0`] : []),
        '',
      ].join('\n'),
      'proc/sys/kernel/osrelease': '6.6.71-0-rpi\n',
      'proc/config.gz': gzipSync(kernelConfig()),
      'proc/meminfo': 'MemTotal:        3881424 kB\n',
      'proc/device-tree/model': this.o.board === 'pi5' ? 'Raspberry Pi 5 Model B Rev 1.0\0' : 'Raspberry Pi 4 Model B Rev 1.4\0',
    });
    this.cmdline = cmdline;

    this.openrc(report, opts.cutAt);
    if (!report.cut) this.runJobs(opts.cutAt, report);
    report.calls = this.calls();
    report.started = existsSync(p('run/openrc/started')) ? readdirSync(p('run/openrc/started')).sort() : [];
    return report;
  }

  /**
   * Run the daemons that services queued (to completion, one at a time), as pi-prep's rc-service
   * calls leave them too. A supervised daemon that failed is tried again at the next call
   * (supervise-daemon respawns it): a token fixed meanwhile is picked up.
   */
  runJobs(cutAt?: number, report = this.boots.at(-1)!): void {
    const jobs = join(this.root, '.sim/jobs');
    const respawn = join(this.root, '.sim/respawn');
    if (existsSync(respawn)) {
      writeFileSync(jobs, readFileSync(respawn, 'utf8') + (existsSync(jobs) ? readFileSync(jobs, 'utf8') : ''));
      rmSync(respawn);
    }
    for (;;) {
      const lines = existsSync(jobs) ? readFileSync(jobs, 'utf8').split('\n').filter(Boolean) : [];
      if (!lines.length) return;
      writeFileSync(jobs, lines.slice(1).map((l) => l + '\n').join(''));
      const [svc, command, args, out, err, kind] = lines[0]!.split('\t') as [string, string, string, string, string, string];
      // A shell job of the node's own (/etc) is run in a shell that sees the simulated world.
      const ownScript = command.startsWith('/etc/');
      const sh = ownScript ? `. /.sim/world.sh; . ${command} ${args} >>${out} 2>>${err}` : `${command} ${args} >>${out} 2>>${err}`;
      // Its own session, so a power cut (kill -9 0 in a stand-in) ends just this job's processes.
      const r = spawnSync('setsid', [...this.inNode(), '/bin/sh', '-c', sh], {
        env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', RC_SVCNAME: svc, ...(cutAt ? { PI_SIM_CUT_AT: String(cutAt) } : {}) },
        encoding: 'utf8',
      });
      if (existsSync(join(this.root, '.sim/stuck'))) {
        report.errors.push(`${svc}: still waiting after 30 tries (see /var/log/pi-prep-first-boot.log on the node)`);
        return;
      }
      if (existsSync(join(this.root, '.sim/cut'))) {
        report.cut = true;
        return;
      }
      if (r.status === 0) {
        mkdirSync(join(this.root, 'run/sim-daemon'), { recursive: true });
        writeFileSync(join(this.root, 'run/sim-daemon', svc), '');
      } else {
        report.errors.push(`${svc}: ${command} exited ${r.status ?? r.signal}`);
        if (kind === 'supervised') writeFileSync(respawn, lines[0] + '\n', { flag: 'a' });
      }
    }
  }

  /** Clean shutdown (the shutdown runlevel): daemons stop, the boot media is written back, filesystems unmounted. */
  shutdown(): void {
    const started = join(this.root, 'run/openrc/started');
    for (const svc of existsSync(started) ? readdirSync(started) : []) {
      if (!MODELLED_SERVICES.has(svc)) this.chroot(['/sbin/openrc-run', `/etc/init.d/${svc}`, 'stop']);
    }
    if (this.media && this.isRw(this.media.dir)) this.chroot(['/bin/mount', '-o', 'remount,ro', this.media.dir]);
    this.unmountAll();
  }

  /** Power cut: nothing more is written; what RAM held is gone at the next boot. */
  powerCut(): void {
    this.unmountAll();
  }

  reboot(opts: { cutAt?: number } = {}): BootReport {
    this.shutdown();
    return this.boot(opts);
  }

  /** Run a command in the node (as an admin at its console would). */
  chroot(argv: string[], env: Record<string, string> = {}): { status: number; stdout: string; stderr: string } {
    const r = spawnSync('setsid', [...this.inNode(), ...argv], { env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...env }, encoding: 'utf8' });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /**
   * How a process runs in the node (after `setsid`): its own session (a power cut ends just it),
   * its own UTS namespace with the node's hostname (what the hostname service sets), chrooted.
   */
  private inNode(): string[] {
    return ['--wait', 'unshare', '--uts', '--', 'chroot', this.root, '/bin/sh', '-c', 'hostname -F /etc/hostname 2>/dev/null; exec "$@"', 'node'];
  }

  /** Stand-in calls so far in this boot. */
  calls(): string[][] {
    const f = join(this.root, STANDIN_LOG);
    return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t')) : [];
  }

  /** Writes to the boot media while it was mounted read-only (each would have failed on a Pi). */
  violations(): string[] {
    const f = join(this.root, '.sim/violations');
    return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
  }

  /** The k0s worker daemon runs (its service started, the daemon up). */
  workerRunning(): boolean {
    // lstat: the started marks are symlinks into the node's /etc/init.d, not this machine's.
    const p = (x: string) => lstatSafe(join(this.root, x)) !== undefined;
    return p('run/openrc/started/k0sworker') && p('run/sim-daemon/k0sworker') && p('run/k0s/status');
  }

  /**
   * Whether root can log in over SSH with this key, by sshd's rules: sshd started; the first
   * PermitRootLogin (drop-ins are included first) allows keys; StrictModes: /root, /root/.ssh and
   * authorized_keys owned by root and not writable by group or others; the key listed.
   */
  sshLogin(publicKey: string): string | true {
    const p = (x: string) => join(this.root, x);
    if (!lstatSafe(p('run/openrc/started/sshd'))) return 'sshd is not running';
    const conf = readFileSync(p('etc/ssh/sshd_config'), 'utf8');
    const dropins = existsSync(p('etc/ssh/sshd_config.d')) ? readdirSync(p('etc/ssh/sshd_config.d')).filter((f) => f.endsWith('.conf')).sort().map((f) => readFileSync(p(`etc/ssh/sshd_config.d/${f}`), 'utf8')) : [];
    const lines = conf.split('\n').flatMap((l) => (/^Include /.test(l) ? dropins.join('\n').split('\n') : [l]));
    const permit = lines.map((l) => /^\s*PermitRootLogin\s+(\S+)/i.exec(l)?.[1]).find(Boolean) ?? 'prohibit-password';
    if (!['yes', 'prohibit-password', 'without-password'].includes(permit)) return `PermitRootLogin ${permit}`;
    for (const path of ['root', 'root/.ssh', 'root/.ssh/authorized_keys']) {
      if (!existsSync(p(path))) return `no /${path}`;
      const st = statSync(p(path));
      if (st.uid !== 0) return `/${path} is owned by uid ${st.uid}`;
      if (st.mode & 0o022) return `/${path} is mode ${(st.mode & 0o777).toString(8)} (StrictModes)`;
    }
    const keys = readFileSync(p('root/.ssh/authorized_keys'), 'utf8').split('\n').map((l) => l.trim());
    return keys.includes(publicKey.trim()) || `the key is not in /root/.ssh/authorized_keys`;
  }

  destroy(): void {
    if (process.env.PI_SIM_KEEP) return console.error(`simulator kept: ${this.work} on ${this.loop}`);
    this.unmountAll();
    spawnSync('losetup', ['-d', this.loop]);
    rmSync(this.work, { recursive: true, force: true });
  }

  // --- the world --------------------------------------------------------------------------------

  private world(): void {
    const s = (x: string) => join(this.root, '.sim', x);
    mkdirSync(join(this.root, '.sim'), { recursive: true });
    for (const [f, on] of [['network-up', this.network], ['controller-down', !this.controller]] as const) {
      if (on) writeFileSync(s(f), ''); else rmSync(s(f), { force: true });
    }
    if (this.onSleep) writeFileSync(s('on-sleep'), this.onSleep);
    if (this.acceptedTokens) writeFileSync(s('accepted-tokens'), this.acceptedTokens.join('\n') + '\n');
    for (const f of ['jobs', 'violations']) writeFileSync(s(f), '');
  }

  private proc(files: Record<string, string | Buffer>): void {
    for (const [path, data] of Object.entries(files)) {
      mkdirSync(dirname(join(this.root, path)), { recursive: true });
      writeFileSync(join(this.root, path), data);
    }
  }

  private put(path: string, f: { data: string; mode: number }): void {
    const to = join(this.root, path);
    mkdirSync(dirname(to), { recursive: true });
    rmSync(to, { force: true });
    writeFileSync(to, f.data);
    chmodSync(to, f.mode);
  }

  private rcAdd(svc: string, level: string): void {
    const dir = join(this.root, 'etc/runlevels', level);
    mkdirSync(dir, { recursive: true });
    rmSync(join(dir, svc), { force: true });
    symlinkSync(`/etc/init.d/${svc}`, join(dir, svc));
  }

  private diskBlocks(): number {
    return Number(execFileSync('blockdev', ['--getsize64', this.loop]).toString().trim()) / 1024;
  }

  private partitions(): Partition[] {
    const r = spawnSync('sfdisk', ['--json', this.loop], { encoding: 'utf8' });
    if (r.status !== 0) return [];
    const t = JSON.parse(r.stdout) as { partitiontable: { partitions?: { node: string; start: number; size: number }[] } };
    return (t.partitiontable.partitions ?? []).map((x) => {
      const sig = spawnSync('blkid', ['-p', '-O', String(x.start * 512), '-o', 'export', this.loop], { encoding: 'utf8' }).stdout;
      const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(sig)?.[1];
      return { number: Number(/(\d+)$/.exec(x.node)![1]), start: x.start, size: x.size, type: get('TYPE'), label: get('LABEL') };
    });
  }

  private mdir(part: Partition, dir: string): string[] {
    const r = spawnSync('mdir', ['-b', '-i', `${this.loop}@@${part.start * 512}`, dir], { env: MT, encoding: 'utf8' });
    return r.status === 0 ? r.stdout.split('\n').filter(Boolean) : [];
  }

  /** The boot media's files as the Pi sees them (what the simulator keeps on the card only is left there). */
  private mountMedia(part: Partition): void {
    const m = this.media!;
    const dir = join(this.root, m.dir);
    mkdirSync(dir, { recursive: true });
    const img = `${this.loop}@@${m.offset}`;
    const top = this.mdir(part, '::/').filter((f) => !CARD_ONLY.has(f.slice(3).replace(/\/$/, '')));
    const files = top.filter((f) => !f.endsWith('/'));
    const dirs = top.filter((f) => f.endsWith('/'));
    const quiet = { env: MT, stdio: ['ignore', 'pipe', 'pipe'] as ('ignore' | 'pipe')[] };
    if (files.length) execFileSync('mcopy', ['-n', '-p', '-i', img, ...files, dir + '/'], quiet);
    for (const d of dirs) execFileSync('mcopy', ['-s', '-n', '-p', '-i', img, d.replace(/\/$/, ''), dir + '/'], quiet);
    const manifest: string[] = [];
    const walk = (rel: string) => {
      for (const e of readdirSync(join(dir, rel)).sort()) {
        const r = rel ? `${rel}/${e}` : e;
        if (statSync(join(dir, r)).isDirectory()) walk(r);
        else manifest.push(`${r} ${md5(readFileSync(join(dir, r)))}`);
      }
    };
    walk('');
    writeFileSync(join(this.root, '.sim/media.manifest'), manifest.sort().join('\n') + (manifest.length ? '\n' : ''));
    writeFileSync(join(this.root, '.sim/media.conf'), `DIR=${m.dir}\nDEV=${this.disk}\nOFFSET=${m.offset}\n`);
  }

  private isRw(dir: string): boolean {
    const mounts = readFileSync(join(this.root, 'proc/mounts'), 'utf8');
    return mounts.split('\n').some((l) => l.split(' ')[1] === dir && l.split(' ')[3]?.startsWith('rw'));
  }

  // --- OpenRC -----------------------------------------------------------------------------------

  private depends(svc: string): Record<'need' | 'use' | 'after' | 'before' | 'provide', string[]> {
    const d = { need: [] as string[], use: [] as string[], after: [] as string[], before: [] as string[], provide: [] as string[] };
    const f = join(this.root, 'etc/init.d', svc);
    if (!existsSync(f)) return d;
    const body = /depend\(\)\s*\{([\s\S]*?)\n\}/.exec(readFileSync(f, 'utf8'))?.[1] ?? '';
    for (const line of body.split('\n')) {
      const [k, ...v] = line.trim().split(/\s+/);
      if (k && k in d) d[k as keyof typeof d].push(...v);
    }
    return d;
  }

  private openrc(report: BootReport, cutAt?: number): void {
    const started = new Set<string>();
    const failed = new Set<string>();
    const scripts = readdirSync(join(this.root, 'etc/init.d'));
    const providers = (v: string) => scripts.filter((s) => this.depends(s).provide.includes(v));
    const start = (svc: string, level: string[], chain: string[] = []): boolean => {
      if (started.has(svc)) return true;
      if (failed.has(svc) || chain.includes(svc)) return !failed.has(svc);
      if (!existsSync(join(this.root, 'etc/init.d', svc))) return false;
      const d = this.depends(svc);
      for (const n of d.need) {
        const by = existsSync(join(this.root, 'etc/init.d', n)) ? [n] : providers(n);
        if (!by.length) { report.errors.push(`${svc} needs ${n}, which does not exist`); failed.add(svc); return false; }
        if (!by.some((b) => start(b, level, [...chain, svc]))) { report.errors.push(`${svc} needs ${n}, which did not start`); failed.add(svc); return false; }
      }
      for (const u of [...d.use, ...d.after]) if (level.includes(u)) start(u, level, [...chain, svc]);
      for (const other of level) if (other !== svc && !started.has(other) && this.depends(other).before.includes(svc)) start(other, level, [...chain, svc]);
      const ok = MODELLED_SERVICES.has(svc) ? this.modelled(svc, report) : this.runScript(svc, cutAt);
      if (existsSync(join(this.root, '.sim/cut'))) { report.cut = true; return false; }
      if (!ok) { report.errors.push(`${svc} failed to start`); failed.add(svc); return false; }
      started.add(svc);
      mkdirSync(join(this.root, 'run/openrc/started'), { recursive: true });
      rmSync(join(this.root, 'run/openrc/started', svc), { force: true });
      symlinkSync(`/etc/init.d/${svc}`, join(this.root, 'run/openrc/started', svc));
      return true;
    };
    for (const lvl of LEVELS) {
      const dir = join(this.root, 'etc/runlevels', lvl);
      const names = readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
      for (const n of names) {
        const link = join(dir, n);
        if (lstatSync(link).isSymbolicLink()) {
          const target = readlinkSync(link);
          if (!existsSync(join(this.root, target.startsWith('/') ? target : posix.join(`/etc/runlevels/${lvl}`, target)))) {
            report.errors.push(`dangling runlevel link /etc/runlevels/${lvl}/${n} -> ${target}`);
            continue;
          }
        }
        start(n, names);
        if (report.cut) return;
      }
    }
  }

  private runScript(svc: string, cutAt?: number): boolean {
    const r = spawnSync('setsid', [...this.inNode(), '/sbin/openrc-run', `/etc/init.d/${svc}`, 'start'], {
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...(cutAt ? { PI_SIM_CUT_AT: String(cutAt) } : {}) },
      encoding: 'utf8',
    });
    return r.status === 0;
  }

  /** What the system's own services do, as far as a k0s worker depends on it. */
  private modelled(svc: string, report: BootReport): boolean {
    const p = (x: string) => join(this.root, x);
    if (svc === 'cgroups') {
      const rc = readFileSync(p('etc/rc.conf'), 'utf8');
      const unified = /^\s*rc_cgroup_mode=["']?unified["']?\s*$/m.test(rc);
      const params = this.cmdline.split(/\s+/);
      const memory = params.lastIndexOf('cgroup_enable=memory') > params.lastIndexOf('cgroup_disable=memory');
      const ctl = `cpuset cpu io ${memory ? 'memory ' : ''}hugetlb pids rdma\n`;
      if (unified) {
        rmSync(p('proc/cgroups'), { force: true });
        this.proc({ 'sys/fs/cgroup/cgroup.controllers': ctl });
      } else {
        this.proc({ 'sys/fs/cgroup/unified/cgroup.controllers': '', 'proc/cgroups': `#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t1\t1\t1\ncpu\t2\t1\t1\nmemory\t3\t1\t${memory ? 1 : 0}\npids\t4\t1\t1\n` });
      }
      return true;
    }
    if (svc === 'localmount') return this.localmount(report);
    return true;
  }

  /** Alpine's localmount: mkmntdirs (every fstab mount point), then `mount -a` in fstab order. */
  private localmount(report: BootReport): boolean {
    const p = (x: string) => join(this.root, x);
    const fstab = existsSync(p('etc/fstab')) ? readFileSync(p('etc/fstab'), 'utf8') : '';
    const entries = fstab.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => l.split(/\s+/));
    for (const e of entries) if (e[1]?.startsWith('/')) mkdirSync(p(e[1]), { recursive: true });
    const parts = this.partitions();
    const mounts: string[] = [];
    let ok = true;
    for (const [spec, dir, type, options = 'defaults'] of entries) {
      if (!spec || !dir || !type || options.split(',').includes('noauto') || dir === '/' || type === 'swap' || type === 'tmpfs') continue;
      if (options.split(',').includes('bind')) {
        const from = mounts.map((m) => m.split(' ')).find((m) => spec === m[1] || spec.startsWith(`${m[1]}/`));
        if (!existsSync(p(spec)) || !statSync(p(spec)).isDirectory()) { report.errors.push(`localmount: mount ${spec} on ${dir} failed: No such file or directory`); ok = false; continue; }
        execFileSync('mount', ['--bind', p(spec), p(dir)]);
        this.hostMounts.push(p(dir));
        mounts.push(`${from?.[0] ?? spec} ${dir} ${from?.[2] ?? 'none'} rw,noatime 0 0`);
        continue;
      }
      const part = spec.startsWith('LABEL=') ? parts.find((x) => x.label === spec.slice(6))
        : parts.find((x) => this.part(x.number) === spec);
      if (!part) { report.errors.push(`localmount: ${spec} not found`); ok = false; continue; }
      if (type !== 'ext4' || part.type !== 'ext4') { report.errors.push(`localmount: cannot mount ${spec} (${part.type}) as ${type} here`); ok = false; continue; }
      const dev = execFileSync('losetup', ['-f', '--show', '-o', String(part.start * 512), '--sizelimit', String(part.size * 512), this.loop]).toString().trim();
      this.partLoops.push(dev);
      execFileSync('mount', ['-t', 'ext4', '-o', 'noatime', dev, p(dir)]);
      this.hostMounts.push(p(dir));
      mounts.push(`/dev/${posix.basename(this.part(part.number))} ${dir} ext4 rw,noatime 0 0`);
    }
    writeFileSync(p('proc/mounts'), readFileSync(p('proc/mounts'), 'utf8') + mounts.map((m) => m + '\n').join(''));
    return ok;
  }

  private unmountAll(): void {
    for (const m of this.hostMounts.reverse()) spawnSync('umount', [m]).status === 0 || spawnSync('umount', ['-l', m]);
    this.hostMounts = [];
    for (const l of this.partLoops) spawnSync('losetup', ['-d', l]);
    this.partLoops = [];
    // What the node wrote through the card's device (the boot media's write-back) sits in that
    // device's page cache while anything still holds it (a lazily unmounted partition): flush it,
    // so tests that read the image file see the card as the node left it.
    spawnSync('blockdev', ['--flushbufs', this.loop]);
  }
}
