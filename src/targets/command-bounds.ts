import { onInterrupt } from '../core/cleanup.js';
import type { RunOptions } from './target.js';

/**
 * The one rule bounding every command a target runs: a command that prints nothing (stdout or
 * stderr) for the idle bound is taken as hung and stopped, with everything it started. Output
 * resets the clock, so a long command that keeps talking (a kernel build, `apk add` of many
 * packages) may take as long as it needs. A caller may add a total bound (`timeoutMs`: `k0s
 * status` in a wait loop) or set a longer idle bound for a command known to be quiet for long
 * (`idleTimeoutMs`: `apk add` fetching one large package on a slow link).
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;

/** `PI_PREP_COMMAND_IDLE_TIMEOUT=SECONDS` sets the default idle bound (docs/safety.md). */
export function defaultIdleMs(): number {
  const s = Number(process.env.PI_PREP_COMMAND_IDLE_TIMEOUT);
  return Number.isFinite(s) && s > 0 ? s * 1000 : DEFAULT_IDLE_TIMEOUT_MS;
}

export type Expiry = 'idle' | 'total';

/** A child as execa returns it: what the bound watches and stops. */
interface Child {
  pid?: number;
  stdout?: (NodeJS.ReadableStream & { destroy?(): void }) | null;
  stderr?: (NodeJS.ReadableStream & { destroy?(): void }) | null;
  kill(signal?: NodeJS.Signals): boolean;
  once(event: 'exit', listener: () => void): unknown;
  exitCode: number | null;
  then: PromiseLike<unknown>['then'];
}

export interface Bound {
  /** Why the command was stopped, if it was. */
  readonly expired: Expiry | undefined;
  /** One line for the error: what the bound was. */
  describe(): string;
}

/**
 * Watch CHILD under OPTS' bounds. GROUP: the child leads its own process group (spawned
 * detached), so a hung command is stopped with what it started (a shell's children, chroot's
 * command): SIGTERM to the group, SIGKILL to the group once the leader is gone (or after 5 s).
 * A signal to pi-prep stops the group the same way: detached children do not get the terminal's
 * Ctrl-C.
 */
export function boundCommand(child: Child, opts: RunOptions, group: boolean): Bound {
  const idleMs = opts.idleTimeoutMs ?? defaultIdleMs();
  const totalMs = opts.timeoutMs;
  let expired: Expiry | undefined;
  let finished = false;
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (group && child.pid) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      // already gone
    }
  };
  const stop = (why: Expiry) => {
    if (finished || expired) return;
    expired = why;
    signal('SIGTERM');
    setTimeout(() => signal('SIGKILL'), 5000).unref();
    // Once it is gone, its output is not waited for: someone else may hold it open for good (the
    // ssh master, which was handed the client's descriptors, while the node's command still runs).
    const release = () => {
      child.stdout?.destroy?.();
      child.stderr?.destroy?.();
    };
    if (child.exitCode !== null) release();
    else child.once('exit', release);
  };
  let idle = setTimeout(() => stop('idle'), idleMs);
  const total = totalMs !== undefined ? setTimeout(() => stop('total'), totalMs) : undefined;
  const activity = () => {
    clearTimeout(idle);
    if (!finished && !expired) idle = setTimeout(() => stop('idle'), idleMs);
  };
  child.stdout?.on('data', activity);
  child.stderr?.on('data', activity);
  // Stopped by a signal to pi-prep, or pi-prep exiting while the command runs: the group goes too.
  // On a signal pi-prep waits (up to 5 s) until the command is gone and its output closed, which
  // is when whatever it started and that still holds its output is gone too.
  const gone = new Promise<void>((r) => child.then(() => r(), () => r()));
  const kill = () => signal('SIGKILL');
  const forget = onInterrupt(async () => {
    kill();
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000).unref())]);
  });
  if (group) onExit.add(kill);
  const settle = () => {
    finished = true;
    clearTimeout(idle);
    clearTimeout(total);
    forget();
    onExit.delete(kill);
    // Members that ignored SIGTERM outlive the leader: the group id is still theirs.
    if (expired) signal('SIGKILL');
  };
  child.then(settle, settle);
  return {
    get expired() {
      return expired;
    },
    describe() {
      return expired === 'total'
        ? `did not finish within ${seconds(totalMs!)} and was stopped`
        : `printed nothing for ${seconds(idleMs)} and was stopped (hung)`;
    },
  };
}

/** Groups to kill if pi-prep exits while they run: one 'exit' listener however many run at once. */
const onExit = new Set<() => void>();
process.on('exit', () => onExit.forEach((kill) => kill()));

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}

/** The exit code a stopped command reports (as coreutils' `timeout` does). */
export const TIMED_OUT_EXIT = 124;
