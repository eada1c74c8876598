import { appendFile, mkdir, rm, writeFile as fsWriteFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CommandError, TaskFailedError } from '../../core/errors.js';
import { quoteArgv } from '../../core/quote.js';
import type { RunContext } from '../../core/task.js';
import { LocalTarget } from '../../targets/local-target.js';
import type { RunResult } from '../../targets/target.js';

/**
 * Where the kernel is built. Either way the files are on this machine: natively on the Pi itself
 * (the target is this machine, commands are the target's and show in plans as such), or on a
 * workstation for a `--root` target (host work: recorded with ctx.host, skipped in dry runs).
 */
export class Builder {
  private readonly local = new LocalTarget();

  constructor(
    readonly where: 'target' | 'host',
    /** ARCH=arm64 always; CROSS_COMPILE only when this machine is not arm64. */
    readonly cross: boolean,
  ) {}

  get makeVars(): string[] {
    return ['ARCH=arm64', ...(this.cross ? ['CROSS_COMPILE=aarch64-linux-gnu-'] : [])];
  }

  /** A command that changes things: planned in dry runs, run otherwise. */
  async run(ctx: RunContext, argv: string[], opts: { log?: string; stream?: boolean } = {}): Promise<RunResult> {
    if (this.where === 'host') {
      ctx.host(`run \`${quoteArgv(argv)}\``);
      if (ctx.dryRun) return { exitCode: 0, stdout: '', stderr: '' };
    }
    const lines: string[] = [];
    const onLine = opts.stream || opts.log ? (l: string) => {
      lines.push(l);
      if (opts.stream) ctx.log(l);
    } : undefined;
    const runner = this.where === 'host' ? this.local : ctx.target;
    const res = await runner.run(argv, { allowFailure: true, ...(onLine ? { onLine } : {}) });
    if (ctx.dryRun && this.where === 'target') return res;
    if (opts.log) {
      await mkdir(dirname(opts.log), { recursive: true });
      await appendFile(opts.log, `$ ${quoteArgv(argv)}\n${lines.join('\n')}\n(exit ${res.exitCode})\n`);
    }
    if (res.exitCode !== 0) {
      const err = new CommandError(argv, res);
      throw opts.log ? new TaskFailedError(`${err.message} (full log: ${opts.log})`) : err;
    }
    return res;
  }

  /** A command that only reads (git rev-parse, grep): runs in dry runs too. */
  read(argv: string[]): Promise<RunResult> {
    return this.local.run(argv, { readOnly: true, allowFailure: true });
  }

  readFile(path: string): Promise<Buffer | undefined> {
    return this.local.readFile(path);
  }

  async resetLog(ctx: RunContext, path: string): Promise<void> {
    if (ctx.dryRun) return;
    await mkdir(dirname(path), { recursive: true });
    await rm(path, { force: true });
    await fsWriteFile(path, '', { mode: 0o644 });
  }
}
