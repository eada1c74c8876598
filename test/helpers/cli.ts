import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The tests' shared download cache, unless a test gives its own XDG_CACHE_HOME. */
export const testCacheEnv = () => ({ XDG_CACHE_HOME: process.env.PI_PREP_TEST_CACHE ?? '/tmp/pi-prep-test-cache' });

/** Run the built CLI as a user would: a real process, no TTY. `bin`: an installed `pi-prep` instead. */
export function runCli(args: string[], opts: { input?: string; env?: Record<string, string>; cwd?: string; bin?: string } = {}): Promise<CliResult> {
  return runProcess(opts.bin ?? process.execPath, opts.bin ? args : [CLI, ...args], { ...opts, env: { ...testCacheEnv(), ...opts.env } });
}

/** A real process with stdin, stdout and stderr as pipes: its exit code and what it printed. */
export function runProcess(file: string, args: string[], opts: { input?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}
