import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { SEED_PACKAGES } from './packages.js';
import { DATA_FSTAB_LINES } from './paths.js';
import { BASE_WORLD, apkovlName, overlayEntries, packOverlay } from './apkovl.js';
import { firstBootEntries } from './first-boot.js';
import type { AlpineRelease } from './release.js';
import { patchCmdline } from '../cmdline.js';
import type { Card } from '../disk/card-target.js';
import type { ManifestFile, TarballContents } from '../disk/extract.js';
import type { CardLayout } from '../disk/layout.js';
import type { K0sArtifact } from '../k0s/release.js';
import type { JoinToken } from '../k0s/token.js';

/** The seed's packages, added on first boot: the card's own repository does not have them. */
export const FIRST_BOOT_PACKAGES = [...SEED_PACKAGES];
/**
 * The Pi's SD slot: where lbu and the apk repository point on the first boot. The pi-prep-media
 * service moves them to wherever the card really booted from (a USB adapter or SSD: sda1).
 */
export const BOOT_MEDIA = 'mmcblk0p1';
/** cmdline.txt when a tarball has none (a dry run before the download): Alpine's own. */
const DEFAULT_CMDLINE = 'modules=loop,squashfs,sd-mod,usb-storage quiet console=tty1\n';

/** --tarball FILE, or a release to download (verified, cached). */
export type TarballSource = { path: string; release?: undefined } | { path?: undefined; release: AlpineRelease };

/** What every card of one run shares: built once, whatever the number of cards. */
export interface SharedPlan {
  tarball: TarballSource;
  alpineMirror: string;
  sshKeys: string[];
  wifi?: { ssid: string; psk: string; country?: string };
  join?: { token: JoinToken; k0s: K0sArtifact; cacheDir?: string };
  /** Host-side scratch space (0700): the shared boot files, the data contents, each card's overlay. */
  work: string;
  /** Seconds since the epoch: the overlay's mtimes and the first boot's clock floor. */
  writtenAt: number;
}

/** One card: its target, its layout, its identity. */
export interface CardPlan {
  card: Card;
  layout: CardLayout;
  hostname: string;
  /** Mount points of the card's own partitions, unmounted with the user's consent. */
  unmount: string[];
}

/** Where each part goes in the scratch space: the same paths in the plan and in the run. */
export function scratchPaths(s: SharedPlan, hostname: string) {
  return {
    boot: join(s.work, 'boot'),
    data: join(s.work, 'data'),
    /** The per-card overlay, outside the shared boot tree so no card picks up another's. */
    apkovl: join(s.work, 'cards', hostname, apkovlName(hostname)),
    /** Written last by the shared steps: the scratch space holds what this plan asks for. */
    stamp: join(s.work, 'prepared'),
  };
}

/** The boot files every card gets (Alpine's, with cmdline.txt and usercfg.txt made for k0s). */
export interface SharedBootFiles {
  cmdline: string;
  usercfg: string;
  /** Every file of the shared boot tree with its SHA-256: what the read-back compares. */
  files: ManifestFile[];
  /** Alpine's branch (v3.21) for the overlay's repositories. */
  repoBranch: string;
}

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const entry = (path: string, data: string | Buffer): ManifestFile => ({ path, size: Buffer.byteLength(data), sha256: sha(data) });

/**
 * The shared boot files, from the tarball's contents (undefined: not downloaded yet, in a dry run;
 * Alpine's defaults then stand in). A pure function: the same inputs, the same bytes.
 */
export function sharedBootFiles(s: SharedPlan, contents: TarballContents | undefined): SharedBootFiles {
  const cmdline = withSerialConsole(patchCmdline(contents?.text.get('cmdline.txt') ?? DEFAULT_CMDLINE));
  const usercfg = usercfgText(contents?.text.get('usercfg.txt'));
  const release = (contents?.text.get('.alpine-release') ?? s.tarball.release?.version ?? '').trim();
  const branch = /^\d+\.\d+/.exec(release)?.[0];
  const replaced = new Set(['cmdline.txt', 'usercfg.txt']);
  return {
    cmdline,
    usercfg,
    files: [...(contents?.files ?? []).filter((f) => !replaced.has(f.path)), entry('cmdline.txt', cmdline), entry('usercfg.txt', usercfg)],
    repoBranch: branch ? `v${branch}` : 'latest-stable',
  };
}

