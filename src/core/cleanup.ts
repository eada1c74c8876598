/**
 * What a failure undoes (temp files, scratch, loop devices, ssh masters), registered so that a
 * signal undoes it too: the code that creates a leftover registers its removal and unregisters it
 * once it is gone or kept on purpose.
 */
type Cleanup = () => Promise<void> | void;

const pending = new Set<Cleanup>();

export function onInterrupt(fn: Cleanup): () => void {
  pending.add(fn);
  return () => {
    pending.delete(fn);
  };
}

/** Newest first, each at most once; a failing cleanup does not stop the others. */
export async function runCleanups(): Promise<void> {
  for (const fn of [...pending].reverse()) {
    pending.delete(fn);
    try {
      await fn();
    } catch {
      // best effort: the next run sweeps what is left
    }
  }
}

/** Conventional exit codes: 128 + the signal number. */
export const SIGNAL_EXIT = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
export type HandledSignal = keyof typeof SIGNAL_EXIT;

/**
 * SIGINT/SIGTERM/SIGHUP: one line, the same cleanup as a failure, then the conventional exit code.
 * A second signal while cleaning up exits at once.
 */
let stopping: HandledSignal | undefined;

/** The signal the run is stopping for, if any. */
export function stoppedBy(): HandledSignal | undefined {
  return stopping;
}

/** The one line a signal ends a run with (stderr, and the JSON error's message under --json). */
export function stoppedMessage(sig: HandledSignal): string {
  return `stopped by ${sig}: temporary files removed; run the same command again to finish`;
}

/**
 * AFTER runs once the cleanup is done, right before the exit (the `--json` envelope: a script
 * reading stdout sees this outcome too).
 */
export function exitOnSignals(
  write: (line: string) => void = (l) => process.stderr.write(l),
  after?: (sig: HandledSignal) => Promise<void> | void,
): void {
  handlers = { write, after };
  // Once per process: a fleet worker runs main() once per host, and a second listener for the
  // same signal would see `stopping` already set and exit before the cleanup.
  if (installed) return;
  installed = true;
  for (const sig of Object.keys(SIGNAL_EXIT) as HandledSignal[]) {
    process.on(sig, () => {
      const code = SIGNAL_EXIT[sig];
      if (stopping) process.exit(code);
      stopping = sig;
      handlers.write(`pi-prep: ${stoppedMessage(sig)}\n`);
      void runCleanups()
        .then(() => handlers.after?.(sig))
        .catch(() => undefined)
        .finally(() => process.exit(code));
    });
  }
}

let installed = false;
let handlers: { write: (line: string) => void; after?: (sig: HandledSignal) => Promise<void> | void } = { write: () => undefined };
