import { exitCodeFor, oneLine } from '../core/errors.js';
import { stoppedBy, SIGNAL_EXIT } from '../core/cleanup.js';
import { printJsonError, type JsonKind } from '../core/json-output.js';
import { redact } from '../core/redact.js';

/**
 * The one place errors become a line on stderr and an exit code; under --json (jsonKind given)
 * also the error's envelope on stdout, so a script reading stdout sees every outcome.
 */
export function reportError(err: unknown, jsonKind?: JsonKind): number {
  // A signal already said what happened; the error it caused (a killed child) is not news.
  const sig = stoppedBy();
  if (sig) return SIGNAL_EXIT[sig];
  process.stderr.write(`pi-prep: ${redact(oneLine(err))}\n`);
  if (jsonKind) printJsonError(jsonKind, err);
  if (process.env.PI_PREP_DEBUG && err instanceof Error && err.stack) process.stderr.write(redact(err.stack) + '\n');
  return exitCodeFor(err);
}
