import { randomBytes } from 'node:crypto';
import { pidAlive } from '../core/pid.js';
import { onInterrupt } from '../core/cleanup.js';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { RefusedError, UsageError, exitCodeFor, oneLine } from '../core/errors.js';
import { printJson } from '../core/json-output.js';
import type { RunReport } from '../run/report.js';
import { RecipeFailed } from '../run/runner.js';
import { alpineSdRecipe } from '../../recipes/alpine-sd.js';
import { batchHostnames, firstClash, type CardPlan, type SharedPlan } from '../lib/alpine/card-plan.js';
import { TarballSource } from '../steps/alpine/card-scratch.js';
import { resolveCard } from '../lib/disk/card-target.js';
import { mountTable } from '../lib/disk/mountinfo.js';
import { planLayout } from '../lib/disk/layout.js';
import { formatSize, parseSize } from '../lib/disk/size.js';
import { isHostname } from '../lib/alpine/apkovl.js';
import { defaultPublicKeys, readPublicKeys } from '../lib/alpine/ssh-keys.js';
import { DEFAULT_ALPINE_MIRROR, resolveAlpine } from '../lib/alpine/release.js';
import { resolveForArch } from '../steps/k0s/join.js';
import { addSecret, redact } from '../core/redact.js';
import { executeRecipe } from './execute.js';
import { joinOptionsFrom, mirrorArg, targetFrom, type CommonFlags, type JoinFlags } from './options.js';

export interface AlpineSdFlags extends CommonFlags, JoinFlags {
  tarball?: string;
  alpineVersion?: string;
  alpineMirror?: string;
  /** One name (a `{n}` pattern for a batch), or one per card. */
  hostname?: string[];
  /** With a TARGET holding `{n}`: that many image files, numbered from 1. */
  count?: string;
  sshKey?: string[];
  /** false with --no-ssh: a card without SSH, on purpose. */
  ssh?: boolean;
  wifiSsid?: string;
  wifiPsk?: string;
  wifiCountry?: string;
  size?: string;
  bootSize?: string;
  dataSize?: string;
  loop?: boolean;
  force?: boolean;
}

/**
 * k0s names a node after its host name: ten cards with one default name would be ten nodes with the
 * same name. Without --hostname each card gets its own (pi-worker-<4 random hex digits>), said up front.
 */
function defaultHostname(): string {
  return `pi-worker-${randomBytes(2).toString('hex')}`;
}

/**
 * `pi-prep alpine-sd TARGET...`: cards or image files that boot a Pi into Alpine and join k0s.
 * Several TARGETs (or one with `{n}` and --count) are a batch: the tarball, the boot files and the
 * data contents are made once; each card then gets its own identity and is verified on its own.
 */
