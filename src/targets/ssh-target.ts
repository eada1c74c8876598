import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { boundCommand, TIMED_OUT_EXIT } from './command-bounds.js';
import { CommandError, RefusedError, TaskFailedError } from '../core/errors.js';
import { quoteArgv } from '../core/quote.js';
import { redact } from '../core/redact.js';
import { probeFacts, type Facts } from './facts.js';
import { kernelConfigPaths } from './probes/kernel-config.js';
import { formatAddress, type SshAddress } from './ssh-spec.js';
import type { FileInfo, RunOptions, RunResult, Target, WriteOptions } from './target.js';

export interface SshTargetOptions extends SshAddress {
  /** `--ssh-option`s, given to ssh before pi-prep's own defaults (ssh keeps the first value). */
  options?: readonly string[];
  /** One connection per host, shared by every command (default). Off only for measurements. */
  multiplex?: boolean;
}

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** sshd allows 10 sessions per connection by default (MaxSessions); stay below it. */
const MAX_SESSIONS = 8;
/** Exit code the file scripts use for "no such file". */
const MISSING = 3;

/**
 * Fixed sh scripts for file operations; paths and modes arrive as "$1".."$3", never inside the
 * script text. Writes are atomic: temp file in the same directory, sync, mv.
 */
const SCRIPTS = {
  read: '[ -e "$1" ] || exit 3; exec cat -- "$1"',
  stat: '[ -e "$1" ] || [ -L "$1" ] || exit 3; exec stat -c "%f %s %u %g" -- "$1"',
  write: [
    'set -e',
    // Write through a symlink, as the local and root targets do (/etc/resolv.conf -> /run/...).
    'p=$1; [ -L "$p" ] && p=$(readlink -f -- "$p")',
    'd=${p%/*}; [ -n "$d" ] || d=/',
    'mkdir -p -- "$d"',
    // A planted backup (a link to elsewhere) would stand in for the real one: refuse (exit 4).
    'if [ -n "$3" ] && { [ -L "$p.pi-prep.bak" ] || { [ -e "$p.pi-prep.bak" ] && [ ! -f "$p.pi-prep.bak" ]; }; }; then exit 4; fi',
    // Temps a killed run left beside this file (one may hold a token copy): their shell is gone.
    'for f in "$d/.${p##*/}".pi-prep-*.tmp; do n=${f##*.pi-prep-}; n=${n#bak-}; n=${n%.tmp}; case $n in ""|*[!0-9]*) continue;; esac; kill -0 "$n" 2>/dev/null || rm -f -- "$f"; done',
    't="$d/.${p##*/}.pi-prep-$$.tmp"; b="$d/.${p##*/}.pi-prep-bak-$$.tmp"',
    'trap \'rm -f -- "$t" "$b"\' EXIT',
    'm=$2',
    'if [ -z "$m" ]; then if [ -e "$p" ]; then m=$(stat -L -c %a -- "$p"); else m=644; fi; fi',
    'if [ -n "$3" ] && [ -e "$p" ] && [ ! -e "$p.pi-prep.bak" ]; then cp -p -- "$p" "$b"; sync "$b" || sync; mv -f -- "$b" "$p.pi-prep.bak"; fi',
    '(umask 077; cat > "$t")',
    'chmod "$m" "$t"',
    'sync "$t" || sync',
    'mv -f -- "$t" "$p"',
    'trap - EXIT',
    'sync "$d" || true',
  ].join('\n'),
  mkdir: 'mkdir -p -- "$1" && chmod "$2" "$1"',
  chmod: 'chmod "$2" "$1"',
  remove: 'rm -rf -- "$1"',
  readDir: 'cd -- "$1" || exit 0; for f in * .*; do case $f in .|..) continue;; esac; [ -e "$f" ] || [ -L "$f" ] || continue; printf "%s\\0" "$f"; done',
  sha256: '[ -e "$1" ] || exit 3; exec sha256sum -- "$1"',
  free: 'p=$1; while [ ! -e "$p" ]; do p=${p%/*}; [ -n "$p" ] || p=/; done; exec stat -f -c "%a %S" -- "$p"',
  cwd: 'cd -- "$1" || exit 1; shift; exec "$@"',
  /**
   * What probing facts reads, in one round trip instead of ~25: `uname`, free space where k0s
   * keeps its data, then per path (@R@ = kernel release) its stat line and, for the paths
   * before "--", its contents in base64.
   */
  prefetch: [
    'r=; [ -r /proc/sys/kernel/osrelease ] && r=$(cat /proc/sys/kernel/osrelease); [ -n "$r" ] || r=$(uname -r)',
    'printf "M %s\\n" "$(uname -m)"; printf "R %s\\n" "$r"',
    'p=/var/lib/k0s; while [ ! -e "$p" ]; do p=${p%/*}; [ -n "$p" ] || p=/; done; printf "F %s\\n" "$(stat -f -c "%a %S" -- "$p")"',
    'read=1',
    'for p in "$@"; do',
    '  if [ "$p" = -- ]; then read=; continue; fi',
    '  case $p in *@R@*) p="${p%%@R@*}$r${p#*@R@}";; esac',
    '  printf "P %s\\n" "$p"',
    '  if [ -e "$p" ] || [ -L "$p" ]; then',
    '    printf "S %s\\n" "$(stat -c "%f %s %u %g" -- "$p")"',
    '    if [ -n "$read" ] && [ -f "$p" ] && [ -r "$p" ]; then base64 < "$p" || exit 1; fi',
    '  fi',
    '  printf ".\\n"',
    'done',
  ].join('\n'),
} as const;

