import { appendFileSync } from 'node:fs';
import { ExitCode } from '../core/errors.js';
import { lockTarget } from '../core/target-lock.js';
import { printJson, type JsonKind } from '../core/json-output.js';
import { renderMarkdown, summaryLine } from '../run/plan.js';
import { RecipeFailed, defaultRenderer, runRecipe } from '../run/runner.js';
import type { RunReport } from '../run/report.js';
import type { Recipe } from '../run/task.js';
import type { Target } from '../targets/target.js';
import { writableFileArg, type CommonFlags } from './options.js';

export interface ExecuteOptions {
  /** What the run locks (default: the target's label; alpine-sd: the card's path). */
  lockKey?: string;
  /** Runs side by side (alpine-sd's batch) would interleave their live progress; each still prints its summary. */
  quietProgress?: boolean;
  /** Under --json, hand the report over instead of printing it (a batch prints one envelope for all). */
  onReport?: (report: RunReport) => void;
}

/** Run a recipe the way every command does: checklist for dry runs, progress otherwise. */
export async function executeRecipe(recipe: Recipe, target: Target, flags: CommonFlags, o: ExecuteOptions = {}): Promise<number> {
  const lockKey = o.lockKey ?? target.label;
  if (flags.logFile) await writableFileArg(flags.logFile, '--log-file');
  const log = logSink(flags);
  const dryRun = Boolean(flags.dryRun);
  // A dry run changes nothing: it may look while another run works.
  let unlock = () => undefined as void;
  try {
    if (!dryRun) unlock = lockTarget(lockKey, lockKey);
    const report = await runRecipe(recipe, target, {
      dryRun,
      renderer: defaultRenderer(Boolean(o.quietProgress) || dryRun || Boolean(flags.json) || Boolean(flags.quiet)),
      log,
    });
    // The command's name ("rpios --rollback-kernel" is an rpios run).
    if (flags.json && o.onReport) o.onReport(report);
    else if (flags.json) printJson(recipe.name.split(' ')[0] as JsonKind, report.ok, report);
    else if (flags.quiet) return report.ok ? ExitCode.ok : ExitCode.failed;
    else if (dryRun || flags.verbose) process.stdout.write(renderMarkdown(report));
    // What to do next (boot the card, write the image, how to reach the node) is said without --verbose too.
    else process.stdout.write([summaryLine(report), ...report.notes.map((n) => `- ${n}`)].join('\n') + '\n');
    return report.ok ? ExitCode.ok : ExitCode.failed;
  } catch (err) {
    if (err instanceof RecipeFailed) {
      // Under --json the error's envelope carries the report (src/cli/report-error.ts). A dry run
      // is asked for its checklist: it is printed even when a check throws.
      if ((flags.verbose || dryRun) && !flags.json && !flags.quiet) process.stdout.write(renderMarkdown(err.report));
      if (flags.logFile) err.message += ` (full log: ${flags.logFile})`;
    }
    throw err;
  } finally {
    unlock();
    await target.close();
  }
}

function logSink(flags: CommonFlags): ((line: string) => void) | undefined {
  const verbose = flags.verbose && !flags.json;
  if (!flags.logFile && !verbose) return undefined;
  return (line) => {
    if (flags.logFile) appendFileSync(flags.logFile, `${new Date().toISOString()} ${line}\n`, { mode: 0o600 });
    if (verbose) process.stderr.write(line + '\n');
  };
}
