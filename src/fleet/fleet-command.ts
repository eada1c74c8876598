import type { Command } from 'commander';
import { ExitCode, UsageError } from '../core/errors.js';
import { printJson, type Envelope } from '../core/json-output.js';
import { addSecret, redact } from '../core/redact.js';
import { hostFromFlag, readInventory, type FleetHost, type Skipped } from './inventory.js';
import { pinnedBastions, proxyCommand } from './jump-host.js';
import { routeHostOutput } from './host-output.js';
import { runHost, type HostResult, type RunCli } from './run-host.js';
import { Semaphore } from '../targets/semaphore.js';
import { renderSummary } from './summary.js';
import { groupNeedsInventory } from '../commands/options.js';

/** Flags that pick the fleet itself; they are not handed on to each host's run. */
const FLEET_FLAGS = ['--host', '--inventory', '--parallel', '--group'];
/** Flags an inventory may not set per host. */
const NOT_PER_HOST = new Set(['host', 'inventory', 'parallel', 'group', 'root']);

export interface FleetFlags {
  host?: string[];
  inventory?: string;
  parallel?: string;
  group?: string[];
  json?: boolean;
}

/**
 * Run one command on many hosts, at most --parallel at a time, all in this process: each host's
 * run parses the command line a single-host run would (runCli), with its own SSH connection,
 * output and exit code. Their output is shown line by line with the host's name in front; a table
 * sums up at the end. One host failing stops no other.
 */
export async function fleetCommand(command: Command, rawArgs: string[], flags: FleetFlags, runCli: RunCli): Promise<number> {
  const groups = (flags.group ?? []).flatMap((g) => g.split(',')).filter(Boolean);
  groupNeedsInventory(flags);
  const inventory = flags.inventory ? await readInventory(flags.inventory, groups) : undefined;
  const hosts = [...(flags.host ?? []).map(hostFromFlag), ...(inventory?.hosts ?? [])];
  const skipped = inventory?.skipped ?? [];
  const parallel = Number(flags.parallel ?? 4);
  if (!Number.isInteger(parallel) || parallel < 1) throw new UsageError(`--parallel ${flags.parallel} is not a whole number of hosts: use e.g. --parallel 4`);
  if (rawArgs.some((a) => a === '--root' || a.startsWith('--root='))) throw new UsageError('--root names one local directory and cannot be combined with a fleet: drop --root or the hosts');
  checkNames(hosts);
  const known = new Map(command.options.map((o) => [o.long?.replace(/^--/, ''), o]));
  for (const h of hosts) {
    for (const k of Object.keys(h.flags)) {
      const opt = known.get(k);
      if (!opt || NOT_PER_HOST.has(k)) throw new UsageError(`the inventory sets "${k}" for host ${h.name}, which pi-prep ${command.name()} has no per-host flag for: see pi-prep ${command.name()} --help`);
    }
  }

  const shared = stripFleetFlags(rawArgs.slice(rawArgs.indexOf(command.name()) + 1));
  // Per-host ssh options go first: ssh keeps the first value it is given for an option.
  // A token given as text (on the command line or in the inventory) goes to each host's run as
  // its input (what its `--join -` reads), never into any argv.
  const sharedSsh = sshOptionsIn(shared);
  const runOf = (h: FleetHost, pinnedBastion?: string) => {
    const jump = h.jump ? [proxyCommand(h.jump, [...h.sshOptions, ...sharedSsh], h.name, pinnedBastion)] : [];
    return tokenToStdin([command.name(), ...[...jump, ...h.sshOptions].flatMap((o) => ['--ssh-option', o]), ...shared, ...hostArgs(h)]);
  };
  hosts.forEach((h) => runOf(h)); // a bastion setting ssh cannot take is a usage error before anything is written
  const bastions = await pinnedBastions(hosts.map((h) => h.jump));
  try {
    const runs = hosts.map((h, i) => runOf(h, bastions.files[i]));
    const argvs = runs.map((r) => r.argv);
    // `--join -` reads the token once here and hands it to each host's run as its input.
    const stdin = runs.some((r) => r.token === undefined && readsStdin(r.argv)) ? await readAllStdin() : undefined;

    const json = Boolean(flags.json);
    if (!json) {
      for (const s of skipped) process.stderr.write(`pi-prep: skipping ${s.name}: ${s.why}\n`);
      process.stderr.write(`pi-prep: ${command.name()} on ${hosts.length} hosts${inventory ? ` (${inventory.format} inventory)` : ''}, ${Math.min(parallel, hosts.length)} at a time\n`);
    }
    const width = Math.max(...hosts.map((h) => h.name.length));
    routeHostOutput();
    // Each running host may hold an exit listener or two (its target lock, ...): not a leak.
    process.setMaxListeners(Math.max(process.getMaxListeners(), 10 + 2 * parallel));
    const slots = new Semaphore(parallel);
    const results = await Promise.all(hosts.map((h, i) => slots.with(() =>
      runHost(runCli, h, argvs[i]!, { input: runs[i]!.token ?? (readsStdin(argvs[i]!) ? stdin : undefined), json, prefix: json ? '' : `${h.name.padEnd(width)} | ` }),
    )));

    if (json) {
      printJson('fleet', results.every((r) => r.exitCode === 0), { command: command.name(), hosts: results.map(jsonEntry), skipped: skipped.map(skippedEntry) });
    } else {
      process.stdout.write(redact(renderSummary(results)));
    }
    return fleetExitCode(results);
  } finally {
    await bastions.remove();
  }
}

