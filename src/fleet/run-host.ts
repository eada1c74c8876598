import { spawn } from 'node:child_process';
import { redact } from '../core/redact.js';
import { formatAddress } from '../targets/ssh-spec.js';
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

/** Run pi-prep for one host as a child process; its lines are shown with the host's name in front. */
export function runHost(h: FleetHost, argv: string[], opts: { input?: string; json: boolean; prefix: string }): Promise<HostResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [process.argv[1]!, ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: process.env,
    });
    let stdout = '';
    let lastOut = '';
    let lastErr = '';
    let lastWasErr = false;
    const relay = (stream: NodeJS.ReadableStream, out: NodeJS.WriteStream, isErr: boolean) => {
      let rest = '';
      const emit = (line: string) => {
        if (line.trim()) {
          if (isErr) lastErr = line;
          else lastOut = line;
          lastWasErr = isErr;
        }
        if (!opts.json || isErr) out.write(redact(`${opts.prefix}${line}`) + '\n');
      };
      stream.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        if (!isErr) stdout += text;
        const lines = (rest + text).split('\n');
        rest = lines.pop() ?? '';
        lines.forEach(emit);
      });
      stream.on('end', () => rest && emit(rest));
    };
    relay(child.stdout, process.stdout, false);
    relay(child.stderr, process.stderr, true);
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    const done = (exitCode: number, error?: string) =>
      resolve({
        name: h.name,
        address: formatAddress(h.address),
        exitCode,
        seconds: (Date.now() - started) / 1000,
        stdout,
        // A failure's reason is its last line: the error on stderr, or a plan's verdict on stdout
        // (never with --json: stdout is the envelope, whose last line is a brace).
        ...(exitCode !== 0 ? { error: error ?? (lastWasErr || !lastOut || opts.json ? lastErr : lastOut).replace(/^pi-prep: /, '') } : {}),
        ...(lastOut ? { last: lastOut } : {}),
      });
    child.on('error', (err) => done(1, `cannot start pi-prep: ${err.message}`));
    child.on('close', (code, signal) => done(code ?? 1, signal ? `killed by ${signal}` : undefined));
  });
}
