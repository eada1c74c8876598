import { randomBytes } from 'node:crypto';
import { pidAlive } from '../core/pid.js';
import { onInterrupt } from '../core/cleanup.js';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { RefusedError, UsageError } from '../core/errors.js';
import { alpineSdRecipe, removeWork, type AlpineSdOptions } from '../../recipes/alpine-sd.js';
import { recheckCard, resolveCard, type Card } from '../steps/disk/card-target.js';
import { mountTable } from '../steps/disk/mountinfo.js';
import { planLayout } from '../steps/disk/layout.js';
import { formatSize, parseSize } from '../steps/disk/size.js';
import { isHostname } from '../steps/alpine/apkovl.js';
import { defaultPublicKeys, readPublicKeys } from '../steps/alpine/ssh-keys.js';
import { DEFAULT_ALPINE_MIRROR, resolveAlpine } from '../steps/alpine/release.js';
import { resolveForArch } from '../steps/k0s/join.js';
import { addSecret } from '../core/redact.js';
import { executeRecipe } from './execute.js';
import { joinOptionsFrom, mirrorArg, targetFrom, type CommonFlags, type JoinFlags } from './options.js';

export interface AlpineSdFlags extends CommonFlags, JoinFlags {
  tarball?: string;
  alpineVersion?: string;
  alpineMirror?: string;
  hostname?: string;
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

/** `pi-prep alpine-sd TARGET`: a card or image file that boots a Pi into Alpine and joins k0s. */
export async function alpineSdCommand(given: string, flags: AlpineSdFlags): Promise<number> {
  // Inputs first: bad input stops the run (exit 2) before anything is looked at on the disk.
  const hostname = flags.hostname ?? defaultHostname();
  if (!isHostname(hostname)) throw new UsageError(`--hostname ${hostname} is not a host name: use letters, digits and dashes, e.g. --hostname pi-worker-1`);
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

  // Then the card: every safety rule, in dry runs too.
  const target = await targetFrom(flags);
  const cardOpts = { size, allowLoop: flags.loop, force: flags.force, extraMounts: await mountTable(), adoptLoops: !flags.dryRun };
  let card: Card;
  try {
    card = await resolveCard(target, given, cardOpts);
  } catch (err) {
    await target.close();
    throw err;
  }
  const layout = planLayout(card.bytes, bootBytes, dataBytes);
  // The user's own keys are looked for once the card passed every safety rule (a refusal comes first).
  let sshKeys: string[];
  try {
    sshKeys = givenKeyList ?? (await defaultKeys());
  } catch (err) {
    await target.close();
    throw err;
  }
  // Said once the card is known to be fine: a refusal stays one line.
  if (!flags.hostname) process.stderr.write(`pi-prep: no --hostname given: this card is ${hostname}\n`);
  const unmount = card.kind === 'device' ? card.verdict.mounts.map((m) => m.mountpoint) : [];
  if (card.kind === 'device') {
    process.stderr.write(`pi-prep: ${card.path}: ${card.verdict.model}, ${formatSize(card.bytes)}, ${card.verdict.reason}\n`);
    if (!flags.dryRun) await confirm(given, card.path, Boolean(flags.yes));
  }

  const tarball = flags.tarball
    ? { path: flags.tarball }
    : { release: await resolveAlpine(flags.alpineVersion ?? 'latest', mirror) };
  const k0s = join_ ? await resolveForArch(join_.source, 'arm64', Boolean(flags.dryRun)) : undefined;
  if (!flags.dryRun) await sweepStaleWork();
  const work = await mkdtemp(join(tmpdir(), WORK_PREFIX));
  const forgetWork = onInterrupt(() => removeWork(work));
  await writeFile(join(work, 'pid'), String(process.pid));
  const opts: AlpineSdOptions = {
    card, layout, tarball, alpineMirror: mirror, hostname, sshKeys, wifi, unmount, work,
    recheck: async () => recheckCard(target, given, card, { ...cardOpts, extraMounts: await mountTable() }),
    join: join_ && k0s ? { token: join_.token, k0s, cacheDir: join_.source.cacheDir } : undefined,
  };
  try {
    return await executeRecipe(alpineSdRecipe(opts), target, flags, card.path);
  } finally {
    await removeWork(work);
    forgetWork();
  }
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
