import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { CLI, runProcess, testCacheEnv, type CliResult } from './cli.js';

/**
 * A witness of the commands a pi-prep run starts that does not go through pi-prep's own recorder:
 * the kernel's, read with strace (execve and the clones, filtered in the kernel with seccomp-bpf,
 * so a kernel build under it costs little more). A command is what a pi-prep process (the CLI,
 * or a fleet's per-host child) started: the argv of the first execve of each process it forked.
 */
export interface TracedRun extends CliResult {
  /** In the order they were started; argv as the process was exec'd (chroot, ssh included). */
  commands: string[][];
  /** With `files`: what pi-prep processes themselves changed on this machine's filesystems, in order. */
  writes: FileWrite[];
}

/** One change a pi-prep process made itself (not through a command): the syscall's kind and path. */
export interface FileWrite {
  op: 'create' | 'open-write' | 'mkdir' | 'rename-from' | 'rename-to' | 'unlink' | 'rmdir' | 'chmod' | 'symlink' | 'truncate';
  path: string;
}

/** The file syscalls that change something; an open only with a writing flag. */
const FILE_CALLS = 'openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,chmod,fchmodat,symlink,symlinkat,link,linkat,truncate';

/**
 * `files`: witness pi-prep's own file changes too (every process's file calls stop under strace
 * then: not for a kernel build, whose compilers open thousands of files).
 */