/** The paths probeFacts (src/targets/facts.ts) looks at; a path missing here is simply read on demand. */
const FACT_READS = [
  '/etc/os-release', '/usr/lib/os-release', '/proc/device-tree/model', '/proc/device-tree/compatible', '/proc/cpuinfo',
  '/sys/fs/cgroup/cgroup.controllers', '/proc/cgroups', '/proc/meminfo', '/etc/hosts', '/proc/sys/kernel/osrelease',
  '/boot/firmware/cmdline.txt', '/boot/cmdline.txt', ...kernelConfigPaths('@R@'),
];
const FACT_STATS = ['/sbin/openrc', '/run/systemd/system', '/lib/systemd/systemd', '/usr/lib/systemd/systemd', '/sbin/openrc-run'];

interface Raw {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
  timedOut?: string;
}

/**
 * A machine reached with the system OpenSSH client, so ~/.ssh/config, agents and jump hosts work
 * as they do for the user. One multiplexed connection per host (ControlMaster in a private
 * socket directory); `sudo -n` when the login is not root; strict host key checking unless the
 * user says otherwise. File contents travel on stdin, never in argv.
 */
export class SshTarget implements Target {
  readonly kind = 'ssh' as const;
  readonly liveServices = true;
  readonly label: string;
  private socketDir?: string;
  private ready?: Promise<void>;
  private sudo = false;
  private firstBatch?: Raw;
  private factsCache?: Promise<Facts>;
  /** Answers fetched in one batch for probing facts; dropped at the first change made through this target. */
  private cache = new Map<string, { info?: FileInfo; data?: Buffer; free?: number; stdout?: string }>();
  private active = 0;
  private waiting: (() => void)[] = [];

  constructor(readonly opts: SshTargetOptions) {
    this.label = formatAddress(opts);
  }

