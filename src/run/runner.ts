import { Listr, ListrLogger, ListrLogLevels } from 'listr2';
import { RecordingTarget } from './recording-target.js';
import { PiPrepError, TaskFailedError, exitCodeFor, oneLine } from '../core/errors.js';
import { describeAction } from './plan.js';
import { redact } from '../core/redact.js';
import type { Recipe, RunContext } from './task.js';
import type { RunReport, TaskReport } from './report.js';
import { LocalTarget } from '../targets/local-target.js';
import type { Target } from '../targets/target.js';

export type RendererName = 'default' | 'simple' | 'silent';

export interface RunnerOptions {
  dryRun: boolean;
  /** default on a TTY, simple (plain lines) otherwise, silent for dry runs, JSON and tests. */
  renderer?: RendererName;
  /** Every log line and action, redacted (the --log-file). */
  log?: (line: string) => void;
  /** This machine (downloads, builds, card writes); a LocalTarget unless a test gives another. */
  local?: Target;
}

export function defaultRenderer(quiet: boolean): RendererName {
  if (quiet) return 'silent';
  return process.stdout.isTTY ? 'default' : 'simple';
}

/**
 * Walk a recipe: check each task; done tasks are left alone, the others are applied (or, in a
 * dry run, applied against a recording target). A failing preflight blocks the run.
 */
export async function runRecipe(recipe: Recipe, target: Target, opts: RunnerOptions): Promise<RunReport> {
  const rec = new RecordingTarget(target, opts.dryRun);
  // This machine, recorded into the same list: the plan shows its commands exactly, marked as here.
  const local = target.kind === 'local' ? rec : new RecordingTarget(opts.local ?? new LocalTarget(), opts.dryRun, true, rec.actions);
  const log = (line: string) => opts.log?.(redact(line));
  const report: RunReport = {
    recipe: recipe.name,
    target: target.label,
    dryRun: opts.dryRun,
    ok: true,
    tasks: recipe.tasks.map((t) => ({ id: t.id, title: t.title, status: 'not-reached', why: '', actions: [] })),
    notes: [...recipe.notes],
  };
  let stopMessage: string | undefined;
  log(`pi-prep ${recipe.name}${opts.dryRun ? ' (dry run)' : ''} on ${target.label}`);

  const listr = new Listr(
    recipe.tasks.map((task, i) => ({
      title: task.title,
      task: async (_: unknown, lt: { title: string; output: string; skip(msg?: string): void }) => {
        const entry: TaskReport = report.tasks[i]!;
        // A task before this one asked to stop (reboot): the rest wait for the next run.
        if (stopMessage) return lt.skip(`${task.title} (waits for the next run)`);
        const ctx: RunContext = {
          target: rec,
          local,
          dryRun: opts.dryRun,
          log: (line) => {
            log(`  ${line}`);
            lt.output = redact(line);
          },
          host: (text) => rec.actions.push({ kind: 'host', text }),
          stopAfter: (message) => {
            if (opts.dryRun) report.notes.push(message);
            else stopMessage = message;
          },
        };
        const check = await task.check(ctx).catch((err: unknown) => {
          entry.status = 'failed';
          entry.error = oneLine(err);
          report.ok = false;
          throw redacted(err);
        });
        entry.why = check.why;
        log(`${task.title}: ${check.done ? 'done' : 'to do'}: ${check.why}`);
        if (check.done) {
          entry.status = 'done';
          lt.title = `${task.title} (done: ${redact(check.why)})`;
          return;
        }
        if (!task.apply) {
          entry.status = 'blocked';
          report.ok = false;
          if (opts.dryRun) return;
          throw new TaskFailedError(redact(`${task.title}: ${check.why}`));
        }
        try {
          await task.apply(ctx);
          entry.status = opts.dryRun ? 'would-run' : 'applied';
        } catch (err) {
          entry.status = 'failed';
          entry.error = oneLine(err);
          report.ok = false;
          throw redacted(err);
        } finally {
          entry.actions = rec.take();
          for (const a of entry.actions) log(`  ${describeAction(a)}`);
        }
      },
    })),
    {
      concurrent: false,
      exitOnError: true,
      // listr's own SIGINT handler calls process.exit(127) and skips every cleanup: cli/main.ts handles signals.
      registerSignalListeners: false,
      renderer: opts.renderer ?? 'silent',
      fallbackRenderer: 'simple',
      // A failed task shows its title only: the error itself is printed once, as the run's last line.
      rendererOptions: opts.renderer === 'simple' ? { logger: new EndsOnlyLogger({ useIcons: true }) } : { collapseSubtasks: false, showErrorMessage: false },
      collectErrors: false,
    } as never,
  );

  try {
    await listr.run();
  } catch (err) {
    log(`failed: ${oneLine(err)}`);
    throw new RecipeFailed(report, err);
  }
  if (stopMessage) {
    report.stoppedFor = stopMessage;
    log(stopMessage);
  }
  return report;
}

/** listr prints a failing task's message itself: it must be redacted before listr sees it. */
function redacted(err: unknown): PiPrepError {
  return new PiPrepError(redact(oneLine(err)), exitCodeFor(err));
}

/**
 * Plain-lines output (pipes, CI): one line per task when it ends, not another when it starts; a
 * failed task's line says FAILED without the error, which the command prints once at the end.
 */
class EndsOnlyLogger extends ListrLogger {
  override log(level: string, message: string | unknown[], options?: Parameters<ListrLogger['log']>[2]): void {
    if (level === ListrLogLevels.STARTED) return;
    const suffix = options?.suffix;
    if (level === ListrLogLevels.FAILED && suffix && typeof suffix === 'object' && !Array.isArray(suffix)) options = { ...options, suffix: { ...suffix, field: ListrLogLevels.FAILED } };
    // A skip message repeats the title (the TTY renderer shows it instead of the title): once here.
    const skipped = `${ListrLogLevels.SKIPPED}: ${typeof message === 'string' ? message : ''} `;
    if (level === ListrLogLevels.SKIPPED && suffix && typeof suffix === 'object' && !Array.isArray(suffix) && typeof suffix.field === 'string' && suffix.field.startsWith(skipped)) {
      options = { ...options, suffix: { ...suffix, field: `${ListrLogLevels.SKIPPED} ${suffix.field.slice(skipped.length)}` } };
    }
    super.log(level, message, options);
  }
}

/** A run that failed: carries the report so the command can still print what happened. */
export class RecipeFailed extends PiPrepError {
  constructor(
    readonly report: RunReport,
    override readonly cause: unknown,
  ) {
    super(oneLine(cause), cause instanceof PiPrepError ? cause.exitCode : 1);
  }
}
