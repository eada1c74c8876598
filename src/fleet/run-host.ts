import { spawn, type ChildProcess } from 'node:child_process';
import { redact } from '../core/redact.js';
import { formatAddress } from '../targets/ssh-spec.js';
import type { FleetHost } from './inventory.js';
import { RUN_END, type RunRequest } from './worker.js';

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

const failure = (why: string) => (why ? { error: why } : {});

interface Current {
  onOut(line: string): void;
  onErr(line: string): void;
  end(exitCode: number, error?: string): void;
}

/**
 * One --parallel slot of a fleet: a pi-prep worker process (src/fleet/worker.ts) that runs this
 * slot's hosts one after another. Each host's lines are shown with its name in front. A run that
 * kills its worker fails that host only; the next host gets a fresh worker.
 */
export class HostRunner {
  private child?: ChildProcess;
  private current?: Current;

  run(h: FleetHost, argv: string[], opts: { input?: string; json: boolean; prefix: string }): Promise<HostResult> {
    const started = Date.now();
    const child = this.child ?? this.spawn();
    return new Promise((resolve) => {
      let stdout = '';
      let lastOut = '';
      let lastErr = '';
      let lastWasErr = false;
      let code: number | undefined;
      let errDone = false;
      const show = (line: string, isErr: boolean) => {
        if (line.trim()) {
          if (isErr) lastErr = line;
          else lastOut = line;
          lastWasErr = isErr;
        }
        if (!opts.json || isErr) (isErr ? process.stderr : process.stdout).write(redact(`${opts.prefix}${line}`) + '\n');
      };
      const finish = (exitCode: number, error?: string) => {
        this.current = undefined;
        resolve({
          name: h.name,
          address: formatAddress(h.address),
          exitCode,
          seconds: (Date.now() - started) / 1000,
          stdout,
          // A failure's reason is its last line: the error on stderr, or a plan's verdict on stdout
          // (with --json, stdout is the report, which says why itself).
          ...(exitCode !== 0 ? failure(error ?? (lastWasErr || !lastOut || opts.json ? lastErr : lastOut).replace(/^pi-prep: /, '')) : {}),
          ...(lastOut ? { last: lastOut } : {}),
        });
      };
      this.current = {
        onOut: (line) => {
          const at = line.indexOf(RUN_END);
          if (at < 0) {
            stdout += line + '\n';
            return show(line, false);
          }
          if (at > 0) (stdout += line.slice(0, at)), show(line.slice(0, at), false);
          code = Number(line.slice(at + RUN_END.length).trim());
          if (errDone) finish(code);
        },
        onErr: (line) => {
          const at = line.indexOf(RUN_END);
          if (at < 0) return show(line, true);
          if (at > 0) show(line.slice(0, at), true);
          errDone = true;
          if (code !== undefined) finish(code);
        },
        end: finish,
      };
      const request: RunRequest = { argv, input: opts.input ?? '' };
      child.send(request);
    });
  }

  /** Let the worker go: it exits once idle. */
  close(): void {
    if (this.child?.connected) this.child.disconnect();
    this.child = undefined;
  }

  private spawn(): ChildProcess {
    const child = spawn(process.execPath, [process.argv[1]!], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, PI_PREP_FLEET_WORKER: '1' },
    });
    const lines = (stream: NodeJS.ReadableStream, each: (line: string) => void) => {
      let rest = '';
      stream.on('data', (chunk: Buffer) => {
        const parts = (rest + chunk.toString('utf8')).split('\n');
        rest = parts.pop() ?? '';
        parts.forEach(each);
      });
    };
    lines(child.stdout!, (l) => this.current?.onOut(l));
    lines(child.stderr!, (l) => this.current?.onErr(l));
    child.on('error', (err) => this.gone(child, `cannot start pi-prep: ${err.message}`));
    child.on('exit', (code, signal) => this.gone(child, signal ? `killed by ${signal}` : `pi-prep exited ${code} during the run`, code ?? 1));
    this.child = child;
    return child;
  }

  private gone(child: ChildProcess, why: string, code = 1): void {
    if (this.child === child) this.child = undefined;
    // Let the last lines through before the host is called failed.
    setImmediate(() => this.current?.end(code === 0 ? 1 : code, why));
  }
}
