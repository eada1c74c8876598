import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { quoteArgv } from '../core/quote.js';
import { redact } from '../core/redact.js';
import { Semaphore } from './semaphore.js';
import { connectError, sshComplaint, sudoError, type Raw } from './ssh-errors.js';
import { formatAddress, type SshAddress } from './ssh-spec.js';
import type { RunOptions } from './target.js';

export interface SshConnectionOptions extends SshAddress {
  /** `--ssh-option`s, given to ssh before pi-prep's own defaults (ssh keeps the first value). */
  options?: readonly string[];
  /** One connection per host, shared by every command (default). Off only for measurements. */
  multiplex?: boolean;
}

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
    if (r.exitCode === 255 && sshComplaint(r.stderr)) throw connectError(r, this.label, this.opts);
    return r;
  }

  async close(): Promise<void> {
    const dir = this.socketDir;
    this.socketDir = undefined;
    this.ready = undefined;
    this.first = undefined;
    open.delete(this);
    if (!dir) return;
    await execa('ssh', [...this.sshArgs(dir), '-O', 'exit', '--', this.opts.host], { reject: false, stdin: 'ignore' });
    await rm(dir, { recursive: true, force: true });
  }

  /** At process exit, for a run that ended without close() (an error before the recipe ran). */
  closeSync(): void {
    const dir = this.socketDir;
    if (!dir) return;
    this.socketDir = undefined;
    spawnSync('ssh', [...this.sshArgs(dir), '-O', 'exit', '--', this.opts.host], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }

  private async open(): Promise<void> {
    if (this.opts.multiplex !== false) {
      this.socketDir = await mkdtemp(join(tmpdir(), 'pi-prep-ssh-'));
      open.add(this);
    }
    // The first round trip learns who we are and, for root, also runs the piggybacked command.
    const whoami = 'id -u; [ "$(id -u)" = 0 ] || exit 0';
    const who = await this.raw(this.piggyback ? this.piggyback(whoami) : ['sh', '-c', whoami]);
    const out = who.stdout.toString('utf8');
    const uid = /^(\d+)\n/.exec(out)?.[1];
    if (uid === undefined) throw connectError(who, this.label, this.opts);
    if (uid === '0') {
      if (this.piggyback) this.first = { ...who, stdout: Buffer.from(out.slice(uid.length + 1)) };
      return;
    }
    this.sudo = true;
    const s = await this.raw(['sudo', '-n', 'true']);
    if (s.exitCode === 0) return;
    if (s.exitCode === 255) throw connectError(s, this.label, this.opts);
    throw sudoError(s, this.label, this.opts.user);
  }

  /** ssh's options for this host: the user's first (ssh keeps the first value), then pi-prep's. */
  sshArgs(socketDir = this.socketDir): string[] {
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

  /** One remote command, its line built only by quoteArgv. */
  private raw(remote: readonly string[], opts: ExecOptions = {}): Promise<Raw> {
    return this.sessions.with(async () => {
      const child = execa('ssh', [...this.sshArgs(), '-T', '--', this.opts.host, quoteArgv(['exec', ...remote])], {
        ...(opts.inputFile ? { inputFile: opts.inputFile } : { input: opts.input ?? '' }),
        encoding: 'buffer',
        reject: false,
        timeout: opts.timeoutMs,
        stripFinalNewline: false,
      });
      if (opts.onLine) streamLines(child, opts.onLine);
      const res = await child;
      const stderr = Buffer.from(res.stderr ?? []).toString('utf8');
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
