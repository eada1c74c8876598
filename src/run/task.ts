import type { Target } from '../targets/target.js';

/** What a task found: done (with the evidence) or not (with what is missing). */
export interface Check {
  done: boolean;
  why: string;
}

export const done = (why: string): Check => ({ done: true, why });
export const todo = (why: string): Check => ({ done: false, why });

/** One change (or one requirement) of a recipe. Tasks are data; the runner decides what to do with them. */
export interface Task {
  id: string;
  title: string;
  /** Runs in every mode, reads only. */
  check(ctx: RunContext): Promise<Check>;
  /**
   * Makes the change. Absent for preflight tasks: when their check fails, `why` (which names
   * the fix) stops the run. In dry-run, apply runs against a recording target, so the plan lists
   * exactly the commands and writes the real run would make.
   */
  apply?(ctx: RunContext): Promise<void>;
}

export interface Recipe {
  name: string;
  title: string;
  tasks: Task[];
  /** Said once in the plan, e.g. what a root directory cannot do. */
  notes: string[];
}

/** Something done on this machine rather than the target (a download, a build), for the plan. */
export interface HostAction {
  kind: 'host';
  text: string;
}

/**
 * One change a run makes (or, in a dry run, would make). `here`: made on this machine rather than
 * on the node (a download, a cross-build, a card write), when the two differ.
 */
export type Action = (
  | { kind: 'run'; argv: string[]; input?: 'data' }
  | { kind: 'write'; path: string; mode?: number; bytes: number; secret?: boolean; backup?: boolean; diff?: string[] }
  | { kind: 'put'; from: string; path: string; mode?: number; backup?: boolean }
  | { kind: 'mkdir'; path: string; mode: number }
  | { kind: 'chmod'; path: string; mode: number }
  | { kind: 'remove'; path: string }
  | { kind: 'download'; url: string; path: string; sha256: string }
  | HostAction
) & { here?: true };

export interface RunContext {
  /** The node. In dry-run, a recording target: reads go through, changes are recorded only. */
  target: Target;
  /**
   * This machine, recorded the same way (downloads, cross-builds, card writes, scratch files).
   * The same object as `target` when the node is this machine.
   */
  local: Target;
  dryRun: boolean;
  /** A line of progress for the current task (redacted before it is shown or logged). */
  log(line: string): void;
  /** Record work done on this machine (downloads, builds): shown in plans, performed only when !dryRun. */
  host(text: string): void;
  /**
   * Stop the run after this task, successfully, with a message for the user
   * (e.g. "reboot, then run the same command again"). In dry-run it becomes a note.
   */
  stopAfter(message: string): void;
}