  // ---- Target ----------------------------------------------------------------------------

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const cached = opts.readOnly && !opts.cwd && !opts.env ? this.cache.get(`run:${argv.join(' ')}`)?.stdout : undefined;
    if (cached !== undefined) return { exitCode: 0, stdout: cached, stderr: '' };
    if (!opts.readOnly) this.forget();
    await this.connect();
    let cmd = [...argv];
    if (opts.cwd) cmd = ['sh', '-c', SCRIPTS.cwd, 'sh', opts.cwd, ...cmd];
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const raw = await this.exec(['env', `PATH=${PATH}`, ...env, ...cmd], opts);
    const result = { exitCode: raw.exitCode, stdout: raw.stdout.toString('utf8'), stderr: raw.stderr, timedOut: raw.timedOut };
    if (result.exitCode !== 0 && !opts.allowFailure) throw new CommandError(argv, result);
    return result;
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    const hit = this.cache.get(path);
    if (hit && (!hit.info || hit.data)) return hit.data;
    const r = await this.script('read', [path]);
    return r.exitCode === MISSING ? undefined : this.ok(r, 'read', path).stdout;
  }

  async writeFile(path: string, data: string | Buffer, opts: WriteOptions = {}): Promise<void> {
    this.forget();
    this.ok(this.planted(await this.script('write', [path, mode(opts.mode), opts.backup ? '1' : ''], { input: data }), path), 'write', path);
  }

  async putFile(localPath: string, path: string, opts: WriteOptions = {}): Promise<void> {
    this.forget();
    this.ok(this.planted(await this.script('write', [path, mode(opts.mode), opts.backup ? '1' : ''], { inputFile: localPath }), path), 'copy to', path);
  }

  /** The write script's exit 4: PATH.pi-prep.bak is there and is not a plain file. */
  private planted(r: Raw, path: string): Raw {
    if (r.exitCode === 4) throw new RefusedError(`${path}.pi-prep.bak on ${this.label} is a symlink or not a plain file, not pi-prep's backup: remove it, then run again`);
    return r;
  }

  async stat(path: string): Promise<FileInfo | undefined> {
    const hit = this.cache.get(path);
    if (hit) return hit.info;
    const r = await this.script('stat', [path]);
    if (r.exitCode === MISSING) return undefined;
    return parseStat(this.ok(r, 'stat', path).stdout.toString('utf8'));
  }

  async mkdir(path: string, m = 0o755): Promise<void> {
    this.forget();
    this.ok(await this.script('mkdir', [path, mode(m)]), 'create directory', path);
  }

  async chmod(path: string, m: number): Promise<void> {
    this.forget();
    this.ok(await this.script('chmod', [path, mode(m)]), 'chmod', path);
  }

  async remove(path: string): Promise<void> {
    this.forget();
    this.ok(await this.script('remove', [path]), 'remove', path);
  }

  async readDir(path: string): Promise<string[]> {
    const out = this.ok(await this.script('readDir', [path]), 'list', path).stdout.toString('utf8');
    return out.split('\0').filter(Boolean).sort();
  }

  async sha256(path: string): Promise<string | undefined> {
    const r = await this.script('sha256', [path]);
    if (r.exitCode === MISSING) return undefined;
    return this.ok(r, 'hash', path).stdout.toString('utf8').trim().split(/\s+/)[0];
  }

  async freeBytes(path: string): Promise<number | undefined> {
    const hit = this.cache.get(`free:${path}`);
    if (hit) return hit.free;
    const r = await this.script('free', [path]);
    if (r.exitCode !== 0) return undefined;
    const [avail, bsize] = r.stdout.toString('utf8').trim().split(/\s+/).map(Number);
    return Number.isFinite(avail) && Number.isFinite(bsize) ? avail! * bsize! : undefined;
  }

  facts(): Promise<Facts> {
    this.factsCache ??= this.prefetch().then(() => probeFacts(this));
    return this.factsCache;
  }

  /** One round trip for what probing reads; when it fails (no base64 there), probing reads path by path. */
  private async prefetch(): Promise<void> {
    await this.connect();
    // A root login already brought the batch back with its `id -u` (open()): no second round trip.
    const r = this.firstBatch ?? (await this.exec(['sh', '-c', SCRIPTS.prefetch, 'sh', ...FACT_READS, '--', ...FACT_STATS]));
    this.firstBatch = undefined;
    if (r.exitCode !== 0) return;
    const cache = new Map<string, { info?: FileInfo; data?: Buffer; free?: number; stdout?: string }>();
    let path: string | undefined;
    let info: FileInfo | undefined;
    let b64: string[] = [];
    for (const line of r.stdout.toString('utf8').split('\n')) {
      const [tag, rest] = [line.slice(0, 2), line.slice(2)];
      if (path === undefined && tag === 'M ') cache.set('run:uname -m', { stdout: rest + '\n' });
      else if (path === undefined && tag === 'R ') cache.set('run:uname -r', { stdout: rest + '\n' });
      else if (path === undefined && tag === 'F ') {
        const [avail, bsize] = rest.split(' ').map(Number);
        if (Number.isFinite(avail) && Number.isFinite(bsize)) cache.set('free:/var/lib/k0s', { free: avail! * bsize! });
      } else if (tag === 'P ') {
        [path, info, b64] = [rest, undefined, []];
      } else if (path !== undefined && tag === 'S ') {
        info = parseStat(rest);
      } else if (path !== undefined && line === '.') {
        const isRead = FACT_READS.includes(path) || !FACT_STATS.includes(path);
        cache.set(path, info ? { info, ...(isRead && info.type === 'file' ? { data: Buffer.from(b64.join(''), 'base64') } : {}) } : {});
        path = undefined;
      } else if (path !== undefined) {
        b64.push(line);
      }
    }
    this.cache = cache;
  }

  async close(): Promise<void> {
    const dir = this.socketDir;
    this.socketDir = undefined;
    this.ready = undefined;
    openTargets.delete(this);
    if (!dir) return;
    await execa('ssh', [...this.sshArgs(dir), '-O', 'exit', '--', this.opts.host], { reject: false, stdin: 'ignore' });
    await rm(dir, { recursive: true, force: true });
  }

  /** A change through this target makes every prefetched answer stale. */
  private forget(): void {
    this.cache.clear();
    this.firstBatch = undefined;
  }

  // ---- connection ------------------------------------------------------------------------

  /** Open the shared connection (the first command starts the master) and learn whether sudo is needed. */
  private connect(): Promise<void> {
    this.ready ??= this.open().catch(async (err) => {
      // A failed connect leaves no master and no socket directory behind.
      await this.close();
      throw err;
    });
    return this.ready;
  }

  private async open(): Promise<void> {
    if (this.opts.multiplex !== false) {
      this.socketDir = await mkdtemp(join(tmpdir(), 'pi-prep-ssh-'));
      openTargets.add(this);
    }
    // The first round trip learns who we are and, for root, also fetches the facts batch.
    const who = await this.raw(['sh', '-c', `id -u; [ "$(id -u)" = 0 ] || exit 0\n${SCRIPTS.prefetch}`, 'sh', ...FACT_READS, '--', ...FACT_STATS]);
    const out = who.stdout.toString('utf8');
    const uid = /^(\d+)\n/.exec(out)?.[1];
    if (uid === undefined) throw this.connectError(who);
    if (uid === '0') {
      this.firstBatch = { ...who, stdout: Buffer.from(out.slice(uid.length + 1)) };
      return;
    }
    this.sudo = true;
    const s = await this.raw(['sudo', '-n', 'true']);
    if (s.exitCode === 0) return;
    if (s.exitCode === 255) throw this.connectError(s);
    const user = this.opts.user ?? 'the login user';
    if (/password is required|terminal is required|askpass/i.test(s.stderr)) {
      throw new TaskFailedError(`sudo on ${this.label} wants a password for ${user}, which pi-prep cannot type: allow ${user} passwordless sudo (NOPASSWD) or connect as root`);
    }
    if (/not found/i.test(s.stderr)) throw new TaskFailedError(`${this.label} has no sudo and ${user} is not root: install sudo there or connect as root`);
    throw new TaskFailedError(`sudo -n on ${this.label} failed for ${user}: ${lastLine(s.stderr) || `exit ${s.exitCode}`}; allow passwordless sudo or connect as root`);
  }

  /** At process exit, for a run that ended without close() (an error before the recipe ran). */
  closeSync(): void {
    const dir = this.socketDir;
    if (!dir) return;
    this.socketDir = undefined;
    spawnSync('ssh', [...this.sshArgs(dir), '-O', 'exit', '--', this.opts.host], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }

  private sshArgs(socketDir = this.socketDir): string[] {
    const a: string[] = [];
    for (const o of this.opts.options ?? []) a.push('-o', o);
    a.push('-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR');
    // A frozen peer (power cut, cable pulled) is given up after about 45 s instead of never.
    a.push('-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=3');
    if (socketDir) a.push('-o', 'ControlMaster=auto', '-o', `ControlPath=${socketDir}/%C`, '-o', 'ControlPersist=300');
    else a.push('-o', 'ControlMaster=no', '-o', 'ControlPath=none');
    if (this.opts.port) a.push('-p', String(this.opts.port));
    if (this.opts.user) a.push('-l', this.opts.user);
    return a;
  }

  /** One remote command, its line built only by quoteArgv; exit 255 with an ssh complaint is a connection error. */
  private async raw(remote: readonly string[], opts: RunOptions & { inputFile?: string } = {}): Promise<Raw> {
    await this.slot();
    try {
      const child = execa('ssh', [...this.sshArgs(), '-T', '--', this.opts.host, quoteArgv(['exec', ...remote])], {
        ...(opts.inputFile ? { inputFile: opts.inputFile } : { input: opts.input ?? '' }),
        encoding: 'buffer',
        reject: false,
        stripFinalNewline: false,
      });
      // Uploads print nothing while they stream: only keepalives bound them.
      const bound = opts.inputFile ? undefined : boundCommand(child, opts, false);
      if (opts.onLine) streamLines(child, opts.onLine);
      const res = await child;
      const stderr = Buffer.from(res.stderr ?? []).toString('utf8');
      if (bound?.expired) return { exitCode: TIMED_OUT_EXIT, stdout: Buffer.alloc(0), stderr: '', timedOut: bound.describe() };
      return {
        exitCode: res.exitCode ?? 255,
        stdout: Buffer.from(res.stdout ?? []),
        stderr: stderr || (res.exitCode === undefined ? res.shortMessage ?? '' : ''),
      };
    } finally {
      this.release();
    }
  }

  private async exec(argv: readonly string[], opts: RunOptions & { inputFile?: string } = {}): Promise<Raw> {
    const r = await this.raw(this.sudo ? ['sudo', '-n', '--', ...argv] : argv, opts);
    if (r.exitCode === 255 && sshComplaint(r.stderr)) throw this.connectError(r);
    return r;
  }

  private async script(name: keyof typeof SCRIPTS, args: string[], opts: { input?: string | Buffer; inputFile?: string } = {}): Promise<Raw> {
    if (!args[0]?.startsWith('/')) throw new TaskFailedError(`pi-prep bug: path ${args[0]} on ${this.label} is not absolute`);
    await this.connect();
    return this.exec(['sh', '-c', SCRIPTS[name], 'sh', ...args], opts);
  }

  private ok(r: Raw, what: string, path: string): Raw {
    if (r.exitCode !== 0) {
      throw new TaskFailedError(`cannot ${what} ${path} on ${this.label}: ${lastLine(r.stderr) || `exit ${r.exitCode}`}`);
    }
    return r;
  }

  private connectError(r: Raw): Error {
    const e = r.stderr;
    const where = this.label;
    if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/i.test(e)) {
      return new RefusedError(`the host key of ${where} does not match known_hosts (another machine, or it was reinstalled): check it, then remove the old entry with \`ssh-keygen -R ${this.opts.host}\``);
    }
    if (/host key is known|Host key verification failed|authenticity of host/i.test(e)) {
      const login = `ssh ${this.opts.port ? `-p ${this.opts.port} ` : ''}${this.opts.user ? `${this.opts.user}@` : ''}${this.opts.host}`;
      return new RefusedError(`the host key of ${where} is not in known_hosts: connect once with \`${login}\` to check and accept it, or pass --ssh-option StrictHostKeyChecking=accept-new`);
    }
    if (/Connection refused/i.test(e)) return new TaskFailedError(`cannot connect to ${where}: connection refused; is sshd running there and is the port right?`);
    if (/Could not resolve hostname/i.test(e)) return new TaskFailedError(`cannot resolve ${this.opts.host}: check the name in --host, or use its address`);
    if (/timed out/i.test(e)) return new TaskFailedError(`cannot connect to ${where}: timed out; is it switched on and on the network?`);
    if (/Permission denied/i.test(e)) return new TaskFailedError(`${where} refused the login${this.opts.user ? ` for ${this.opts.user}` : ''}: install your public key there (ssh-copy-id) or name the key with --ssh-option IdentityFile=FILE`);
    return new TaskFailedError(`ssh to ${where} failed: ${lastLine(e) || `exit ${r.exitCode}`}`);
  }

  private async slot(): Promise<void> {
    if (this.active < MAX_SESSIONS) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

/** `stat -c "%f %s %u %g"`: raw mode in hex, size, owner. */
function parseStat(line: string): FileInfo {
  const [rawMode, size, uid, gid] = line.trim().split(/\s+/);
  const m = parseInt(rawMode ?? '0', 16);
  const fmt = m & 0o170000;
  const type = fmt === 0o100000 ? 'file' : fmt === 0o040000 ? 'dir' : fmt === 0o120000 ? 'symlink'
    : fmt === 0o060000 ? 'block' : fmt === 0o020000 ? 'char' : 'other';
  return { type, mode: m & 0o7777, size: Number(size), uid: Number(uid), gid: Number(gid) };
}

/** Targets with a master connection still open; closed synchronously if the process exits first. */
const openTargets = new Set<SshTarget>();
process.once('exit', () => openTargets.forEach((t) => t.closeSync()));

function mode(m: number | undefined): string {
  return m === undefined ? '' : m.toString(8).padStart(4, '0');
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1)?.trim() ?? '';
}

