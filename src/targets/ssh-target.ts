import { execa } from 'execa';
import { CommandError, RefusedError, TaskFailedError } from '../core/errors.js';
import { probeFacts, type Facts } from './facts.js';
import { SshConnection, type ExecOptions, type SshConnectionOptions } from './ssh-connection.js';
import { fileError, type Raw } from './ssh-errors.js';
import { parsePrefetch, prefetchCommand, type Prefetched } from './ssh-prefetch.js';
import { MISSING, PLANTED, REMOTE_PATH, SCRIPTS, modeArg, parseStat, type ScriptName } from './ssh-scripts.js';
import type { FileInfo, RunOptions, RunResult, Target, WriteOptions } from './target.js';

export type SshTargetOptions = SshConnectionOptions;

/**
 * A machine reached with the system OpenSSH client (src/targets/ssh-connection.ts), so
 * ~/.ssh/config, agents and jump hosts work as they do for the user. File operations are fixed
 * scripts (ssh-scripts.ts); file contents travel on stdin, never in argv. What probing facts
 * reads comes back in one round trip (ssh-prefetch.ts) and is answered from there until the first
 * change made through this target.
 */
export class SshTarget implements Target {
  readonly kind = 'ssh' as const;
  readonly liveServices = true;
  readonly canReboot = true;
  readonly longJobs = false;
  readonly label: string;
  private readonly conn: SshConnection;
  private factsCache?: Promise<Facts>;
  private cache = new Map<string, Prefetched>();

  constructor(readonly opts: SshTargetOptions) {
    this.conn = new SshConnection(opts, prefetchCommand);
    this.label = this.conn.label;
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const cached = opts.readOnly && !opts.cwd && !opts.env ? this.cache.get(`run:${argv.join(' ')}`)?.stdout : undefined;
    if (cached !== undefined) return { exitCode: 0, stdout: cached, stderr: '' };
    if (!opts.readOnly) this.forget();
    await this.conn.connect();
    let cmd = [...argv];
    if (opts.cwd) cmd = ['sh', '-c', SCRIPTS.cwd, 'sh', opts.cwd, ...cmd];
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const raw = await this.conn.exec(['env', `PATH=${REMOTE_PATH}`, ...env, ...cmd], opts);
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
    this.ok(this.planted(await this.script('write', [path, modeArg(opts.mode), opts.backup ? '1' : ''], { input: data }), path), 'write', path);
  }

  async putFile(localPath: string, path: string, opts: WriteOptions = {}): Promise<void> {
    this.forget();
    this.ok(this.planted(await this.script('write', [path, modeArg(opts.mode), opts.backup ? '1' : ''], { inputFile: localPath }), path), 'copy to', path);
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
    this.ok(await this.script('mkdir', [path, modeArg(m)]), 'create directory', path);
  }

  async chmod(path: string, m: number): Promise<void> {
    this.forget();
    this.ok(await this.script('chmod', [path, modeArg(m)]), 'chmod', path);
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

  close(): Promise<void> {
    return this.conn.close();
  }

  /** One round trip for what probing reads; when it fails (no base64 there), probing reads path by path. */
  private async prefetch(): Promise<void> {
    await this.conn.connect();
    // A root login already brought the batch back with its `id -u`: no second round trip.
    const r = this.conn.takeFirst() ?? (await this.conn.exec(prefetchCommand()));
    if (r.exitCode === 0) this.cache = parsePrefetch(r.stdout.toString('utf8'));
  }

  /** A change through this target makes every prefetched answer stale. */
  private forget(): void {
    this.cache.clear();
    this.conn.takeFirst();
  }

  private async script(name: ScriptName, args: string[], opts: ExecOptions = {}): Promise<Raw> {
    if (!args[0]?.startsWith('/')) throw new TaskFailedError(`pi-prep bug: path ${args[0]} on ${this.label} is not absolute`);
    await this.conn.connect();
    return this.conn.exec(['sh', '-c', SCRIPTS[name], 'sh', ...args], opts);
  }

  private ok(r: Raw, what: string, path: string): Raw {
    if (r.exitCode !== 0) throw fileError(r, what, path, this.label);
    return r;
  }

  /** The write script's exit 4: PATH.pi-prep.bak is there and is not a plain file. */
  private planted(r: Raw, path: string): Raw {
    if (r.exitCode === PLANTED) throw new RefusedError(`${path}.pi-prep.bak on ${this.label} is a symlink or not a plain file, not pi-prep's backup: remove it, then run again`);
    return r;
  }
}

/** `--ssh-config FILE` and `--host-key KEY`: settings of one host's ssh beyond its -o options. */
export interface SshExtras {
  sshConfig?: string;
  hostKey?: string;
}

/** The SSH target for a `[USER@]HOST[:PORT]` flag value and `--ssh-option`s. */
export async function sshTargetFor(spec: string, sshOptions: readonly string[] = [], flag = '--host', extras: SshExtras = {}): Promise<SshTarget> {
  const { parseHostSpec, checkSshOption, checkHostKey, checkSshConfig } = await import('./ssh-spec.js');
  return new SshTarget({
    ...parseHostSpec(spec, flag),
    options: sshOptions.map(checkSshOption),
    ...(extras.sshConfig ? { configFile: await checkSshConfig(extras.sshConfig) } : {}),
    ...(extras.hostKey ? { hostKey: checkHostKey(extras.hostKey) } : {}),
  });
}

/** The address ssh really connects to for this target (`ssh -G` applies ~/.ssh/config's HostName). */
export async function resolvedHostname(t: SshTarget): Promise<string> {
  const args = [...(t.opts.configFile ? ['-F', t.opts.configFile] : []), ...(t.opts.options ?? []).flatMap((o) => ['-o', o]), ...(t.opts.port ? ['-p', String(t.opts.port)] : []), '-G', '--', t.opts.host];
  const r = await execa('ssh', args, { reject: false, stdin: 'ignore' });
  const m = /^hostname (\S+)$/m.exec(String(r.stdout ?? ''));
  return m?.[1] ?? t.opts.host;
}