export async function alpineSdCommand(givenArg: string | string[], flags: AlpineSdFlags): Promise<number> {
  // Inputs first: bad input stops the run (exit 2) before anything is looked at on the disk.
  const givens = expandTargets([givenArg].flat(), flags.count);
  const hostnames = cardHostnames(flags.hostname, givens.length);
  if (flags.tarball && flags.alpineVersion) throw new UsageError('give --tarball or --alpine-version, not both');
  const givenKeyList = await givenKeys(flags);
  const size = parseSize(flags.size ?? '2G', '--size');
  const bootBytes = parseSize(flags.bootSize ?? '256M', '--boot-size');
  const dataBytes = flags.dataSize ? parseSize(flags.dataSize, '--data-size') : undefined;
  if (flags.wifiSsid && !flags.wifiPsk) throw new UsageError('--wifi-ssid needs --wifi-psk (the network passphrase)');
  if (flags.wifiSsid && (Buffer.byteLength(flags.wifiSsid) > 32 || /[\n\r]/.test(flags.wifiSsid))) throw new UsageError('--wifi-ssid is at most 32 bytes on one line');
  if (flags.wifiCountry && !/^[A-Z]{2}$/.test(flags.wifiCountry)) throw new UsageError(`--wifi-country ${flags.wifiCountry} is not a two-letter country code: use e.g. --wifi-country DE`);
  const wifi = flags.wifiSsid ? { ssid: flags.wifiSsid, psk: await readPsk(flags.wifiPsk!), country: flags.wifiCountry } : undefined;
  if (flags.tarball && !(await stat(flags.tarball).catch(() => undefined))?.isFile()) {
    throw new UsageError(`--tarball ${flags.tarball} is not a file: give the path of an alpine-rpi-*-aarch64.tar.gz`);
  }
  const mirror = mirrorArg(flags.alpineMirror ?? DEFAULT_ALPINE_MIRROR, '--alpine-mirror');
  const join_ = await joinOptionsFrom(flags, false, 'alpine-sd');

  // Then the cards: every safety rule, in dry runs too, for every card before any is written.
  const target = await targetFrom(flags);
  const cardOptions = async () => ({ size, allowLoop: flags.loop, force: flags.force, extraMounts: await mountTable(), adoptLoops: !flags.dryRun });
  const cards: CardPlan[] = [];
  let sshKeys: string[];
  try {
    for (const [i, given] of givens.entries()) {
      const card = await resolveCard(target, given, await cardOptions());
      const other = cards.find((c) => c.card.path === card.path);
      if (other) throw new UsageError(`${given} is ${card.path}, given twice in one batch: name each card once`);
      // A card is used whole: --size sizes a new image file, and a disk cannot be made larger.
      if (card.kind === 'device' && flags.size !== undefined) throw new UsageError(`--size ${flags.size} is for a new image file, and ${card.path} is a ${formatSize(card.bytes)} disk used whole: drop --size`);
      cards.push({ card, layout: planLayout(card.bytes, bootBytes, dataBytes), hostname: hostnames[i]!, unmount: card.kind === 'device' ? card.verdict.mounts.map((m) => m.mountpoint) : [] });
    }
    // The user's own keys are looked for once the cards passed every safety rule (a refusal comes first).
    sshKeys = givenKeyList ?? (await defaultKeys());
  } catch (err) {
    await target.close();
    throw err;
  }
  for (const { card, hostname } of cards) {
    // Said once the card is known to be fine: a refusal stays one line.
    if (!flags.hostname?.length) process.stderr.write(`pi-prep: no --hostname given: ${cards.length > 1 ? `${card.path} is` : 'this card is'} ${hostname}\n`);
    if (card.kind === 'device') {
      process.stderr.write(`pi-prep: ${card.path}: ${card.verdict.model}, ${formatSize(card.bytes)}, ${card.verdict.reason}\n`);
      if (!flags.dryRun) await confirm(givens[cards.findIndex((c) => c.card === card)]!, card.path, Boolean(flags.yes));
    }
  }

  const tarball = flags.tarball
    ? { path: flags.tarball }
    : { release: await resolveAlpine(flags.alpineVersion ?? 'latest', mirror) };
  const k0s = join_ ? await resolveForArch(join_.source, 'arm64', Boolean(flags.dryRun)) : undefined;
  if (!flags.dryRun) await sweepStaleWork();
  // Named now, made by the recipe (through the recorded target): a dry run creates nothing.
  const work = join(tmpdir(), `${WORK_PREFIX}${randomBytes(8).toString('hex')}`);
  const forgetWork = onInterrupt(() => removeWork(work));
  const shared: SharedPlan = {
    tarball, alpineMirror: mirror, sshKeys, wifi, work, writtenAt: Math.floor(Date.now() / 1000),
    join: join_ && k0s ? { token: join_.token, k0s, cacheDir: join_.source.cacheDir } : undefined,
  };
  const source = new TarballSource(shared);
  // Under --json a batch prints one envelope: each card's report (or error), in order.
  const batch: BatchCard[] | undefined = flags.json && cards.length > 1 ? [] : undefined;
  const run = async (i: number, sideBySide: boolean) => {
    const card = cards[i]!;
    if (cards.length > 1 && !flags.json && !flags.quiet) process.stderr.write(`pi-prep: card ${i + 1} of ${cards.length}: ${card.card.path} (${card.hostname})\n`);
    const recipe = alpineSdRecipe({ shared, source, card, given: givens[i]!, cardOptions });
    const entry = { target: card.card.path, hostname: card.hostname };
    try {
      return await executeRecipe(recipe, target, flags, {
        lockKey: card.card.path, quietProgress: sideBySide,
        ...(batch ? { onReport: (report: RunReport) => void (batch[i] = { ...entry, exitCode: report.ok ? 0 : 1, report }) } : {}),
      });
    } catch (err) {
      if (batch) batch[i] = { ...entry, exitCode: exitCodeFor(err), error: redact(oneLine(err)), ...(err instanceof RecipeFailed ? { report: err.report } : {}) };
      throw err;
    }
  };
  const all = async () => {
    // The first card alone: it makes the shared part. Then two at a time, so one card's read-back
    // (hashing on this process) overlaps the next card's writes (mkfs, mcopy: other processes).
    const first = await run(0, false);
    if (first !== 0 || cards.length === 1) return first;
    // A dry run's plans come one after the other, in order.
    return await atMostTwo(cards.length - 1, flags.dryRun ? 1 : 2, (i) => run(i + 1, !flags.dryRun));
  };
  try {
    if (!batch) return await all();
    const cardsData = () => ({ cards: batch.filter(Boolean) });
    try {
      const code = await all();
      printJson('alpine-sd', code === 0, cardsData());
      return code;
    } catch (err) {
      // The failing card's error is in its entry; the line on stderr says it once more, as always.
      printJson('alpine-sd', false, cardsData());
      process.stderr.write(`pi-prep: ${redact(oneLine(err))}\n`);
      return exitCodeFor(err);
    }
  } finally {
    await removeWork(work);
    forgetWork();
  }
}

