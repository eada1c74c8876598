import { createHash } from 'node:crypto';
import type { VerifiedDownload } from '../core/download.js';
import type { Action } from './task.js';
import type { FileInfo, RunOptions, RunResult, Target, WriteOptions } from '../targets/target.js';

/**
 * Wraps a target to record every change as an Action. With `dryRun`, changes are only recorded
 * (reads and readOnly commands still run), so a dry run walks the very code a real run does.
 * The node's and this machine's recorders share one list, so a plan keeps the order of the run;
 * `here` marks this machine's actions.
 */
export class RecordingTarget implements Target {
  readonly kind: Target['kind'];
  readonly label: string;
  readonly liveServices: boolean;
  readonly canReboot: boolean;
  readonly longJobs: boolean;
  readonly download?: (d: VerifiedDownload) => Promise<string>;
  /**
   * A dry run's own writes (and removals: null), so that later reads in the same run see what the
   * real run would see there (a check after an edit, a second edit of one file): plan and run agree.
   */
  private readonly planned = new Map<string, { data: Buffer; mode?: number } | null>();

  constructor(
    readonly inner: Target,
    readonly dryRun: boolean,
    readonly here = false,
    readonly actions: Action[] = [],
  ) {
    this.kind = inner.kind;
    this.label = inner.label;
    this.liveServices = inner.liveServices;
    this.canReboot = inner.canReboot;
    this.longJobs = inner.longJobs;
    if (inner.download) this.download = (d) => this.fetch(inner.download!.bind(inner), d);
  }

  private record(a: Action): void {
    this.actions.push(this.here ? { ...a, here: true } : a);
  }

  private async fetch(download: (d: VerifiedDownload) => Promise<string>, d: VerifiedDownload): Promise<string> {
    // A cached copy that matches is used as it is: nothing to do, nothing to show.
    if ((await this.inner.sha256(d.dest)) === d.sha256) return d.dest;
    this.record({ kind: 'download', url: d.url, path: d.dest, sha256: d.sha256 });
    return this.dryRun ? d.dest : download(d);
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    if (opts.readOnly) return this.inner.run(argv, opts);
    this.record({ kind: 'run', argv: [...argv], ...(opts.input !== undefined ? { input: 'data' as const } : {}) });
    if (this.dryRun) return { exitCode: 0, stdout: '', stderr: '', planned: true };
    return this.inner.run(argv, opts);
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    const p = this.planned.get(path);
    if (p === undefined) return this.inner.readFile(path);
    return p?.data;
  }

  async writeFile(path: string, data: string | Buffer, opts: WriteOptions = {}): Promise<void> {
    const old = await this.readFile(path);
    const bytes = Buffer.byteLength(data);
    this.record({
      kind: 'write', path, bytes,
      ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
      ...(opts.secret ? { secret: true } : { diff: textDiff(old, data) }),
      ...(opts.backup ? { backup: true } : {}),
    });
    if (this.dryRun) this.planned.set(path, { data: Buffer.from(data), mode: opts.mode ?? (await this.stat(path))?.mode });
    else await this.inner.writeFile(path, data, opts);
  }

  async putFile(localPath: string, path: string, opts: WriteOptions = {}): Promise<void> {
    this.record({ kind: 'put', from: localPath, path, ...(opts.mode !== undefined ? { mode: opts.mode } : {}), ...(opts.backup ? { backup: true } : {}) });
    if (!this.dryRun) await this.inner.putFile(localPath, path, opts);
  }

  async stat(path: string): Promise<FileInfo | undefined> {
    const p = this.planned.get(path);
    if (p === undefined) return this.inner.stat(path);
    return p ? { type: 'file', mode: p.mode ?? 0o644, size: p.data.length, uid: 0, gid: 0 } : undefined;
  }

  async mkdir(path: string, mode = 0o755): Promise<void> {
    this.record({ kind: 'mkdir', path, mode });
    if (!this.dryRun) await this.inner.mkdir(path, mode);
  }

  async chmod(path: string, mode: number): Promise<void> {
    this.record({ kind: 'chmod', path, mode });
    if (!this.dryRun) await this.inner.chmod(path, mode);
  }

  async remove(path: string): Promise<void> {
    this.record({ kind: 'remove', path });
    if (this.dryRun) this.planned.set(path, null);
    else await this.inner.remove(path);
  }

  readDir(path: string): Promise<string[]> {
    return this.inner.readDir(path);
  }

  async sha256(path: string): Promise<string | undefined> {
    const p = this.planned.get(path);
    if (p === undefined) return this.inner.sha256(path);
    return p ? createHash('sha256').update(p.data).digest('hex') : undefined;
  }

  freeBytes(path: string): Promise<number | undefined> {
    return this.inner.freeBytes(path);
  }

  facts() {
    return this.inner.facts();
  }

  async close(): Promise<void> {}

  /** The actions recorded since the last take (the node's and this machine's, in order). */
  take(): Action[] {
    return this.actions.splice(0);
  }
}

/** Lines removed and added, for small text files; enough to show an edit exactly. */
export function textDiff(old: Buffer | undefined, next: string | Buffer): string[] | undefined {
  const a = old?.toString('utf8');
  const b = next.toString();
  if (b.length > 4096 || (a?.length ?? 0) > 4096 || b.includes('\0') || a?.includes('\0')) return undefined;
  const al = a === undefined ? [] : a.split('\n');
  const bl = b.split('\n');
  if (al.at(-1) === '') al.pop();
  if (bl.at(-1) === '') bl.pop();
  const removed = al.filter((l) => !bl.includes(l)).map((l) => `- ${l}`);
  const added = bl.filter((l) => !al.includes(l)).map((l) => `+ ${l}`);
  return [...removed, ...added];
}