/**
 * One card's overlay (<hostname>.apkovl.tar.gz): its identity (host name) plus the shared settings.
 * `writtenAt` is the card's writing time; the check passes the one read from a finished card, so
 * the same card compares equal byte for byte.
 */
export function cardOverlay(s: SharedPlan, hostname: string, repoBranch: string, writtenAt = s.writtenAt): { name: string; data: Buffer; file: ManifestFile } {
  const data = packOverlay(overlayEntries({
    hostname,
    sshKeys: s.sshKeys,
    wifi: s.wifi,
    lbuMedia: BOOT_MEDIA,
    repositories: [`/media/${BOOT_MEDIA}/apks`, `${s.alpineMirror}/${repoBranch}/main`, `${s.alpineMirror}/${repoBranch}/community`],
    world: [...BASE_WORLD, ...(s.wifi ? WIFI_PACKAGES : [])],
    fstab: [...DATA_FSTAB_LINES],
    extra: firstBootEntries({ packages: FIRST_BOOT_PACKAGES, join: s.join !== undefined, notBefore: writtenAt }),
  }), writtenAt);
  const name = apkovlName(hostname);
  return { name, data, file: entry(name, data) };
}

/**
 * Wi-Fi on a diskless Alpine: wpa_supplicant (the daemon, in the boot runlevel) and iw, installed at
 * boot from the card's own apks/ repository. Facts (alpinelinux/aports): scripts/mkimg.base.sh's
 * profile_base, which the rpi profile starts from, puts `network-extras` in `apks` (the image's
 * repository, fetched --recursive); main/network-extras/APKBUILD 2.1 depends on "bridge bonding vlan
 * wpa_supplicant iw ppp-..." and no longer on wireless-tools.
 */
export const WIFI_PACKAGES = ['wpa_supplicant', 'iw'];

/**
 * enable_uart=1 (usercfg.txt) turns the UART on; the kernel logs and gives a login there only with a
 * console= for it. serial0 is the firmware's alias for whichever UART the board wires to the header.
 * It goes before console=tty1, which stays the last one: /dev/console, where OpenRC writes.
 */
export function withSerialConsole(cmdline: string): string {
  const params = cmdline.trim().split(/\s+/);
  if (params.some((p) => /^console=(serial0|ttyS0|ttyAMA0)\b/.test(p))) return cmdline;
  const at = params.findIndex((p) => p.startsWith('console='));
  params.splice(at < 0 ? params.length : at, 0, 'console=serial0,115200');
  return params.join(' ') + '\n';
}

/** usercfg.txt is Alpine's place for config additions (config.txt says so). */
export function usercfgText(existing: string | undefined): string {
  const lines = (existing ?? '').split('\n').filter((x) => x.trim() !== '');
  for (const want of ['# pi-prep: k0s worker', 'arm_64bit=1', 'enable_uart=1']) if (!lines.includes(want)) lines.push(want);
  return lines.join('\n') + '\n';
}

/**
 * Host names for a batch: `{n}` in the pattern becomes 1, 2, 3...; a plain name is one card's.
 * Two cards with one name would be two k0s nodes with one name: refused before anything is written.
 */
export function batchHostnames(given: string[] | undefined, count: number, fresh: () => string): string[] {
  if (!given?.length) {
    const names = new Set<string>();
    while (names.size < count) names.add(fresh());
    return [...names];
  }
  const names = given.length === 1 && count > 1
    ? Array.from({ length: count }, (_, i) => given[0]!.replaceAll('{n}', String(i + 1)))
    : given.map((g, i) => g.replaceAll('{n}', String(i + 1)));
  return names;
}

/** The first name two cards share, if any. */
export function firstClash(names: string[]): string | undefined {
  const seen = new Set<string>();
  for (const n of names.map((x) => x.toLowerCase())) {
    if (seen.has(n)) return n;
    seen.add(n);
  }
  return undefined;
}
