import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CommandError, TaskFailedError } from '../../core/errors.js';
import { quoteArgv } from '../../core/quote.js';
import type { RunContext } from '../../run/task.js';
import type { RunResult, Target } from '../../targets/target.js';

/**
 * Where the kernel is built: on the node itself when it can run an hours-long job (pi-prep runs on
 * the Pi), otherwise here (cross-compiling unless this machine is arm64) and installed through the
 * node's target. Either way every command goes through a recorded target, so a dry run lists the
 * build's commands exactly, marked "on this machine" when they run here.
 */
/**
 * A kernel command that prints nothing for this long is hung. `git clone` prints nothing without a
 * terminal until it is done, and linking vmlinux on a Pi takes minutes: far above the default bound.
 */
const KERNEL_IDLE_MS = 60 * 60_000;

export class Builder {
  private fresh = true;

  constructor(
    readonly where: 'node' | 'here',
    /** ARCH=arm64 always; CROSS_COMPILE only when this machine is not arm64. */
    readonly cross: boolean,
  ) {}

  get makeVars(): string[] {
    return ['ARCH=arm64', ...(this.cross ? ['CROSS_COMPILE=aarch64-linux-gnu-'] : [])];
  }

  /** The target the build tree lives on. */
  on(ctx: RunContext): Target {
    return this.where === 'here' ? ctx.local : ctx.target;
  }

  /** A command that changes things; its output goes to the build log when one is given. */
  async run(ctx: RunContext, argv: string[], opts: { log?: string; stream?: boolean } = {}): Promise<RunResult> {
    const lines: string[] = [];
    const onLine = opts.stream || opts.log ? (l: string) => {
      lines.push(l);
      if (opts.stream) ctx.log(l);
    } : undefined;
    const res = await this.on(ctx).run(argv, { allowFailure: true, idleTimeoutMs: KERNEL_IDLE_MS, ...(onLine ? { onLine } : {}) });
    // The build log is pi-prep's own record, like --log-file, not a change to the node: it is
    // kept on this machine (where every build runs, natively or not) for commands that ran.
    if (opts.log && !res.planned) {
      await mkdir(dirname(opts.log), { recursive: true });
      await (this.fresh ? writeFile : appendFile)(opts.log, `$ ${quoteArgv(argv)}\n${lines.map((l) => l + '\n').join('')}(exit ${res.exitCode})\n`);
      this.fresh = false;
    }
    if (res.exitCode !== 0) {
      const err = new CommandError(argv, res);
      throw opts.log ? new TaskFailedError(`${err.message} (full log: ${opts.log})`) : err;
    }
    return res;
  }

  /** A command that only reads (git rev-parse, make -s kernelrelease): runs in dry runs too. */
  read(ctx: RunContext, argv: string[]): Promise<RunResult> {
    return this.on(ctx).run(argv, { readOnly: true, allowFailure: true });
  }

  /** One log per rebuild (configure, build, install): the next logged command replaces an earlier rebuild's log. */
  newLog(): void {
    this.fresh = true;
  }
}
