import { SEED_PACKAGES } from '../src/steps/alpine/apk.js';
import { CARD_STATUS_FILE, DATA_DIR, DATA_FSTAB_LINES, K0S_OPENRC_LOGS } from '../src/steps/alpine/paths.js';
import { mkdir, readdir, rm, writeFile, copyFile, chmod } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { TaskFailedError } from '../src/core/errors.js';
import { todo, type Recipe, type Task } from '../src/core/task.js';
import { patchCmdline } from '../src/steps/cmdline.js';
import { MTOOLS_ENV, expectedPartitions, mcopyArgv, mkfsExt4Argv, mkfsVfatArgv, parseSfdiskDump, sfdiskArgv, zeroArgv } from '../src/steps/disk/card-tools.js';
import { prepareImage, type Card } from '../src/steps/disk/card-target.js';
import { readTarball, type ManifestFile, type TarballContents } from '../src/steps/disk/extract.js';
import { DATA_LABEL, sfdiskScript, type CardLayout } from '../src/steps/disk/layout.js';
import { formatSize } from '../src/steps/disk/size.js';
import { fsckBoth, verifyBootFiles } from '../src/steps/disk/verify.js';
import { BASE_WORLD, apkovlName, overlayEntries, packOverlay } from '../src/steps/alpine/apkovl.js';
import { firstBootEntries } from '../src/steps/alpine/first-boot.js';
import { fetchAlpine, type AlpineRelease } from '../src/steps/alpine/release.js';
import { fetchK0s, type K0sArtifact } from '../src/steps/k0s/release.js';
import type { JoinToken } from '../src/steps/k0s/token.js';

/** The seed's packages, added on first boot: the card's own repository does not have them. */
export const FIRST_BOOT_PACKAGES = [...SEED_PACKAGES];
/**
 * The Pi's SD slot: where lbu and the apk repository point on the first boot. The pi-prep-media
 * service moves them to wherever the card really booted from (a USB adapter or SSD: sda1).
 */
export const BOOT_MEDIA = 'mmcblk0p1';

export interface AlpineSdOptions {
  card: Card;
  layout: CardLayout;
  /** --tarball FILE, or a release to download (verified, cached). */
  tarball: { path: string; release?: undefined } | { path?: undefined; release: AlpineRelease };
  alpineMirror: string;
  hostname: string;
  sshKeys: string[];
  wifi?: { ssid: string; psk: string; country?: string };
  join?: { token: JoinToken; k0s: K0sArtifact; cacheDir?: string };
  /** Mount points of the card's own partitions, unmounted with the user's consent. */
  unmount: string[];
  /** Host-side scratch space (0700): the boot files and the data partition's contents. */
  work: string;
  /** Re-check the target right before the first write (it may have changed meanwhile). */
  recheck: () => Promise<void>;
  /** The card's writing time (seconds): the first boot waits for a clock at least this late. */
  notBefore?: number;
}

/** What the tasks hand on to each other. */
interface Job {
  tarballPath?: string;
  contents?: TarballContents;
  /** Every file that must read back from the boot partition, with its SHA-256. */
  bootFiles: ManifestFile[];
}

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * An Alpine SD card (or image) that boots a Pi into a joined k0s worker, with no keyboard:
 *   1. get the alpine-rpi tarball (verified) and read it defensively
 *   2. prepare the boot files: cgroup flags in cmdline.txt, usercfg.txt, <host>.apkovl.tar.gz
 *   3. prepare the data partition's contents: k0s and the join token (0600)
 *   4. erase the old partition table first, so an interrupted run leaves no half-valid card
 *   5. FAT32 boot filesystem with the files; ext4 data filesystem for /var/lib/k0s
 *   6. read everything back and fsck both filesystems
 *   7. write the partition table last
 */
