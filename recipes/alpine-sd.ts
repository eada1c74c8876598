import type { Recipe, RunContext } from '../src/run/task.js';
import { CARD_STATUS_FILE, K0S_OPENRC_LOGS } from '../src/lib/alpine/paths.js';
import { FIRST_BOOT_PACKAGES, scratchPaths, type CardPlan, type SharedPlan } from '../src/lib/alpine/card-plan.js';
import { TarballSource, bootScratchTask, cardBootFiles, dataScratchTask, expectation, overlayTask, tarballTask } from '../src/steps/alpine/card-scratch.js';
import type { CardOptions } from '../src/lib/disk/card-target.js';
import { inspectCard } from '../src/lib/disk/card-state.js';
import { bootFsTask, dataFsTask, eraseTask, imageFileTask, recheckTask, tableTask, unmountTask, verifyTask, type CardWrite } from '../src/steps/disk/card-write.js';

export interface AlpineSdOptions {
  shared: SharedPlan;
  /** The tarball, read once for every card of a batch. */
  source: TarballSource;
  card: CardPlan;
  /** TARGET as given, and the safety rules it passed: the re-check applies them again. */
  given: string;
  cardOptions: () => Promise<CardOptions>;
}

/**
 * An Alpine SD card (or image) that boots a Pi into a joined k0s worker, with no keyboard:
 *   1. the alpine-rpi tarball on this machine (verified), read defensively
 *   2. boot files and data contents in the scratch directory (once for every card of a run)
 *   3. the card's own overlay: its host name, keys, services
 *   4. the card is still the one checked; erase the old partition table first
 *   5. FAT32 boot filesystem with the files; ext4 data filesystem for /var/lib/k0s
 *   6. read everything back and fsck both filesystems; write the partition table last
 * Each check reads the card first: a card already as planned is left alone (nothing is erased).
 */
export function alpineSdRecipe(o: AlpineSdOptions): Recipe {
  const { shared: s, source, card: { card, layout, hostname, unmount } } = o;
  const paths = scratchPaths(s, hostname);
  const state = once(async (ctx: RunContext) => inspectCard(ctx.target, card.path, expectation(s, await source.contents(ctx), hostname, layout)));
  const w: CardWrite = {
    card, layout, dataDir: paths.data, state,
    boot: async (ctx) => cardBootFiles(s, await source.contents(ctx), hostname),
  };

  return {
    name: 'alpine-sd',
    title: `Alpine card for a k0s worker on ${card.path}`,
    tasks: [
      tarballTask(s, source, layout),
      bootScratchTask(s, source, w.state),
      dataScratchTask(s, w.state),
      overlayTask(s, source, hostname, w.state),
      ...(card.kind === 'device' && unmount.length ? [unmountTask(w, unmount)] : []),
      ...(card.kind === 'image' ? [imageFileTask(w)] : []),
      recheckTask(o.given, card, o.cardOptions),
      eraseTask(w),
      bootFsTask(w),
      dataFsTask(w),
      verifyTask(w),
      tableTask(w),
    ],
    notes: cardNotes(s, card.path, card.kind === 'image', hostname),
  };
}

/** What to do next: boot it, reach it, write an image to a card, read its first-boot state. */
function cardNotes(s: SharedPlan, path: string, image: boolean, hostname: string): string[] {
  const n = s.sshKeys.length;
  return [
    n
      ? `Boot the Pi from the card: it comes up as ${hostname}, reachable over SSH as root with ${n === 1 ? 'your key' : `any of your ${n} keys`} (\`ssh root@${hostname}\`, or its address from your router).`
      : `Boot the Pi from the card: it comes up as ${hostname}, without SSH (--no-ssh): its console is the only way in.`,
    ...(image ? [`${path} is an image: write it to a card with \`sudo dd if=${path} of=/dev/sdX bs=4M conv=fsync status=progress\` (sdX from \`pi-prep disks\`), or Raspberry Pi Imager's "Use custom".`] : []),
    s.join
      ? `First boot installs ${FIRST_BOOT_PACKAGES.join(' ')} and joins k0s, retrying until the network and the controller answer. Its state and a redacted log are written to ${CARD_STATUS_FILE} on the boot partition: \`pi-prep check --card ${path}\` reads them on any machine. The worker logs to ${K0S_OPENRC_LOGS.join(' and ')} on the Pi.`
      : 'Without --join the card boots to a persistent Alpine with cgroups ready for k0s.',
  ];
}

/** A value computed on first use and kept (the card as read before any write). */
function once<A, T>(f: (a: A) => Promise<T>): (a: A) => Promise<T> {
  let p: Promise<T> | undefined;
  return (a) => (p ??= f(a));
}
