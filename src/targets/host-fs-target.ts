import { lstat, mkdir, readdir, readFile, chmod, rm, statfs, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { execa } from 'execa';
import type { FileHandle } from 'node:fs/promises';
import { atomicCopy, atomicWrite, backupOnce, decideDir, openDir } from '../core/atomic-write.js';
import { CommandError } from '../core/errors.js';
import { streamLines } from '../core/text.js';
import { sha256File } from '../core/hash.js';
import { probeFacts, type Facts } from './facts.js';
import { boundCommand, TIMED_OUT_EXIT } from './command-bounds.js';
import type { FileInfo, RunOptions, RunResult, Target, WriteOptions } from './target.js';

/** A target whose files live on this machine's filesystem: the machine itself, or a root directory. */
export abstract class HostFsTarget implements Target {
  abstract readonly kind: 'local' | 'root';
  abstract readonly label: string;
  abstract readonly liveServices: boolean;
  abstract readonly canReboot: boolean;
  abstract readonly longJobs: boolean;
  private factsCache?: Promise<Facts>;

  /** Where a target path lives on this machine. */
  abstract hostPath(path: string, followLast?: boolean): Promise<string>;
  /** The argv that runs a target command here. */
  protected abstract commandFor(argv: readonly string[]): readonly string[];
  protected abstract hostCwd(cwd: string | undefined): Promise<string | undefined>;
  /** Open a directory a write goes to (src/core/atomic-write.ts: decided once, re-checked by fd). */
  protected openDir(dir: string): Promise<FileHandle> {
    return openDir(dir);
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const [file, ...args] = this.commandFor(argv);
    const child = execa(file!, args, {
      input: opts.input,
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...opts.env },
      cwd: await this.hostCwd(opts.cwd),
      reject: false,
      all: false,
      stripFinalNewline: false,
      lines: false,
      // Its own process group: a hung command is stopped together with what it started.
      detached: true,
    });
    const bound = boundCommand(child, opts, true);
    if (opts.onLine) streamLines(child, opts.onLine);
    const res = await child;
    const result: RunResult = {
      exitCode: bound.expired ? TIMED_OUT_EXIT : res.exitCode ?? (res.failed ? 127 : 0),
      stdout: String(res.stdout ?? ''),
      stderr: String(res.stderr ?? ''),
      ...(bound.expired ? { timedOut: bound.describe() } : {}),
    };
    if (res.failed && res.exitCode === undefined) result.stderr ||= res.shortMessage ?? '';
    if (result.exitCode !== 0 && !opts.allowFailure) throw new CommandError(argv, result);
    return result;
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(await this.hostPath(path));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async writeFile(path: string, data: string | Buffer, opts: WriteOptions = {}): Promise<void> {
    const p = await this.hostPath(path);
    await mkdir(dirname(p), { recursive: true });
    const dir = await decideDir(dirname(p), (d) => this.openDir(d));
    if (opts.backup) await backupOnce(p, dir);
    await atomicWrite(p, data, opts.mode, dir);
  }

  async putFile(localPath: string, path: string, opts: WriteOptions = {}): Promise<void> {
    const p = await this.hostPath(path);
    await mkdir(dirname(p), { recursive: true });
    const dir = await decideDir(dirname(p), (d) => this.openDir(d));
    if (opts.backup) await backupOnce(p, dir);
    await atomicCopy(localPath, p, opts.mode, dir);
  }

  async stat(path: string): Promise<FileInfo | undefined> {
    try {
      const s = await lstat(await this.hostPath(path, false));
      const type = s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink'
        : s.isBlockDevice() ? 'block' : s.isCharacterDevice() ? 'char' : 'other';
      return { type, mode: s.mode & 0o7777, size: s.size, uid: s.uid, gid: s.gid };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async mkdir(path: string, mode = 0o755): Promise<void> {
    const p = await this.hostPath(path);
    await mkdir(p, { recursive: true, mode });
    await chmod(p, mode);
  }

  async chmod(path: string, mode: number): Promise<void> {
    await chmod(await this.hostPath(path), mode);
  }

  async remove(path: string): Promise<void> {
    await rm(await this.hostPath(path, false), { force: true, recursive: true });
  }

  async readDir(path: string): Promise<string[]> {
    try {
      return (await readdir(await this.hostPath(path))).sort();
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
  }

  async sha256(path: string): Promise<string | undefined> {
    const p = await this.hostPath(path);
    if (!(await lstat(p).catch(() => undefined))) return undefined;
    return sha256File(p);
  }

  async freeBytes(path: string): Promise<number | undefined> {
    let p = await this.hostPath(path);
    while (!(await lstat(p).catch(() => undefined)) && p !== dirname(p)) p = dirname(p);
    p = await realpath(p);
    // statfs(2) on the path itself: the filesystem that holds it, whatever its mount point is called.
    const s = await statfs(p).catch(() => undefined);
    return s ? s.bavail * s.bsize : undefined;
  }

  facts(): Promise<Facts> {
    this.factsCache ??= probeFacts(this);
    return this.factsCache;
  }

  async close(): Promise<void> {}
}

export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
