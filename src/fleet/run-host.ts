import { oneLine } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { lineSplitter } from '../core/text.js';
import { withStdinText } from '../lib/k0s/token.js';
import { formatAddress } from '../targets/ssh-spec.js';
import { withSink, writeErr, writeOut } from './host-output.js';
import type { FleetHost } from './inventory.js';

export interface HostResult {
  name: string;
  address: string;
  exitCode: number;
  seconds: number;
  stdout: string;
  /** The host's last line on stderr (its one-line error) when it failed. */
  error?: string;
  /** Its last line on stdout (the summary line of a run). */
  last?: string;
}

/** Runs one pi-prep command line to its exit code (src/cli/main.ts runCli). */
export type RunCli = (argv: string[]) => Promise<number>;

export interface HostRunOptions {
  /** What the run reads for `--join -` (the token, never in argv). */
  input?: string;
  json: boolean;
  /** Put in front of each of the host's lines ("pi-a | "). */
  prefix: string;
}

/**
 * One host's run of a fleet, in this process: the same command line a single-host run would
 * parse, with its own SSH target, its own exit code and its own output, shown line by line with
 * the host's name in front (src/fleet/host-output.ts routes its writes here). An error that
 * escapes the command fails this host only.
 */
export async function runHost(runCli: RunCli, h: FleetHost, argv: string[], opts: HostRunOptions): Promise<HostResult> {
  const started = Date.now();
  let stdout = '';
  let lastOut = '';
  let lastErr = '';
  let lastWasErr = false;
  const show = (line: string, isErr: boolean) => {
    if (line.trim()) {
      if (isErr) lastErr = line;
      else lastOut = line;
      lastWasErr = isErr;
    }
    if (!opts.json || isErr) (isErr ? writeErr : writeOut)(redact(`${opts.prefix}${line}`) + '\n');
  };
  const out = lineSplitter((l) => ((stdout += l + '\n'), show(l, false)));
  const err = lineSplitter((l) => show(l, true));
  let exitCode: number;
  let error: string | undefined;
  try {
    exitCode = await withSink({ out: out.push, err: err.push }, () => withStdinText(opts.input ?? '', () => runCli(['node', 'pi-prep', ...argv])));
  } catch (e) {
    // runCli reports what it knows; anything else is this host's failure, not the fleet's.
    [exitCode, error] = [1, oneLine(e)];
  }
  out.end();
  err.end();
  return {
    name: h.name,
    address: formatAddress(h.address),
    exitCode,
    seconds: (Date.now() - started) / 1000,
    stdout,
    // A failure's reason is its last line: the error on stderr, or a plan's verdict on stdout
    // (with --json, stdout is the report, which says why itself).
    ...(exitCode !== 0 ? failure(error ?? (lastWasErr || !lastOut || opts.json ? lastErr : lastOut).replace(/^pi-prep: /, '')) : {}),
    ...(lastOut ? { last: lastOut } : {}),
  };
}

const failure = (why: string) => (why ? { error: why } : {});
