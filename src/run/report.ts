import type { Action } from './task.js';

export type TaskStatus = 'done' | 'applied' | 'would-run' | 'blocked' | 'failed' | 'not-reached';

export interface TaskReport {
  id: string;
  title: string;
  status: TaskStatus;
  /** The check's evidence (done) or what is missing (not done). */
  why: string;
  actions: Action[];
  error?: string;
}

export interface RunReport {
  recipe: string;
  target: string;
  dryRun: boolean;
  /** Dry-run: every preflight passes, so a real run can go ahead. Real run: nothing failed. */
  ok: boolean;
  tasks: TaskReport[];
  notes: string[];
  /** Why the run stopped early on purpose (a reboot is needed). */
  stoppedFor?: string;
}
