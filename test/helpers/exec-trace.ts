import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { CLI, type CliResult } from './cli.js';

/**
 * A witness of the commands a pi-prep run starts that does not go through pi-prep's own recorder:
 * the kernel's, read with strace (execve and the clones, filtered in the kernel with seccomp-bpf,
 * so a kernel build under it costs little more). A command is what a pi-prep process (the CLI,
 * or a fleet's per-host child) started: the argv of the first execve of each process it forked.
 */
export interface TracedRun extends CliResult {
  /** In the order they were started; argv as the process was exec'd (chroot, ssh included). */
  commands: string[][];
}

export function runCliTraced(args: string[], opts: { env?: Record<string, string> } = {}): Promise<TracedRun> {
  const dir = mkdtempSync(join(tmpdir(), 'pi-prep-trace-'));
  const out = join(dir, 'trace');
  const strace = ['-f', '--seccomp-bpf', '-qq', '-e', 'trace=execve,clone,clone3,fork,vfork', '-e', 'signal=none', '-s', '1000000', '-o', out];
  return new Promise((resolve, reject) => {
    const child = spawn('strace', [...strace, process.execPath, CLI, ...args], {
      env: { ...process.env, XDG_CACHE_HOME: process.env.PI_PREP_TEST_CACHE ?? '/tmp/pi-prep-test-cache', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ code: code ?? -1, stdout, stderr, commands: commandsOf(readFileSync(out, 'utf8')) });
      } catch (err) {
        reject(err);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
    child.stdin.end('');
  });
}

interface Proc {
  parent?: number;
  /** A thread: its forks are its process's. */
  thread: boolean;
  execs: string[][];
  order: number;
}

/** The commands pi-prep processes started, from strace -f output. */
export function commandsOf(trace: string): string[][] {
  const procs = new Map<number, Proc>();
  const get = (pid: number) => procs.get(pid) ?? (procs.set(pid, { thread: false, execs: [], order: procs.size }), procs.get(pid)!);
  const pending = new Map<number, string>();
  let first: number | undefined;
  for (const raw of trace.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (!m) continue;
    const pid = Number(m[1]);
    let line = m[2]!;
    // A call another thread interrupted comes in two parts: put them together.
    if (line.endsWith('<unfinished ...>')) {
      pending.set(pid, line.slice(0, -'<unfinished ...>'.length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(line);
    if (resumed) {
      line = (pending.get(pid) ?? '') + resumed[1];
      pending.delete(pid);
    }
    const clone = /^(clone3?|v?fork)\((.*)\) = (\d+)$/.exec(line);
    if (clone) {
      const child = get(Number(clone[3]));
      child.parent = pid;
      child.thread = clone[2]!.includes('CLONE_THREAD');
      child.order = procs.size;
      continue;
    }
    if (line.startsWith('execve(') && / = 0$/.test(line)) {
      first ??= pid;
      get(pid).execs.push(execArgv(line));
    }
  }
  const owner = (pid: number): number => {
    const p = procs.get(pid);
    return p?.thread && p.parent !== undefined ? owner(p.parent) : pid;
  };
  const isNode = (pid: number) => pid === first || basename(procs.get(pid)?.execs.at(-1)?.[0] ?? '') === basename(process.execPath);
  return [...procs.entries()]
    .filter(([pid, p]) => !p.thread && p.parent !== undefined && p.execs.length > 0 && isNode(owner(p.parent)) && !isNode(pid))
    .sort((a, b) => a[1].order - b[1].order)
    .map(([, p]) => p.execs[0]!);
}

/** The argv array of one `execve("path", ["a", "b"], ...) = 0` line. */
function execArgv(line: string): string[] {
  let i = line.indexOf('", [');
  if (i < 0) throw new Error(`exec-trace: cannot read ${line.slice(0, 200)}`);
  i += 4;
  const argv: string[] = [];
  while (line[i] === '"') {
    let s = '';
    i++;
    while (line[i] !== '"') {
      if (line[i] === '\\') {
        const c = line[i + 1]!;
        const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', v: '\v', f: '\f', '"': '"', '\\': '\\' };
        if (c in simple) (s += simple[c]), (i += 2);
        else if (c === 'x') (s += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16))), (i += 4);
        else {
          const oct = /^[0-7]{1,3}/.exec(line.slice(i + 1))![0];
          s += String.fromCharCode(parseInt(oct, 8));
          i += 1 + oct.length;
        }
      } else s += line[i++];
    }
    argv.push(Buffer.from(s, 'latin1').toString('utf8'));
    i++;
    if (line.startsWith(', ', i)) i += 2;
  }
  return argv;
}
