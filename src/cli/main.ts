#!/usr/bin/env node
// Thin wiring only: parse, then lazy-import the command. Keep imports here light (startup time).
import { Command, CommanderError, Option } from 'commander';
import { createRequire } from 'node:module';

const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };

/** Shared flags, added to every command that acts on a machine. */
function common(cmd: Command): Command {
  return cmd
    .option('--dry-run', 'print the checklist of what would run; change nothing')
    .option('--json', 'machine-readable output')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--verbose', 'show every command and file edit as it happens')
    .option('--log-file <file>', 'append a full log (secrets redacted) to FILE');
}

const repeat = (value: string, previous: string[] = []) => [...previous, value];

function onTarget(cmd: Command): Command {
  return cmd
    .option('--root <dir>', 'act on a root filesystem in DIR (files under DIR, commands chrooted)')
    .option('--host <[user@]host[:port]>', 'act on this machine over SSH; repeat for several at once (docs/remote.md)', repeat)
    .option('--inventory <file>', 'act on every host in this YAML file, in parallel (docs/fleet.md)')
    .option('--parallel <n>', 'how many hosts of a fleet at a time', '4')
    .option('--ssh-option <key=value>', 'passed to ssh as -o KEY=VALUE; repeatable', repeat);
}

/** The token and where k0s comes from: for every command that installs k0s. */
function k0sSource(cmd: Command): Command {
  return cmd
    .option('--join <token>', 'worker join token: TOKEN, @FILE or - (stdin); prefer @FILE or -')
    .option('--k0s-version <version>', 'k0s release to install (default: current stable)')
    .option('--k0s-mirror <url>', 'base URL holding <tag>/k0s-<tag>-<arch> and <tag>/sha256sums.txt')
    .option('--k0s-binary <file>', 'install this k0s binary instead of downloading one');
}

/** Joining now, on a running machine (not on a card that boots later). */
function joinFlags(cmd: Command): Command {
  return k0sSource(cmd)
    .option('--check-server', "check that the token's API server answers before joining")
    .addOption(new Option('--wait-timeout <seconds>', 'how long to wait for k0s to run').default('120'));
}

/** The command being run and the raw arguments: a fleet re-runs the command once per host. */
let acting: Command | undefined;
let rawArgs: string[] = [];

async function dispatch(module: string, fn: string, ...args: unknown[]): Promise<void> {
  const flags = args[0] as { host?: string[]; inventory?: string } | undefined;
  if (acting && flags && ((flags.host?.length ?? 0) > 1 || flags.inventory)) {
    const { fleetCommand } = await import('../fleet/fleet-command.js');
    process.exitCode = await fleetCommand(acting, rawArgs, flags);
    return;
  }
  const mod = (await import(module)) as Record<string, (...a: unknown[]) => Promise<number>>;
  process.exitCode = await mod[fn]!(...args);
}