export function alpineSdRecipe(o: AlpineSdOptions): Recipe {
  const job: Job = { bootFiles: [] };
  const { card, layout: l } = o;
  const path = card.path;
  const boot = join(o.work, 'boot');
  const data = join(o.work, 'data');
  const always = (why: string) => async () => todo(why);

  const tasks: Task[] = [
    {
      id: 'alpine-tarball',
      title: `Alpine tarball read defensively (${o.tarball.path ?? `${o.tarball.release.file}, SHA-256 ${o.tarball.release.sha256.slice(0, 12)}…`})`,
      check: always('the card gets its files from this tarball'),
      async apply(ctx) {
        let tarball = o.tarball.path;
        if (o.tarball.release) {
          const r = o.tarball.release;
          ctx.host(`download ${r.url} (or use the cached copy) and check its SHA-256 (${r.sha256.slice(0, 12)}…)`);
          if (ctx.dryRun) return;
          tarball = await fetchAlpine(ctx.local, r, ctx.log, o.join?.cacheDir);
        }
        ctx.host(`read ${tarball}: only plain files and directories with names FAT can hold${ctx.dryRun ? '' : `; extract to ${boot}`}`);
        // A dry run reads the tarball too (it changes nothing), so a hostile one is refused up front.
        job.contents = await readTarball(tarball!, ctx.dryRun ? undefined : boot, ctx.log);
        job.tarballPath = tarball;
        const need = job.contents.bytes * 1.05 + 4 * 1024 * 1024;
        if (need > l.boot.bytes) throw new TaskFailedError(`the tarball holds ${formatSize(job.contents.bytes)}, more than the ${formatSize(l.boot.bytes)} boot partition: use a larger --boot-size`);
        ctx.log(`${job.contents.files.length} files, ${formatSize(job.contents.bytes)}: no links, device nodes or unsafe names`);
      },
    },
    {
      id: 'boot-files',
      title: `Boot files: cgroup flags in cmdline.txt, usercfg.txt, ${apkovlName(o.hostname)}`,
      check: always(`headless first boot as ${o.hostname}`),
      async apply(ctx) {
        const c = job.contents;
        const cmdline = c?.text.get('cmdline.txt') ?? 'modules=loop,squashfs,sd-mod,usb-storage quiet console=tty1\n';
        const patched = withSerialConsole(patchCmdline(cmdline));
        const usercfg = usercfgText(c?.text.get('usercfg.txt'));
        const release = (c?.text.get('.alpine-release') ?? o.tarball.release?.version ?? '').trim();
        const branch = /^\d+\.\d+/.exec(release)?.[0];
        const repoBranch = branch ? `v${branch}` : 'latest-stable';
        const overlay = packOverlay(overlayEntries({
          hostname: o.hostname,
          sshKeys: o.sshKeys,
          wifi: o.wifi,
          lbuMedia: BOOT_MEDIA,
          repositories: [`/media/${BOOT_MEDIA}/apks`, `${o.alpineMirror}/${repoBranch}/main`, `${o.alpineMirror}/${repoBranch}/community`],
          world: [...BASE_WORLD, ...(o.wifi ? ['wpa_supplicant', 'iw'] : [])],
          fstab: [...DATA_FSTAB_LINES],
          extra: firstBootEntries({
            packages: FIRST_BOOT_PACKAGES,
            join: o.join !== undefined,
            notBefore: o.notBefore ?? Math.floor(Date.now() / 1000),
          }),
        }));
        ctx.host(`cmdline.txt: ${patched.trim()}`);
        ctx.host(`usercfg.txt: ${usercfg.trim().split('\n').join('; ')}`);
        ctx.host(`${apkovlName(o.hostname)}: hostname, DHCP${o.wifi ? ', Wi-Fi' : ''}, ${o.sshKeys.length ? `sshd with ${o.sshKeys.length} key(s)` : 'no SSH (--no-ssh)'}, cgroups (unified), LABEL=${DATA_LABEL} at /media/k0s-data (its k0s/ bound to /var/lib/k0s), lbu keeps the k0s service and root's keys, boot-media and first-boot services`);
        if (ctx.dryRun) return;
        await writeFile(join(boot, 'cmdline.txt'), patched);
        await writeFile(join(boot, 'usercfg.txt'), usercfg);
        await writeFile(join(boot, apkovlName(o.hostname)), overlay);
        await mkdir(join(boot, 'cache'), { recursive: true });
        const replaced = new Set(['cmdline.txt', 'usercfg.txt', apkovlName(o.hostname)]);
        job.bootFiles = [
          ...c!.files.filter((f) => !replaced.has(f.path)),
          { path: 'cmdline.txt', size: Buffer.byteLength(patched), sha256: sha(patched) },
          { path: 'usercfg.txt', size: Buffer.byteLength(usercfg), sha256: sha(usercfg) },
          { path: apkovlName(o.hostname), size: overlay.length, sha256: sha(overlay) },
        ];
      },
    },
    {
      id: 'data-files',
      title: o.join ? `Data partition contents: k0s/ (for ${DATA_DIR}), pi-prep/ with ${o.join.k0s.label} and the join token (0600)` : `Data partition contents: k0s/ (for ${DATA_DIR}), pi-prep/`,
      check: always(o.join ? 'k0s is installed on the first boot from the data partition' : 'no --join: the card boots to Alpine with cgroups ready'),
      async apply(ctx) {
        if (o.join) {
          const a = o.join.k0s;
          ctx.host(a.url ? `download ${a.url} and check its SHA-256 (${a.sha256.slice(0, 12)}…)` : `use ${a.localPath} (SHA-256 ${a.sha256.slice(0, 12)}…)`);
          ctx.host(`stage pi-prep/k0s (0755) and pi-prep/join.token (0600, contents redacted) on the data partition (/media/k0s-data on the Pi)`);
        }
        if (ctx.dryRun) return;
        // The partition's root: k0s/ is bound to /var/lib/k0s (k0s reset empties only it), pi-prep/ sits beside it.
        await mkdir(join(data, 'k0s'), { recursive: true, mode: 0o755 });
        await mkdir(join(data, 'pi-prep'), { recursive: true, mode: 0o700 });
        await chmod(join(data, 'pi-prep'), 0o700);
        if (o.join) {
          const bin = await fetchK0s(ctx.local, o.join.k0s, o.join.cacheDir);
          await copyFile(bin, join(data, 'pi-prep', 'k0s'));
          await chmod(join(data, 'pi-prep', 'k0s'), 0o755);
          // The token reaches the card only through this file: never argv, never output.
          await writeFile(join(data, 'pi-prep', 'join.token'), o.join.token.raw + '\n', { mode: 0o600 });
        }
      },
    },
  ];

  if (card.kind === 'device' && o.unmount.length) {
    tasks.push({
      id: 'unmount',
      title: `Unmount the card's own partitions (${o.unmount.join(', ')})`,
      check: always(`mounted at ${o.unmount.join(', ')}`),
      async apply(ctx) {
        for (const m of o.unmount) await ctx.target.run(['umount', m]);
      },
    });
  }
  if (card.kind === 'image') {
    tasks.push({
      id: 'image-file',
      title: `Image file ${path} (${formatSize(card.bytes)})`,
      check: always(card.exists ? 'an image to rewrite' : 'a new image file'),
      async apply(ctx) {
        ctx.host(card.exists
          ? `grow ${path} to ${card.bytes} bytes if smaller (opened without following links; must be the file that was checked)`
          : `create ${path}, ${card.bytes} bytes (a new file: O_EXCL, no link followed)`);
        if (!ctx.dryRun) await prepareImage(card);
      },
    });
  }
  tasks.push(
    {
      id: 'erase-table',
      title: 'Erase the old partition table first (the new one is written last)',
      check: always('an interrupted run must leave no half-valid card'),
      async apply(ctx) {
        // Minutes may have passed since the safety checks (download, extraction): ask again, now.
        if (!ctx.dryRun) await o.recheck();
        await ctx.target.run(zeroArgv(path, 0));
        // A GPT keeps a backup header in the disk's last sector: erase the last MiB, to the byte.
        await ctx.target.run(zeroArgv(path, l.diskBytes - 2 ** 20));
      },
    },
    {
      id: 'boot-fs',
      title: `Boot partition: FAT32 (${formatSize(l.boot.bytes)}, ${l.boot.fat.sectorsPerCluster * 512}-byte clusters, ${l.boot.fat.clusters} clusters) with Alpine's files`,
      check: always(`at byte ${l.boot.offset}`),
      async apply(ctx) {
        await ctx.target.run(mkfsVfatArgv(path, l));
        const entries = ctx.dryRun ? ['<every file of the tarball>'] : (await readdir(boot)).map((e) => join(boot, e));
        await ctx.target.run(mcopyArgv(path, l, entries), { env: MTOOLS_ENV });
      },
    },
    {
      id: 'data-fs',
      title: `Data partition: ext4 "${DATA_LABEL}" (${formatSize(l.data.bytes)}) for ${DATA_DIR}`,
      check: always(`at byte ${l.data.offset}`),
      async apply(ctx) {
        await ctx.target.run(mkfsExt4Argv(path, l, data));
      },
    },
    {
      id: 'verify',
      title: 'Verify: read every boot file back (SHA-256), fsck.vfat -n, e2fsck -fn',
      check: always('what was written must read back as meant'),
      async apply(ctx) {
        await ctx.target.run(['sync', path]);
        if (card.kind === 'device') await ctx.target.run(['blockdev', '--flushbufs', path]);
        // Independent reads of the same flushed card: run them side by side.
        await Promise.all([ctx.dryRun ? undefined : verifyBootFiles(path, l, job.bootFiles, ctx.log), fsckBoth(ctx, path, l)]);
      },
    },
    {
      id: 'partition-table',
      title: 'Partition table (MBR: p1 FAT32 LBA bootable, p2 Linux), written last',
      check: always('the card becomes valid only now'),
      async apply(ctx) {
        await ctx.target.run(sfdiskArgv(path, card.kind === 'device'), { input: sfdiskScript(l) });
        await ctx.target.run(['sync', path]);
        if (ctx.dryRun) return;
        const dump = await ctx.target.run(['sfdisk', '--dump', path], { readOnly: true });
        const got = parseSfdiskDump(dump.stdout);
        if (JSON.stringify(got) !== JSON.stringify(expectedPartitions(l))) {
          throw new TaskFailedError(`the partition table on ${path} does not read back as written: try another card`);
        }
      },
    },
  );

  return {
    name: 'alpine-sd',
    title: `Alpine card for a k0s worker on ${path}`,
    tasks,
    notes: [
      o.sshKeys.length
        ? `Boot the Pi from the card: it comes up as ${o.hostname}, reachable over SSH as root with ${o.sshKeys.length === 1 ? 'your key' : `any of your ${o.sshKeys.length} keys`} (\`ssh root@${o.hostname}\`, or its address from your router).`
        : `Boot the Pi from the card: it comes up as ${o.hostname}, without SSH (--no-ssh): its console is the only way in.`,
      ...(card.kind === 'image' ? [`${path} is an image: write it to a card with \`sudo dd if=${path} of=/dev/sdX bs=4M conv=fsync status=progress\` (sdX from \`pi-prep disks\`), or Raspberry Pi Imager's "Use custom".`] : []),
      o.join
        ? `First boot installs ${FIRST_BOOT_PACKAGES.join(' ')} and joins k0s, retrying until the network and the controller answer. Its state and a redacted log are written to ${CARD_STATUS_FILE} on the boot partition: \`pi-prep check --card ${path}\` reads them on any machine. The worker logs to ${K0S_OPENRC_LOGS.join(' and ')} on the Pi.`
        : 'Without --join the card boots to a persistent Alpine with cgroups ready for k0s.',
    ],
  };
}

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
function usercfgText(existing: string | undefined): string {
  const lines = (existing ?? '').split('\n').filter((x) => x.trim() !== '');
  for (const want of ['# pi-prep: k0s worker', 'arm_64bit=1', 'enable_uart=1']) if (!lines.includes(want)) lines.push(want);
  return lines.join('\n') + '\n';
}

/** The scratch space: removed whether the run worked or not (it may hold the token). */
export async function removeWork(work: string): Promise<void> {
  await rm(work, { recursive: true, force: true });
}