/** One card of a batch, under --json. Cards a failure kept from starting are not listed. */
interface BatchCard {
  target: string;
  hostname: string;
  exitCode: number;
  error?: string;
  report?: RunReport;
}

/**
 * Run jobs 0..n-1 in order, `lanes` (1 or 2) at once. A failure (exit code or error) starts no new
 * job; the one in flight finishes (a card is never left half-written by pi-prep itself), then the
 * first failure is returned or thrown.
 */
async function atMostTwo(n: number, lanes: 1 | 2, job: (i: number) => Promise<number>): Promise<number> {
  let next = 0;
  let failed: { code: number } | { err: unknown } | undefined;
  const lane = async () => {
    while (next < n && !failed) {
      const i = next++;
      try {
        const code = await job(i);
        if (code !== 0) failed ??= { code };
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(lanes === 2 ? [lane(), lane()] : [lane()]);
  if (failed && 'err' in failed) throw failed.err;
  return failed?.code ?? 0;
}

/**
 * TARGETs as given, or one TARGET with `{n}` and --count N: cards/pi-{n}.img for 1..N. A device
 * cannot be numbered: several devices are named one by one.
 */
export function expandTargets(given: string[], count: string | undefined): string[] {
  const numbered = given.filter((g) => g.includes('{n}'));
  if (count === undefined) {
    if (numbered.length) throw new UsageError(`${numbered[0]} holds {n}: add --count N for N image files, or name each TARGET`);
    return given;
  }
  const n = Number(count);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UsageError(`--count ${count} is not a number of cards: use e.g. --count 10`);
  if (given.length !== 1 || numbered.length !== 1) throw new UsageError("--count numbers one TARGET holding {n}: e.g. pi-prep alpine-sd 'cards/pi-{n}.img' --count 10");
  return Array.from({ length: n }, (_, i) => given[0]!.replaceAll('{n}', String(i + 1)));
}

/**
 * One host name per card: one --hostname per card, or one with `{n}` (1, 2, ... in TARGET order),
 * or none (each its own pi-worker-xxxx). Two cards with one name are refused before anything.
 */
export function cardHostnames(given: string[] | undefined, count: number): string[] {
  // One card: the last --hostname wins, as it always did for a single-valued option.
  const list = count === 1 && given?.length ? given.slice(-1) : given ?? [];
  if (list.length > 1 && list.length !== count) throw new UsageError(`${list.length} --hostname values for ${count} card(s): give one per card, or one pattern such as --hostname 'pi-{n}'`);
  if (list.length === 1 && count > 1 && !list[0]!.includes('{n}')) {
    throw new UsageError(`--hostname ${list[0]} would name all ${count} cards the same, and k0s names nodes after it: use a pattern such as --hostname '${list[0]}-{n}', or one --hostname per card`);
  }
  const names = batchHostnames(list, count, defaultHostname);
  for (const h of names) if (!isHostname(h)) throw new UsageError(`--hostname ${h} is not a host name: use letters, digits and dashes, e.g. --hostname pi-worker-1`);
  const clash = firstClash(names);
  if (clash) throw new UsageError(`two cards would both be named ${clash} (k0s names nodes after the host name): give each card its own --hostname`);
  return names;
}

/** --ssh-key files (read now: a bad one is bad input) or --no-ssh (none); undefined: look for the user's own. */
async function givenKeys(flags: AlpineSdFlags): Promise<string[] | undefined> {
  if (flags.ssh === false) {
    if (flags.sshKey?.length) throw new UsageError('--no-ssh and --ssh-key disagree: drop one of them');
    return [];
  }
  return flags.sshKey?.length ? (await Promise.all(flags.sshKey.map(readPublicKeys))).flat() : undefined;
}

/**
 * A headless card is reachable only over SSH: without --ssh-key, the invoking user's keys (said
 * which), else a refusal with the fix. --no-ssh asks for a card without SSH on purpose.
 */
async function defaultKeys(): Promise<string[]> {
  const { keys, source } = await defaultPublicKeys();
  if (!keys.length) throw new UsageError('no SSH key to put on the card, and a headless Pi is reached over SSH: give --ssh-key ~/.ssh/id_ed25519.pub (make one with ssh-keygen -t ed25519), or --no-ssh for a card without SSH');
  process.stderr.write(`pi-prep: no --ssh-key given: root on the Pi accepts ${keys.length} key(s) from ${source}\n`);
  return keys;
}

/**
 * Writing a block device needs the device named twice: typed at the prompt, or `--yes` with TARGET
 * being the device's own name (not a symlink to it), so a script cannot wipe a disk by accident.
 */
async function confirm(given: string, device: string, yes: boolean): Promise<void> {
  if (yes) {
    if (given !== device) throw new RefusedError(`--yes needs the device named exactly: run again with ${device} instead of ${given}`);
    return;
  }
  if (!process.stdin.isTTY) throw new RefusedError(`${device} would be erased: confirm with --yes and the device named exactly (${device})`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`Everything on ${device} will be erased. Type ${device} to go on: `)).trim();
    if (answer !== device) throw new RefusedError(`you typed "${answer}", not ${device}: nothing was written`);
  } finally {
    rl.close();
  }
}

/** The Wi-Fi passphrase is a secret too: @FILE keeps it out of the process list; it is redacted everywhere. */
async function readPsk(arg: string): Promise<string> {
  let psk = arg;
  if (arg.startsWith('@')) {
    psk = (await readFile(arg.slice(1), 'utf8').catch(() => {
      throw new UsageError(`cannot read the Wi-Fi passphrase file ${arg.slice(1)}: check the path after --wifi-psk @`);
    })).trim();
  } else {
    process.stderr.write('pi-prep: warning: a passphrase on the command line is visible in the process list; prefer --wifi-psk @FILE\n');
  }
  if (psk.length < 8 || psk.length > 63) throw new UsageError('--wifi-psk must be 8 to 63 characters (WPA2 passphrase)');
  addSecret(psk);
  return psk;
}

const WORK_PREFIX = 'pi-prep-sd-';

/** The scratch space: removed whether the run worked or not (it may hold the token). */
async function removeWork(work: string): Promise<void> {
  await rm(work, { recursive: true, force: true });
}

/**
 * A run killed with -9 cannot clean up its scratch directory (0700, but it may hold the token):
 * the next run removes those whose process is gone.
 */
async function sweepStaleWork(): Promise<void> {
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    if (!name.startsWith(WORK_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    if ((await stat(dir).catch(() => undefined))?.uid !== process.getuid?.()) continue; // only our own
    const pid = Number(await readFile(join(dir, 'pid'), 'utf8').catch(() => NaN));
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (!pidAlive(pid)) await rm(dir, { recursive: true, force: true });
  }
}
