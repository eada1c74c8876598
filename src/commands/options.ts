import { access, constants, realpath, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import type { JoinOptions } from '../steps/k0s/join.js';
import { readJoinArg } from '../lib/k0s/token.js';
import type { Target } from '../targets/target.js';
import type { Task } from '../run/task.js';

/** Flags every acting command shares (src/cli/main.ts `common`). */
export interface CommonFlags {
  dryRun?: boolean;
  json?: boolean;
  /** Nothing on stdout but --json's envelope; errors still go to stderr. */
  quiet?: boolean;
  yes?: boolean;
  verbose?: boolean;
  logFile?: string;
  root?: string;
  /** `--host [USER@]HOST[:PORT]` (repeatable; more than one is a fleet, see src/fleet/). */
  host?: string | string[];
  sshOption?: string[];
  /** `--ssh-config FILE` (ssh -F) and `--host-key KEY` (the only key accepted): see src/targets/ssh-connection.ts. */
  sshConfig?: string;
  hostKey?: string;
  inventory?: string;
  group?: string[];
  parallel?: string;
}

export interface JoinFlags {
  join?: string;
  k0sVersion?: string;
  k0sMirror?: string;
  k0sBinary?: string;
  checkServer?: boolean;
  waitTimeout?: string;
  /** Prepare the OS, leave k0s to another tool (k0sctl apply). */
  prepareOnly?: boolean;
}

/** --group only means something with --inventory (a single host and a fleet of --host alike). */
export function groupNeedsInventory(flags: { group?: string[]; inventory?: string }): void {
  if (flags.group?.length && !flags.inventory) throw new UsageError('--group picks hosts of an Ansible inventory: add --inventory FILE, or drop --group');
}

/** The target named by the flags: --host over SSH, --root DIR, or this machine. */
export async function targetFrom(flags: CommonFlags): Promise<Target> {
  const hosts = [flags.host ?? []].flat();
  groupNeedsInventory(flags);
  if (hosts.length > 0 || flags.inventory) {
    // Over SSH the local user needs no root: the remote side uses root or sudo -n.
    if (hosts.length !== 1 || flags.inventory) throw new UsageError('several hosts are a fleet: pi-prep runs them from the command line (give --host once here)');
    if (flags.root) throw new UsageError('--root and --host name different machines: give one of them');
    const { sshTargetFor } = await import('../targets/ssh-target.js');
    return sshTargetFor(hosts[0]!, flags.sshOption, '--host', { sshConfig: flags.sshConfig, hostKey: flags.hostKey });
  }
  if (!flags.dryRun && process.getuid?.() !== 0) {
    throw new UsageError('pi-prep changes system files and needs root: run it with sudo, or add --dry-run to see the plan');
  }
  if (flags.root) {
    const st = await stat(flags.root).catch(() => undefined);
    if (!st?.isDirectory()) throw new UsageError(`--root ${flags.root} is not a directory: give the mount point of the root filesystem`);
    const { RootTarget } = await import('../targets/root-target.js');
    // One name per directory, for the lock: a root reached through a link is the same root.
    return new RootTarget(await realpath(flags.root));
  }
  const { LocalTarget } = await import('../targets/local-target.js');
  return new LocalTarget();
}

/** Decode and validate --join and the k0s source flags; nothing is changed if they are bad. */
export async function joinOptionsFrom(flags: JoinFlags, required: boolean, command: string): Promise<JoinOptions | undefined> {
  if (flags.prepareOnly) {
    if (flags.join) throw new UsageError('--prepare-only leaves k0s and the join to k0sctl: drop --join, or drop --prepare-only');
    return undefined;
  }
  if (!flags.join) {
    if (required) throw new UsageError(`pi-prep ${command} needs --join @FILE (or TOKEN, or - for stdin): create a token on the controller with \`k0s token create --role worker\``);
    return undefined;
  }
  if (!flags.join.startsWith('@') && flags.join !== '-') {
    process.stderr.write('pi-prep: warning: a token given on the command line is visible in the process list; prefer --join @FILE or --join -\n');
  }
  const token = await readJoinArg(flags.join);
  const waitSeconds = Number(flags.waitTimeout ?? 120);
  if (!Number.isFinite(waitSeconds) || waitSeconds <= 0) throw new UsageError(`--wait-timeout ${flags.waitTimeout} is not a number of seconds: use e.g. --wait-timeout 300`);
  if (flags.k0sMirror) mirrorArg(flags.k0sMirror, '--k0s-mirror');
  return {
    token,
    source: { version: flags.k0sVersion, mirror: flags.k0sMirror, binary: flags.k0sBinary },
    waitSeconds,
    checkServer: flags.checkServer,
  };
}

/** A file pi-prep will write (--log-file, -o): its directory must exist and be writable, checked before anything runs. */
export async function writableFileArg(path: string, flag: string): Promise<void> {
  const existing = await stat(path).catch(() => undefined);
  if (existing && !existing.isFile()) throw new UsageError(`${flag} ${path} is a ${existing.isDirectory() ? 'directory' : 'special file'}: give a file path, e.g. ${flag} ${join(path, 'pi-prep.log')}`);
  const dir = dirname(resolve(path));
  const ok = (await stat(dir).catch(() => undefined))?.isDirectory() && (await access(dir, constants.W_OK).then(() => true, () => false));
  if (!ok) throw new UsageError(`${flag} ${path}: ${dir} is not a writable directory: create it or pick another path`);
}

/** --k0s-mirror, --alpine-mirror: an http(s) URL, nothing else (it ends up in files and requests). */
export function mirrorArg(url: string, flag: string): string {
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    u = undefined;
  }
  if (!u || !/^https?:$/.test(u.protocol) || !u.hostname || /\s/.test(url)) throw new UsageError(`${flag} ${url} is not an http(s) URL: use e.g. ${flag} https://mirror.example/path`);
  return url.replace(/\/+$/, '');
}

/** --kubeconfig / --ready-timeout: wait for the node to be Ready after the join. */
export interface ReadyFlags {
  kubeconfig?: string;
  readyTimeout?: string;
}

/** The node-Ready task when --kubeconfig is given; its kubeconfig is read now, before anything runs. */
export async function readyTasks(flags: ReadyFlags, joining: boolean, target: Target): Promise<Task[]> {
  if (!flags.kubeconfig) return [];
  if (!joining) throw new UsageError('--kubeconfig waits for the node after a join: add --join, or drop --kubeconfig');
  if (!target.liveServices) throw new UsageError(`--kubeconfig waits for a running node, and ${target.label} only runs k0s once it boots: drop --kubeconfig`);
  const seconds = Number(flags.readyTimeout ?? 300);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError(`--ready-timeout ${flags.readyTimeout} is not a number of seconds: use e.g. --ready-timeout 600`);
  const { kubeFrom } = await import('../lib/kube/client.js');
  const { nodeReadyTask } = await import('../steps/k0s/node-ready.js');
  return [nodeReadyTask({ kube: await kubeFrom(flags.kubeconfig), seconds, pollSeconds: Math.min(2, seconds / 4) })];
}
