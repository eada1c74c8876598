import { exitCodeFor, oneLine } from '../core/errors.js';
import { stoppedBy, SIGNAL_EXIT } from '../core/cleanup.js';
import { redact } from '../core/redact.js';

/** The one place errors become a line on stderr and an exit code. */
export function reportError(err: unknown): number {
  // A signal already said what happened; the error it caused (a killed child) is not news.
  const sig = stoppedBy();
  if (sig) return SIGNAL_EXIT[sig];
  process.stderr.write(`pi-prep: ${redact(oneLine(err))}\n`);
  if (process.env.PI_PREP_DEBUG && err instanceof Error && err.stack) process.stderr.write(redact(err.stack) + '\n');
  return exitCodeFor(err);
}
