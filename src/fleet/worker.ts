import { useStdinText } from '../steps/k0s/token.js';

/** Ends each run's output on stdout (with the exit code) and on stderr: a record separator, then a tag. */
export const RUN_END = '\u001epi-prep-run-end';

export interface RunRequest {
  argv: string[];
  /** What the run reads for `--join -` (the token, never in argv). */
  input?: string;
}

/**
 * A fleet worker: one Node process that runs many hosts' commands one after another, so a fleet
 * pays for a Node start and the module loading once per --parallel slot rather than once per
 * host. Runs come in over the IPC channel; each one's output goes to stdout/stderr as a single
 * run's would, followed by RUN_END lines that tell the parent where it stops and how it exited.
 */
export async function serveFleet(main: (argv: string[]) => Promise<void>): Promise<void> {
  delete process.env.PI_PREP_FLEET_WORKER; // not inherited by anything a run starts
  let queue = Promise.resolve();
  process.on('message', (m: RunRequest) => {
    queue = queue.then(async () => {
      useStdinText(m.input ?? '');
      process.exitCode = undefined;
      await main(['node', 'pi-prep', ...m.argv]);
      const code = Number(process.exitCode ?? 0);
      process.exitCode = undefined;
      useStdinText(undefined);
      process.stdout.write(`${RUN_END} ${code}\n`);
      process.stderr.write(`${RUN_END}\n`);
    });
  });
}
