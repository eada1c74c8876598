import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { quoteArgv } from '../core/quote.js';
import { streamLines } from '../core/text.js';
import { boundCommand, TIMED_OUT_EXIT } from './command-bounds.js';
import { Semaphore } from './semaphore.js';
import { connectError, sshComplaint, sudoError, type Raw } from './ssh-errors.js';
import { formatAddress, type SshAddress } from './ssh-spec.js';
import type { RunOptions } from './target.js';

export interface SshConnectionOptions extends SshAddress {
  /** `--ssh-option`s, given to ssh before pi-prep's own defaults (ssh keeps the first value). */
  options?: readonly string[];
  /** One connection per host, shared by every command (default). Off only for measurements. */
  multiplex?: boolean;
  /** ssh reads this config file instead of ~/.ssh/config (`ssh -F`, k0sctl's openSSH.configPath). */
  configFile?: string;
  /** The only host key accepted, `TYPE BASE64` (k0sctl's ssh.hostKey): known_hosts is not consulted. */
  hostKey?: string;
}

/** The name a pinned key is filed under in the connection's own known_hosts (ssh's HostKeyAlias). */
const PINNED = 'pi-prep-pinned-host';

export type ExecOptions = RunOptions & { inputFile?: string };

/** sshd allows 10 sessions per connection by default (MaxSessions); stay below it. */
const MAX_SESSIONS = 8;

/**
 * The system OpenSSH client to one host: one multiplexed connection (ControlMaster in a private
 * socket directory), strict host key checking unless the user says otherwise, and `sudo -n` in
 * front of every command when the login is not root.
 */
export class SshConnection {
  readonly label: string;
  /** Private directory: the master's socket and the pinned host key's known_hosts. */
  private dir?: string;
  private socketDir?: string;
  private ready?: Promise<void>;
  private sudo = false;
  /** What the first round trip brought back after `id -u` (a root login's piggybacked command). */
  private first?: Raw;
  private readonly sessions = new Semaphore(MAX_SESSIONS);

  /** `piggyback`: a command a root login runs in its first round trip (the facts prefetch). */
  constructor(readonly opts: SshConnectionOptions, private readonly piggyback?: (before: string) => string[]) {
    this.label = formatAddress(opts);
  }

  /** Open the shared connection (the first command starts the master) and learn whether sudo is needed. */
  connect(): Promise<void> {
    this.ready ??= this.open().catch(async (err) => {
      // A failed connect leaves no master and no socket directory behind.
      await this.close();
      throw err;
    });
    return this.ready;
  }

  /** The piggybacked command's result, once; undefined when it did not run (not root) or was taken. */
  takeFirst(): Raw | undefined {
    const r = this.first;
    this.first = undefined;
    return r;
  }

  /** A command as root (through sudo -n when needed); ssh's own failure (255) is thrown. */
  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<Raw> {
    const r = await this.raw(this.sudo ? ['sudo', '-n', '--', ...argv] : argv, opts);
    if (r.exitCode === 255 && sshComplaint(r.stderr)) throw this.connectError(r);
    return r;
  }

  async close(): Promise<void> {
    const [dir, socketDir] = [this.dir, this.socketDir];
    this.ready = undefined;
    this.first = undefined;
    // The connection stays known to the exit hook until both are gone: a signal's exit may come
    // while this waits, and closeSync then finishes the job (both steps may safely run twice).
    if (socketDir) await execa('ssh', [...this.sshArgs(socketDir), '-O', 'exit', '--', this.opts.host], { reject: false, stdin: 'ignore' });
    if (dir) await rm(dir, { recursive: true, force: true });
    if (this.socketDir === socketDir) this.socketDir = undefined;
    if (this.dir === dir) this.dir = undefined;
    open.delete(this);
  }

  /** At process exit, for a run that ended without close() (an error before the recipe ran). */
  closeSync(): void {
    const [dir, socketDir] = [this.dir, this.socketDir];
    this.socketDir = undefined;
    if (socketDir) spawnSync('ssh', [...this.sshArgs(socketDir), '-O', 'exit', '--', this.opts.host], { stdio: 'ignore' });
    this.dir = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  }

  private async open(): Promise<void> {
    if (this.opts.multiplex !== false || this.opts.hostKey) {
      this.dir = await mkdtemp(join(tmpdir(), 'pi-prep-ssh-'));
      open.add(this);
      if (this.opts.multiplex !== false) this.socketDir = this.dir;
      if (this.opts.hostKey) await writeFile(join(this.dir, 'known_hosts'), `${PINNED} ${this.opts.hostKey}\n`, { mode: 0o600 });
    }
    // The first round trip learns who we are and, for root, also runs the piggybacked command.
    const whoami = 'id -u; [ "$(id -u)" = 0 ] || exit 0';
    const who = await this.raw(this.piggyback ? this.piggyback(whoami) : ['sh', '-c', whoami]);
    const out = who.stdout.toString('utf8');
    const uid = /^(\d+)\n/.exec(out)?.[1];
    if (uid === undefined) throw this.connectError(who);
    if (uid === '0') {
      if (this.piggyback) this.first = { ...who, stdout: Buffer.from(out.slice(uid.length + 1)) };
      return;
    }
    this.sudo = true;
    const s = await this.raw(['sudo', '-n', 'true']);
    if (s.exitCode === 0) return;
    if (s.exitCode === 255) throw this.connectError(s);
    throw sudoError(s, this.label, this.opts.user);
  }

  /** ssh's options for this host: the user's first (ssh keeps the first value), then pi-prep's. */
  sshArgs(socketDir = this.socketDir): string[] {
    const a: string[] = [];
    if (this.opts.configFile) a.push('-F', this.opts.configFile);
    // A pinned key comes before the user's options: nothing they say may loosen it.
    if (this.opts.hostKey && this.dir) {
      a.push('-o', `UserKnownHostsFile=${join(this.dir, 'known_hosts')}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', `HostKeyAlias=${PINNED}`, '-o', 'StrictHostKeyChecking=yes');
    }
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

  private connectError(r: Raw): Error {
    return connectError(r, this.label, this.opts, Boolean(this.opts.hostKey), this.opts.options);
  }

  /** One remote command, its line built only by quoteArgv. */
  private raw(remote: readonly string[], opts: ExecOptions = {}): Promise<Raw> {
    return this.sessions.with(async () => {
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
        stderr: stderr || (res.exitCode === undefined ? (res.signal && !res.timedOut ? `ssh was killed by ${res.signal}` : res.shortMessage ?? '') : ''),
      };
    });
  }
}

/** Connections with a master still open; closed synchronously if the process exits first. */
const open = new Set<SshConnection>();
process.once('exit', () => open.forEach((c) => c.closeSync()));
