import type { VerifiedDownload } from '../core/download.js';
import type { Facts } from './facts.js';

export interface RunOptions {
  /** Fed to the command's stdin (how secrets reach a process: never through argv). */
  input?: string | Buffer;
  env?: Record<string, string>;
  /** Working directory on the target. */
  cwd?: string;
  /** Return the result instead of throwing when the exit code is not 0. */
  allowFailure?: boolean;
  /** Called with each line of output as it arrives (long builds). */
  onLine?: (line: string) => void;
  /** The command only reads: dry-run executes it too. */
  readOnly?: boolean;
  /** A total bound, for commands that must not outlive a wait (`k0s status`). None by default. */
  timeoutMs?: number;
  /**
   * No output for this long = hung: the command and what it started are stopped. Every command
   * has one (src/targets/command-bounds.ts, 10 min by default); set a longer one for a command
   * known to be quiet for long.
   */
  idleTimeoutMs?: number;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Only recorded, not run (a dry run): what the command would make does not exist. */
  planned?: true;
  /** Set when a bound stopped the command (exit code 124): what the bound was. */
  timedOut?: string;
}

export interface FileInfo {
  type: 'file' | 'dir' | 'symlink' | 'block' | 'char' | 'other';
  mode: number; // permission bits only
  size: number;
  uid: number;
  gid: number;
}

export interface WriteOptions {
  mode?: number;
  /** Contents are a secret: plans show that the file is written, never what. */
  secret?: boolean;
  /** Copy the old file to PATH.pi-prep.bak before the first change (boot files). */
  backup?: boolean;
}

/**
 * Where a recipe acts. Paths are absolute paths as seen on the target, whatever its kind.
 * Writes are atomic: temp file in the same directory, fsync, rename.
 */
export interface Target {
  readonly kind: 'local' | 'root' | 'ssh';
  /** For messages: "this machine", "root /mnt/pi", "pi@pi4". */
  readonly label: string;
  /** Capability: services can be started now (a running system, not a root directory). */
  readonly liveServices: boolean;
  /** Capability: `reboot` reboots it (a root directory is never rebooted: that would be this machine's init). */
  readonly canReboot: boolean;
  /**
   * Capability: an hours-long build can run on it. Only this machine: a root directory has no
   * running system, and a build over SSH would live and die with the connection.
   */
  readonly longJobs: boolean;
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  readFile(path: string): Promise<Buffer | undefined>;
  writeFile(path: string, data: string | Buffer, opts?: WriteOptions): Promise<void>;
  /** Copy a file from this machine onto the target (large binaries), atomically. */
  putFile(localPath: string, path: string, opts?: WriteOptions): Promise<void>;
  stat(path: string): Promise<FileInfo | undefined>;
  mkdir(path: string, mode?: number): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  remove(path: string): Promise<void>;
  readDir(path: string): Promise<string[]>;
  /** SHA-256 (hex) of a file, computed where the file is; undefined when missing. */
  sha256(path: string): Promise<string | undefined>;
  /** Free bytes on the filesystem holding path (nearest existing parent). */
  freeBytes(path: string): Promise<number | undefined>;
  facts(): Promise<Facts>;
  /**
   * A capability, not every target's: fetch a published file to `d.dest`, verified against its
   * SHA-256 (a cached copy that matches is kept). Only this machine downloads.
   */
  download?(d: VerifiedDownload): Promise<string>;
  close(): Promise<void>;
}

/** The target's download capability: only this machine has it, so asking another is a bug. */
export function downloaderOf(t: Target): (d: VerifiedDownload) => Promise<string> {
  if (!t.download) throw new Error(`${t.label} cannot download: downloads are made on this machine (ctx.local)`);
  return t.download.bind(t);
}

export async function readText(target: Target, path: string): Promise<string | undefined> {
  const buf = await target.readFile(path);
  return buf?.toString('utf8');
}