/** 0 when every host succeeded; otherwise the failing hosts' code when they agree, else 1. */
export function fleetExitCode(results: HostResult[]): number {
  const codes = new Set(results.filter((r) => r.exitCode !== 0).map((r) => r.exitCode));
  if (codes.size === 0) return ExitCode.ok;
  if (codes.size === 1) {
    const [code] = codes;
    if (code === ExitCode.usage || code === ExitCode.refused) return code;
  }
  return ExitCode.failed;
}

function checkNames(hosts: FleetHost[]): void {
  const seen = new Set<string>();
  for (const h of hosts) {
    if (seen.has(h.name)) throw new UsageError(`host ${h.name} is named twice: give each host once`);
    seen.add(h.name);
  }
}

/** Remove --host/--inventory/--parallel (both `--flag value` and `--flag=value`). */
export function stripFleetFlags(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (FLEET_FLAGS.includes(a)) {
      i++;
      continue;
    }
    if (FLEET_FLAGS.some((f) => a.startsWith(`${f}=`))) continue;
    out.push(a);
  }
  return out;
}

function hostArgs(h: FleetHost): string[] {
  const { user, host, port } = h.address;
  const spec = `${user ? `${user}@` : ''}${host.includes(':') ? `[${host}]` : host}${port ? `:${port}` : ''}`;
  const out = ['--host', spec];
  if (h.ssh?.hostKey) out.push('--host-key', h.ssh.hostKey);
  if (h.ssh?.sshConfig) out.push('--ssh-config', h.ssh.sshConfig);
  for (const [k, v] of Object.entries(h.flags)) {
    if (v === true) out.push(`--${k}`);
    else for (const one of [v].flat()) out.push(`--${k}`, one);
  }
  return out;
}

/** The values of every --ssh-option in argv. */
function sshOptionsIn(argv: string[]): string[] {
  return argv.flatMap((a, i) => (a === '--ssh-option' && argv[i + 1] !== undefined ? [argv[i + 1]!] : a.startsWith('--ssh-option=') ? [a.slice('--ssh-option='.length)] : []));
}

function skippedEntry(s: Skipped): Record<string, string> {
  return { host: s.name, reason: s.why };
}

/** `--join TOKEN` becomes `--join -` with TOKEN for stdin (the last --join wins, as in commander). */
export function tokenToStdin(argv: string[]): { argv: string[]; token?: string } {
  let token: string | undefined;
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = a === '--join' ? argv[i + 1] : a.startsWith('--join=') ? a.slice('--join='.length) : undefined;
    if (value === undefined) {
      out.push(a);
      continue;
    }
    if (a === '--join') i++;
    if (value === '-' || value.startsWith('@')) {
      token = undefined;
      out.push('--join', value);
    } else {
      addSecret(value);
      token = value;
      out.push('--join', '-');
    }
  }
  return token === undefined ? { argv: out } : { argv: out, token };
}

function readsStdin(argv: string[]): boolean {
  return argv.some((a, i) => (a === '--join' && argv[i + 1] === '-') || a === '--join=-');
}

async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function jsonEntry(r: HostResult): Record<string, unknown> {
  let result: Envelope | undefined;
  try {
    result = r.stdout.trim() ? (JSON.parse(r.stdout) as Envelope) : undefined;
  } catch {
    result = undefined;
  }
  const error = r.exitCode === 0 ? undefined : (result && failureOf(result)) ?? r.error;
  return { host: r.name, address: r.address, exitCode: r.exitCode, seconds: r.seconds, ...(error ? { error } : {}), ...(result ? { result } : {}) };
}

/** Why a host's run failed, from its own envelope: its error, or the first task that failed or is blocked. */
function failureOf(result: Envelope): string | undefined {
  if ('error' in result) return result.error.message;
  const tasks = (result.data as { tasks?: { title: string; status: string; why: string; error?: string }[] } | undefined)?.tasks ?? [];
  const bad = tasks.find((t) => t.status === 'failed' || t.status === 'blocked');
  return bad ? `${bad.title}: ${bad.error ?? bad.why}` : undefined;
}