/** What ssh itself (not the remote command) says when it fails with 255. */
function sshComplaint(stderr: string): boolean {
  return /^(ssh:|Host key|No .* host key|@@@|.*Permission denied \(|mux_client|Control socket|kex_exchange)/m.test(stderr);
}

function streamLines(child: { stdout?: NodeJS.ReadableStream | null; stderr?: NodeJS.ReadableStream | null }, onLine: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream?.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) onLine(redact(line));
    });
    stream?.on('end', () => rest && onLine(redact(rest)));
  }
}

/** The SSH target for a `[USER@]HOST[:PORT]` flag value and `--ssh-option`s. */
export async function sshTargetFor(spec: string, sshOptions: readonly string[] = [], flag = '--host'): Promise<SshTarget> {
  const { parseHostSpec, checkSshOption } = await import('./ssh-spec.js');
  return new SshTarget({ ...parseHostSpec(spec, flag), options: sshOptions.map(checkSshOption) });
}

/** The address ssh really connects to for this target (`ssh -G` applies ~/.ssh/config's HostName). */
export async function resolvedHostname(t: SshTarget): Promise<string> {
  const args = [...(t.opts.options ?? []).flatMap((o) => ['-o', o]), ...(t.opts.port ? ['-p', String(t.opts.port)] : []), '-G', '--', t.opts.host];
  const r = await execa('ssh', args, { reject: false, stdin: 'ignore' });
  const m = /^hostname (\S+)$/m.exec(String(r.stdout ?? ''));
  return m?.[1] ?? t.opts.host;
}
