#!/usr/bin/env node
// Thin wiring only: parse, then lazy-import the command. Keep imports here light (startup time).
import { Argument, Command, CommanderError, Option } from 'commander';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { JsonKind } from '../core/json-output.js';

const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };
/** The docs ship in the package: this path works from a clone and from an installed copy. */
const DOCS = fileURLToPath(new URL('../../../docs/', import.meta.url));
const ONLINE = 'https://github.com/pi-prep/pi-prep/tree/main/docs';

/** The end of a command's --help: real examples, then where its page is. */
function examples(cmd: Command, page: string, lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n\nDocs: ${DOCS}${page} (online: ${ONLINE}/${page})`);
}

/** Shared flags, added to every command that acts on a machine. */
function common(cmd: Command): Command {
  return cmd
    .option('--dry-run', 'print the checklist of what would run; change nothing')
    .option('--json', 'machine-readable output: one JSON document on stdout (docs/json.md)')
    .option('-q, --quiet', 'print nothing but errors (and the JSON with --json); the exit code tells the result')
    .option('--verbose', 'show every command and file edit as it happens')
    .option('--log-file <file>', 'append a full log (secrets redacted) to FILE');
}

const repeat = (value: string, previous: string[] = []) => [...previous, value];

function onTarget(cmd: Command): Command {
  return cmd
    .option('--root <dir>', 'act on a root filesystem in DIR (files under DIR, commands chrooted)')
    .option('--host <[user@]host[:port]>', 'act on this machine over SSH; repeat for several at once (docs/remote.md)', repeat)
    .option('--inventory <file>', 'act on every host of this inventory: pi-prep YAML, k0sctl.yaml or Ansible (docs/fleet.md)')
    .option('--group <name>', 'only the hosts of this Ansible group (like ansible --limit); repeatable, or a,b', repeat)
    .option('--parallel <n>', 'how many hosts of a fleet at a time', '4')
    .option('--ssh-option <key=value>', 'passed to ssh as -o KEY=VALUE; repeatable', repeat)
    .option('--ssh-config <file>', 'ssh reads this config file instead of ~/.ssh/config (ssh -F)')
    .option('--host-key <key>', "accept only this host key for --host, 'TYPE BASE64' (known_hosts is not consulted)");
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

/** After a join, wait for the node to be Ready in the cluster. */
function readyFlags(cmd: Command): Command {
  return cmd
    .option('--kubeconfig <file>', 'after the join, wait until this node is Ready in the cluster (admin kubeconfig: pi-prep kubeconfig -o FILE)')
    .addOption(new Option('--ready-timeout <seconds>', 'how long to wait for the node to be Ready').default('300'));
}

/**
 * One invocation's state: the command being run, the raw arguments and the exit code. A fleet
 * re-runs the command once per host in this process, several at once, so none of it is global.
 */
interface Invocation {
  acting?: Command;
  rawArgs: string[];
  code?: number;
}

/** Under --json, the kind of envelope an error is reported in (a fleet's when several hosts are named). */
function jsonKind(inv: Invocation): JsonKind | undefined {
  const { rawArgs, acting } = inv;
  const args = rawArgs.includes('--') ? rawArgs.slice(0, rawArgs.indexOf('--')) : rawArgs;
  if (!args.includes('--json')) return undefined;
  const hosts = args.filter((a) => a === '--host' || a.startsWith('--host=')).length;
  if (hosts > 1 || args.some((a) => a === '--inventory' || a.startsWith('--inventory='))) return 'fleet';
  const name = acting?.name() ?? args.find((a) => !a.startsWith('-'));
  return (KINDS as readonly string[]).includes(name ?? '') ? (name as JsonKind) : 'pi-prep';
}
const KINDS = ['check', 'disks', 'linux', 'rpios', 'alpine', 'alpine-sd', 'token', 'kubeconfig', 'verify'] as const;

/**
 * Run a command (imported only now: startup time), or, when its flags name several hosts, the
 * fleet that runs it once per host.
 */
async function dispatch(inv: Invocation, flags: { host?: string[]; inventory?: string }, run: () => Promise<number>): Promise<void> {
  if (inv.acting && ((flags.host?.length ?? 0) > 1 || flags.inventory)) {
    const { fleetCommand } = await import('../fleet/fleet-command.js');
    inv.code = await fleetCommand(inv.acting, inv.rawArgs, flags, runCli);
    return;
  }
  inv.code = await run();
}

export function buildProgram(inv: Invocation = { rawArgs: [] }): Command {
  const program = new Command('pi-prep')
    .description('Prepare Raspberry Pis and other Linux machines to join a k0s cluster as workers')
    .version(version, '-V, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => write(`pi-prep: ${str.replace(/^error: /, '').trim()} (see pi-prep --help)\n`),
    })
    .addHelpText('after', `\nStart with: pi-prep check (is this machine fit for k0s?), pi-prep token (a join token from the controller),\nthen pi-prep alpine-sd, rpios or linux --join @join.token. Every command has --help with examples.\n\nDocs: ${DOCS} (online: ${ONLINE})`)
    .hook('preAction', (_program, command) => {
      inv.acting = command;
    });

  examples(onTarget(program.command('check')), 'check.md', [
    'pi-prep check                                  # this machine',
    'pi-prep check --host pi@raspberrypi.local      # a Pi over SSH',
    'pi-prep check --card /dev/sdb                  # what an alpine-sd card said on its first boot',
  ])
    .option('--json', 'machine-readable output: one JSON document on stdout (docs/json.md)')
    .option('-q, --quiet', 'print nothing; the exit code tells the result (0 ready, 1 not ready)')
    .option('--card <target>', "read an alpine-sd card's (or image's) first-boot state and log instead")
    .description('report whether this machine (or --root DIR) can run a k0s worker, or what a card said on its first boot; changes nothing')
    .action((opts) => (opts.card
      ? dispatch(inv, opts, async () => (await import('../commands/card-status.js')).cardStatusCommand(opts.card, opts))
      : dispatch(inv, opts, async () => (await import('../commands/check.js')).checkCommand(opts))));

  examples(common(readyFlags(joinFlags(onTarget(program.command('linux'))))), 'linux.md', [
    'sudo pi-prep linux --join @join.token --dry-run   # the plan for this machine, nothing changed',
    'sudo pi-prep linux --join @join.token             # install k0s and join',
    'pi-prep linux --host root@192.168.1.30 --join @join.token',
  ])
    .description('make any systemd/OpenRC Linux machine that is already fit for k0s a worker (Ubuntu, Debian, ...)')
    .option('--prepare-only', 'check and prepare the OS only, no k0s and no join: `k0sctl apply` installs k0s afterwards (docs/fleet.md)')
    .action((opts) => dispatch(inv, opts, async () => (await import('../commands/linux.js')).linuxCommand(opts)));

  examples(common(readyFlags(joinFlags(onTarget(program.command('rpios'))))), 'rpios.md', [
    'pi-prep rpios --host pi@raspberrypi.local --join @join.token --dry-run',
    'pi-prep rpios --host pi@raspberrypi.local --join @join.token --reboot',
    'pi-prep rpios --inventory pis.yaml --join @join.token      # many Pis (fleet.md)',
  ])
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
    .option('--prepare-only', 'kernel and cgroups only, no k0s and no join: `k0sctl apply` installs k0s afterwards (docs/fleet.md)')
    .action((opts) => dispatch(inv, opts, async () => (await import('../commands/rpios.js')).rpiosCommand(opts)));

  // pi-prep alpine: a running (diskless) Alpine Pi becomes a worker
  examples(common(readyFlags(joinFlags(onTarget(program.command('alpine'))))), 'alpine.md', [
    'pi-prep alpine --host root@pi-worker.local --join @join.token --dry-run',
    'pi-prep alpine --host root@pi-worker.local --join @join.token --reboot',
    'pi-prep alpine --join @join.token --reboot      # on the Pi itself, as root',
  ])
    .description('make a running Alpine Pi a worker: cgroups, data partition, k0s, saved with lbu (diskless Alpine), then join')
    .option('--data-device <disk>', "whole disk whose free space becomes the k0s data partition (default: the boot media's disk)")
    .option('--reboot', 'reboot when needed instead of stopping (never for --root)')
    .option('--prepare-only', 'cgroups, packages, data partition and persistence only, no k0s and no join: `k0sctl apply` installs k0s afterwards (docs/fleet.md)')
    .action((opts) => dispatch(inv, opts, async () => (await import('../commands/alpine.js')).alpineCommand(opts)));

  // Cards and images, with the safety model of docs/safety.md.
  examples(common(k0sSource(program.command('alpine-sd'))), 'alpine-sd.md', [
    'pi-prep disks                                   # which disk is the card?',
    'sudo pi-prep alpine-sd /dev/sdb --join @join.token --ssh-key ~/.ssh/id_ed25519.pub',
    "sudo pi-prep alpine-sd 'cards/pi-{n}.img' --count 10 --hostname 'pi-{n}' --join @join.token --dry-run  # ten images",
  ])
    .description('make an SD card or image file that boots a Pi into Alpine aarch64 and joins k0s (erases TARGET)')
    .argument('<target...>', 'a whole disk (/dev/sdX, /dev/mmcblkN) or an image file path (created with --size); several make a batch')
    .option('--tarball <file>', 'an alpine-rpi-*-aarch64.tar.gz on this machine')
    .option('--alpine-version <version>', 'download this release (3.x.y or latest), SHA-256 checked, cached')
    .option('--alpine-mirror <url>', "Alpine mirror (default: Alpine's CDN)")
    .option('--hostname <name>', "host name of the Pi (and of its apkovl); once per card, or a pattern with {n} for a batch ('pi-{n}'); default pi-worker-<4 random hex digits>, one per card", (v: string, all: string[] = []) => [...all, v])
    .option('--count <n>', "with one TARGET holding {n} ('cards/pi-{n}.img'): that many image files, numbered from 1")
    .option('--ssh-key <file>', "a public key for root's authorized_keys (repeat for more); default: your ~/.ssh/*.pub, or your ssh agent's keys", (v: string, all: string[] = []) => [...all, v])
    .option('--no-ssh', 'a card without SSH (no keys, no sshd): only when you mean it')
    .option('--wifi-ssid <ssid>', 'Wi-Fi network to join on first boot')
    .option('--wifi-psk <passphrase>', 'Wi-Fi passphrase, or @FILE holding it (kept out of the process list)')
    .option('--wifi-country <cc>', 'Wi-Fi regulatory country, e.g. DE')
    .option('--size <size>', 'size of a new image file (default 2G; a disk is used whole)')
    .option('--boot-size <size>', 'FAT32 boot partition size', '256M')
    .option('--data-size <size>', 'ext4 data partition size (default: the rest)')
    .option('-y, --yes', 'erase a disk without asking: TARGET must then be the device itself (/dev/sdb, not a link to it)')
    .option('--loop', 'allow a loop device as TARGET')
    .option('--force', 'overwrite an existing file that is not a disk image')
    .action((target, opts) => dispatch(inv, opts, async () => (await import('../commands/alpine-sd.js')).alpineSdCommand(target, opts)));

  examples(program.command('disks'), 'disks.md', ['pi-prep disks', 'pi-prep disks --json'])
    .description('list disks with the safety verdict alpine-sd would give each; changes nothing')
    .option('--json', 'machine-readable output: one JSON document on stdout (docs/json.md)')
    .option('--loop', 'list loop devices too')
    .action((opts) => dispatch(inv, opts, async () => (await import('../commands/disks.js')).disksCommand(opts)));

  // Controller helpers: run on the k0s controller over SSH, results written here.
  const controller = (cmd: Command) => cmd
    .requiredOption('--controller <[user@]host[:port]>', 'the k0s controller, reached over SSH')
    .option('--ssh-option <key=value>', 'passed to ssh as -o KEY=VALUE; repeatable', repeat)
    .option('--dry-run', 'say what would be run and written; change nothing')
    .option('--json', 'machine-readable output: one JSON document on stdout (docs/json.md)')
    .option('-q, --quiet', 'print nothing but errors');

  examples(controller(program.command('token')), 'controller.md', [
    'pi-prep token --controller root@controller.lan                   # writes join.token (0600)',
    'pi-prep token --controller root@controller.lan --expiry 24h -o pis.token',
  ])
    .description('create a worker join token on the controller and write it here, mode 0600 (docs/controller.md)')
    .option('--expiry <duration>', 'how long the token is valid (k0s --expiry, e.g. 1h, 24h)', '1h')
    .option('-o, --output <file>', 'where to write the token', 'join.token')
    .option('--print', 'also print the token on stdout (it is a secret)')
    .action((opts) => dispatch(inv, opts, async () => (await import('../commands/token.js')).tokenCommand(opts)));

  examples(controller(program.command('kubeconfig')), 'controller.md', [
    'pi-prep kubeconfig --controller root@controller.lan -o ~/.kube/config',
    'pi-prep kubeconfig --controller root@controller.lan | kubectl --kubeconfig /dev/stdin get nodes',
  ])
    .description("fetch the controller's admin kubeconfig, its localhost replaced by the controller's address")
    .option('-o, --output <file>', 'write it to FILE (mode 0600) instead of stdout')
    .option('--address <addr>', 'the address the API is reachable at (default: the host ssh connects to)')
    .action((opts) => dispatch(inv, opts, async () => (await import('../commands/kubeconfig.js')).kubeconfigCommand(opts)));

  examples(program.command('completion'), 'completion.md', [
    'pi-prep completion bash | sudo tee /etc/bash_completion.d/pi-prep',
    'pi-prep completion zsh > "${fpath[1]}/_pi-prep"',
    'pi-prep completion fish > ~/.config/fish/completions/pi-prep.fish',
  ])
    .description('print a shell completion script for bash, zsh or fish')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh', 'fish']))
    .action(async (shell: 'bash' | 'zsh' | 'fish') => {
      const { completionScript } = await import('./completion.js');
      process.stdout.write(completionScript(shell, buildProgram()));
    });

  // verify: the cluster checked end to end, against its API.
  examples(program.command('verify'), 'verify.md', [
    'pi-prep verify --kubeconfig admin.conf              # nodes, one whoami pod per worker, each reached',
    'pi-prep verify --kubeconfig admin.conf --json',
  ])
    .description("check the cluster end to end: nodes Ready, a multi-arch whoami pod on each worker, each reached by IP from a test pod (docs/verify.md)")
    .requiredOption('--kubeconfig <file>', 'admin kubeconfig of the cluster (pi-prep kubeconfig -o FILE)')
    .option('--image <image>', 'the multi-arch image of the DaemonSet (it must answer HTTP on port 80 with a `Hostname:` line)', 'traefik/whoami:v1.10')
    .option('--probe-image <image>', 'the image of the test pod (needs sh and wget)', 'busybox:1.36')
    .option('--timeout <seconds>', 'how long to wait for the pods and the test pod', '180')
    .addOption(new Option('--poll <seconds>', 'seconds between API polls').default('2').hideHelp())
    .option('--json', 'machine-readable output')
    .action((opts) => dispatch(inv, opts, async () => (await import('../commands/verify.js')).verifyCommand(opts)));

  return program;
}

/** Run one pi-prep command line to its exit code (a fleet runs one per host, in this process). */
export async function runCli(argv: string[], inv: Invocation = { rawArgs: argv.slice(2) }): Promise<number> {
  const program = buildProgram(inv);
  try {
    await program.parseAsync(argv);
    return inv.code ?? 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
      const kind = ok ? undefined : jsonKind(inv);
      if (kind) {
        // commander has written the line on stderr; the envelope goes to stdout.
        const [{ printJsonError }, { UsageError }] = await Promise.all([import('../core/json-output.js'), import('../core/errors.js')]);
        printJsonError(kind, new UsageError(err.message.replace(/^error: /, '')));
      }
      return ok ? 0 : 2;
    }
    const { reportError } = await import('./report-error.js');
    return reportError(err, jsonKind(inv));
  }
}

export async function main(argv = process.argv): Promise<void> {
  const inv: Invocation = { rawArgs: argv.slice(2) };
  const { exitOnSignals, stoppedMessage, SIGNAL_EXIT } = await import('../core/cleanup.js');
  // Under --json a signal's outcome is an envelope too, printed after the cleanup.
  exitOnSignals(undefined, async (sig) => {
    const kind = jsonKind(inv);
    if (kind) (await import('../core/json-output.js')).printJsonStopped(kind, stoppedMessage(sig), SIGNAL_EXIT[sig]);
  });
  process.exitCode = await runCli(argv, inv);
}

await main();