export function runCliTraced(args: string[], opts: { env?: Record<string, string>; files?: boolean } = {}): Promise<TracedRun> {
  const dir = mkdtempSync(join(tmpdir(), 'pi-prep-trace-'));
  const out = join(dir, 'trace');
  const calls = `trace=execve,clone,clone3,fork,vfork${opts.files ? `,${FILE_CALLS}` : ''}`;
  const strace = ['-f', '--seccomp-bpf', '-q', '-e', calls, '-e', 'signal=none', '-s', '1000000', '-o', out];
  const run = runProcess('strace', [...strace, process.execPath, CLI, ...args], { env: { ...testCacheEnv(), ...opts.env } });
  return run.then((r) => ({ ...r, ...parseTrace(readFileSync(out, 'utf8')) })).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** One process (or thread) from its fork to its exit: a pid is reused once its process exited. */
interface Proc {
  parent?: Proc;
  /** A thread: its forks are its process's. */
  thread: boolean;
  execs: string[][];
}

/** The commands pi-prep processes started and the file changes they made, from strace -f output. */
export function parseTrace(trace: string): { commands: string[][]; writes: FileWrite[] } {
  const fileCalls: { proc: Proc; line: string }[] = [];
  // -q (not -qq): strace says `+++ exited with N +++` for each process, so a reused pid (a kernel
  // build forks tens of thousands) starts a new Proc instead of joining a dead one.
  const live = new Map<number, Proc>();
  const all: Proc[] = [];
  const fresh = (pid: number) => {
    const p: Proc = { thread: false, execs: [] };
    all.push(p);
    live.set(pid, p);
    return p;
  };
  const get = (pid: number) => live.get(pid) ?? fresh(pid);
  const pending = new Map<number, string>();
  let first: Proc | undefined;
  for (const raw of trace.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (!m) continue;
    const pid = Number(m[1]);
    let line = m[2]!;
    if (/^\+\+\+ (exited|killed)/.test(line)) {
      live.delete(pid);
      continue;
    }
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
      // The child may have been seen first (its lines can come before the parent's return).
      const known = live.get(Number(clone[3]));
      const child = known && known.parent === undefined && known !== first ? known : fresh(Number(clone[3]));
      child.parent = get(pid);
      child.thread = clone[2]!.includes('CLONE_THREAD');
      continue;
    }
    if (line.startsWith('execve(') && / = 0$/.test(line)) {
      const p = get(pid);
      first ??= p;
      p.execs.push(execArgv(line));
    } else if (/^\w+\(/.test(line) && !line.startsWith('execve(') && / = \d+$/.test(line)) fileCalls.push({ proc: get(pid), line });
  }
  const owner = (p: Proc): Proc => (p.thread && p.parent ? owner(p.parent) : p);
  const isNode = (p: Proc) => p === first || basename(p.execs.at(-1)?.[0] ?? '') === basename(process.execPath);
  const commands = all
    .filter((p) => !p.thread && p.parent && p.execs.length > 0 && isNode(owner(p.parent)) && !isNode(p))
    .map((p) => p.execs[0]!);
  // A forked child runs as node until it execs: only calls of processes that are node now count.
  // Paths through a directory descriptor (openat(18, "x"), /proc/self/fd/18/x: the writes that
  // re-check their directory) are named by the directory that descriptor was opened on.
  const fds = new Map<Proc, Map<number, string>>();
  const writes = fileCalls.filter((c) => isNode(owner(c.proc)) && owner(c.proc).execs.length).flatMap((c) => {
    const table = fds.get(owner(c.proc)) ?? new Map<number, string>();
    fds.set(owner(c.proc), table);
    const resolve = (p: string, dirfd?: string) => {
      const viaProc = /^\/proc\/self\/fd\/(\d+)(\/.*)?$/.exec(p);
      if (viaProc && table.has(Number(viaProc[1]))) return table.get(Number(viaProc[1]))! + (viaProc[2] ?? '');
      if (!p.startsWith('/') && dirfd !== undefined && /^\d+$/.test(dirfd) && table.has(Number(dirfd))) return `${table.get(Number(dirfd))}/${p}`;
      return p;
    };
    const open = /^openat\((AT_FDCWD|\d+), "/.exec(c.line) ?? /^open\(()"/.exec(c.line);
    const fd = / = (\d+)$/.exec(c.line);
    if (open && fd) table.set(Number(fd[1]), resolve(strings(c.line)[0] ?? '', open[1]));
    const dirfds = [...c.line.matchAll(/(?:\(|, )(AT_FDCWD|\d+), "/g)].map((m) => m[1]);
    return fileWrite(c.line).map((w, i) => ({ ...w, path: resolve(w.path, dirfds[w.op === 'rename-to' ? 1 : i === 0 ? 0 : i]) }));
  });
  return { commands, writes };
}

/** What a successful file call changed (nothing for an open that only reads). */
function fileWrite(line: string): FileWrite[] {
  const name = /^(\w+)\(/.exec(line)![1]!;
  const paths = strings(line);
  const at = (i: number) => paths[i] ?? '?';
  switch (name) {
    case 'open':
    case 'openat': {
      if (!/O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/.test(line)) return [];
      const p = at(0);
      if (p === '/dev/null' || p.startsWith('/dev/pts') || p === '/dev/tty') return [];
      return [{ op: /O_CREAT/.test(line) ? 'create' : 'open-write', path: p }];
    }
    case 'creat': return [{ op: 'create', path: at(0) }];
    case 'mkdir':
    case 'mkdirat': return [{ op: 'mkdir', path: at(0) }];
    case 'rename':
    case 'renameat':
    case 'renameat2': return [{ op: 'rename-from', path: at(0) }, { op: 'rename-to', path: at(1) }];
    case 'unlink':
    case 'unlinkat': return [{ op: /AT_REMOVEDIR/.test(line) ? 'rmdir' : 'unlink', path: at(0) }];
    case 'rmdir': return [{ op: 'rmdir', path: at(0) }];
    case 'chmod':
    case 'fchmodat': return [{ op: 'chmod', path: at(0) }];
    case 'symlink':
    case 'symlinkat':
    case 'link':
    case 'linkat': return [{ op: 'symlink', path: at(paths.length - 1) }];
    case 'truncate': return [{ op: 'truncate', path: at(0) }];
  }
  return [];
}

/** The quoted strings of a syscall line (paths), decoded. */
function strings(line: string): string[] {
  const out: string[] = [];
  for (let i = line.indexOf('"'); i >= 0; i = line.indexOf('"', i + 1)) {
    const [s, end] = cString(line, i);
    out.push(s);
    i = end;
  }
  return out;
}

/** The argv array of one `execve("path", ["a", "b"], ...) = 0` line. */
function execArgv(line: string): string[] {
  let i = line.indexOf('", [');
  if (i < 0) throw new Error(`exec-trace: cannot read ${line.slice(0, 200)}`);
  i += 4;
  const argv: string[] = [];
  while (line[i] === '"') {
    const [s, end] = cString(line, i);
    argv.push(s);
    i = end + 1;
    if (line.startsWith(', ', i)) i += 2;
  }
  return argv;
}

/** The C string strace printed at `start` (its opening quote): the text and its closing quote's index. */
function cString(line: string, start: number): [string, number] {
  let s = '';
  let i = start + 1;
  while (i < line.length && line[i] !== '"') {
    if (line[i] === '\\') {
      const c = line[i + 1]!;
      const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', v: '\v', f: '\f', '"': '"', '\\': '\\' };
      if (c in simple) (s += simple[c]), (i += 2);
      else if (c === 'x') (s += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16))), (i += 4);
      else {
        const oct = /^[0-7]{1,3}/.exec(line.slice(i + 1))?.[0] ?? '';
        s += oct ? String.fromCharCode(parseInt(oct, 8)) : c;
        i += 1 + (oct.length || 1);
      }
    } else s += line[i++];
  }
  return [Buffer.from(s, 'latin1').toString('utf8'), i];
}