export function buildProgram(): Command {
  const program = new Command('pi-prep')
    .description('Prepare Raspberry Pis and other Linux machines to join a k0s cluster as workers')
    .version(version, '-V, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => write(`pi-prep: ${str.replace(/^error: /, '').trim()} (see pi-prep --help)\n`),
    })
    .hook('preAction', (_program, command) => {
      acting = command;
    });

  onTarget(program.command('check'))
    .option('--json', 'machine-readable output')
    .option('--card <target>', "read an alpine-sd card's (or image's) first-boot state and log instead")
    .description('report whether this machine (or --root DIR) can run a k0s worker, or what a card said on its first boot; changes nothing')
    .action((opts) => (opts.card
      ? dispatch('../commands/card-status.js', 'cardStatusCommand', opts.card, opts)
      : dispatch('../commands/check.js', 'checkCommand', opts)));

  common(joinFlags(onTarget(program.command('linux'))))
    .description("make any systemd/OpenRC Linux that is already fit for k0s a worker (the seed's Ubuntu worker)")
    .action((opts) => dispatch('../commands/linux.js', 'linuxCommand', opts));

  // rpios (issue 3): Raspberry Pi OS 64-bit worker.
  common(joinFlags(onTarget(program.command('rpios'))))
    .description('make a Raspberry Pi OS 64-bit Pi a worker: kernel check/rebuild, cgroup flags, reboot, join')
    .addOption(new Option('--kernel <mode>', 'auto: rebuild only when the running kernel lacks an option of kernel-configs/').choices(['auto', 'rebuild', 'skip']).default('auto'))
    .option('--kernel-repo <url>', 'kernel git repository (URL, mirror or local path)', 'https://github.com/raspberrypi/linux')
    .option('--kernel-branch <branch>', 'branch to build (default: rpi-X.Y.y of the running kernel)')
    .option('--kernel-defconfig <target>', "defconfig to start from (default: the board's)")
    .option('--kernel-fragment <file>', 'another kconfig fragment to merge (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--kernel-workdir <dir>', 'where to clone and build (on the Pi, or on this machine for --root)')
    .option('--kernel-jobs <n>', 'make -j (default: from cores and RAM)')
    .option('--reboot', 'reboot when needed instead of stopping')
    .option('--rollback-kernel', 'restore the boot files and config.txt from before the k0s kernel, byte for byte')
    .option('--build-local', 'with --host: cross-compile the kernel on this machine and install it over SSH')
    .action((opts) => dispatch('../commands/rpios.js', 'rpiosCommand', opts));

  // pi-prep alpine: the seed's Alpine steps on a running (diskless) Alpine Pi
  common(joinFlags(onTarget(program.command('alpine'))))
    .description("run the seed's Alpine steps on this Alpine Pi (diskless: persisted with lbu), then join")
    .option('--data-device <disk>', "whole disk whose free space becomes the k0s data partition (default: the boot media's disk)")
    .option('--reboot', 'reboot when needed instead of stopping (never for --root)')
    .action((opts) => dispatch('../commands/alpine.js', 'alpineCommand', opts));

  // alpine-sd and disks (issue 4): Alpine cards and images, with the safety model of docs/safety.md.
  common(k0sSource(program.command('alpine-sd')))
    .description('make an SD card or image file that boots a Pi into Alpine aarch64 and joins k0s (erases TARGET)')
    .argument('<target>', 'a whole disk (/dev/sdX, /dev/mmcblkN) or an image file path (created with --size)')
    .option('--tarball <file>', 'an alpine-rpi-*-aarch64.tar.gz on this machine')
    .option('--alpine-version <version>', 'download this release (3.x.y or latest), SHA-256 checked, cached')
    .option('--alpine-mirror <url>', "Alpine mirror (default: Alpine's CDN)")
    .option('--hostname <name>', 'host name of the Pi (and of its apkovl)', 'pi-worker')
    .option('--ssh-key <file...>', "public key(s) for root's authorized_keys")
    .option('--wifi-ssid <ssid>', 'Wi-Fi network to join on first boot')
    .option('--wifi-psk <passphrase>', 'Wi-Fi passphrase, or @FILE holding it (kept out of the process list)')
    .option('--wifi-country <cc>', 'Wi-Fi regulatory country, e.g. DE')
    .option('--size <size>', 'size of a new image file', '2G')
    .option('--boot-size <size>', 'FAT32 boot partition size', '256M')
    .option('--data-size <size>', 'ext4 data partition size (default: the rest)')
    .option('--loop', 'allow a loop device as TARGET')
    .option('--force', 'overwrite an existing file that is not a disk image')
    .action((target, opts) => dispatch('../commands/alpine-sd.js', 'alpineSdCommand', target, opts));

  program.command('disks')
    .description('list disks with the safety verdict alpine-sd would give each; changes nothing')
    .option('--json', 'machine-readable output')
    .option('--loop', 'list loop devices too')
    .action((opts) => dispatch('../commands/disks.js', 'disksCommand', opts));

  // Controller helpers (issue 6): run on the k0s controller over SSH, results written here.
  const controller = (cmd: Command) => cmd
    .requiredOption('--controller <[user@]host[:port]>', 'the k0s controller, reached over SSH')
    .option('--ssh-option <key=value>', 'passed to ssh as -o KEY=VALUE; repeatable', repeat)
    .option('--dry-run', 'say what would be run and written; change nothing');

  controller(program.command('token'))
    .description('create a worker join token on the controller and write it here, mode 0600 (docs/controller.md)')
    .option('--expiry <duration>', 'how long the token is valid (k0s --expiry, e.g. 1h, 24h)', '1h')
    .option('-o, --output <file>', 'where to write the token', 'join.token')
    .option('--print', 'also print the token on stdout (it is a secret)')
    .action((opts) => dispatch('../commands/token.js', 'tokenCommand', opts));

  controller(program.command('kubeconfig'))
    .description("fetch the controller's admin kubeconfig, its localhost replaced by the controller's address")
    .option('-o, --output <file>', 'write it to FILE (mode 0600) instead of stdout')
    .option('--address <addr>', 'the address the API is reachable at (default: the host ssh connects to)')
    .action((opts) => dispatch('../commands/kubeconfig.js', 'kubeconfigCommand', opts));

  return program;
}

export async function main(argv = process.argv): Promise<void> {
  const { exitOnSignals } = await import('../core/cleanup.js');
  exitOnSignals();
  const program = buildProgram();
  rawArgs = argv.slice(2);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
      process.exitCode = ok ? 0 : 2;
      return;
    }
    const { reportError } = await import('./report-error.js');
    process.exitCode = reportError(err);
  }
}

await main();
