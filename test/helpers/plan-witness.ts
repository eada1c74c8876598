import { existsSync, lstatSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { FileWrite } from './exec-trace.js';
import { parseEnvelope } from './json-contract.js';

/**
 * Compare a dry run's plan with what the real run on the same starting state did, as witnessed
 * outside pi-prep's recorder (exec-trace.ts, the node's files) and by the real run's own report.
 *
 * The only differences allowed are values a dry run cannot know, each by a named rule:
 * - PLACEHOLDER: a plan argument written `<...>` (e.g. `<kernelrelease>`, `<read-only loop of the
 *   boot partition>`) stands for what the run learns on the way; inside an argument it matches any
 *   text, as a whole argument it matches one or more arguments (a file list read after extraction).
 * - TEMP: a directory pi-prep makes with mkdtemp (`pi-prep-<name>-XXXXXX`), or names at random
 *   itself (alpine-sd's scratch, `pi-prep-sd-<16 hex>`), is new each run; such names compare as
 *   `pi-prep-<name>-<tmp>`.
 * - READ: a command that only reads is not an action, so not in the plan. A witnessed command is a
 *   read when the dry run made the same command too, any number of times (the dry run's commands ran
 *   with the filesystem read-only and changed nothing: the read-only tests), e.g. `k0s status`
 *   asked again after `k0s start`; or when its tool documents it as only reading (READS below: a
 *   check the dry run may skip, or a read-back of what this run just wrote or built).
 * - GLOB and MANIFEST: a planned copy by pattern stands for the copies of the files it covers, and
 *   the kernel install record's lists of those files are not compared (see below).
 * - PID, STAMP, SCRATCH (alpine-sd): the scratch directory's pid file holds the run's own pid; a
 *   card's overlay carries its writing time (its size is the run's); the scratch directory is
 *   removed when the command ends (it may hold the token), so nothing planned in it is there after.
 * No action is ever dropped: every planned command must be witnessed, in the planned order.
 */

export interface PlanAction {
  kind: string;
  argv?: string[];
  path?: string;
  from?: string;
  mode?: string;
  bytes?: number;
  secret?: boolean;
  url?: string;
  text?: string;
  here?: boolean;
  backup?: boolean;
  input?: string;
  diff?: string[];
}

export interface PlanTask {
  id: string;
  status: string;
  actions: PlanAction[];
}

export interface Report {
  target: string;
  ok: boolean;
  tasks: PlanTask[];
  notes: string[];
  stoppedFor?: string;
}

/** A run's report from its --json stdout: the data of a finished run, or the report a failed one carries. */
export function reportOf(stdout: string, kind: string): Report {
  const doc = parseEnvelope(stdout, kind);
  if ('data' in doc) return doc.data as Report;
  if (doc.error?.report) return doc.error.report as Report;
  throw new Error(`no report in ${stdout}`);
}

/** TEMP: mkdtemp's six random characters, or 16 random hex digits. */
export const TEMP = /(pi-prep-[a-z0-9-]+?-)(?:[0-9a-f]{16}|[A-Za-z0-9]{6})(?=[/"'`\s]|$)/g;
export const untemp = (s: string) => s.replace(TEMP, '$1<tmp>');

/** Where a witnessed command ran and its argv there. */
export interface Command {
  where: 'here' | 'node';
  argv: string[];
}

/** Split a line quoteArgv (src/core/quote.ts) made: bare words and '...' with '\'' inside. */
export function splitQuoted(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === ' ') {
      i++;
      continue;
    }
    let w = '';
    while (i < line.length && line[i] !== ' ') {
      if (line[i] === "'") {
        const end = line.indexOf("'", i + 1);
        w += line.slice(i + 1, end);
        i = end + 1;
      } else if (line.startsWith("\\'", i)) {
        w += "'";
        i += 2;
      } else w += line[i++];
    }
    out.push(w);
  }
  return out;
}

/**
 * A traced command as the plan would name it. `chroot ROOT argv` is argv on a root target's node;
 * `ssh ... -- HOST 'exec env PATH=... argv'` is argv on an SSH node (sudo -n and env stripped).
 * The SSH target's own file primitives (`sh -c SCRIPT`) and connection control (`ssh -O`) are
 * how writes and reads travel, compared with the writes instead: undefined for those.
 */
export function decode(argv: string[], roots: string[]): Command | undefined {
  if (argv[0] === 'chroot' && roots.includes(argv[1]!)) return { where: 'node', argv: argv.slice(2) };
  if (argv[0] === 'ssh') {
    if (argv.includes('-O')) return undefined;
    let remote = splitQuoted(argv.at(-1)!);
    if (remote[0] === 'exec') remote = remote.slice(1);
    if (remote[0] === 'sudo') remote = remote.slice(remote.indexOf('--') >= 0 ? remote.indexOf('--') + 1 : 2);
    if (remote[0] !== 'env') return undefined; // sh -c: a file primitive or the facts read
    remote = remote.slice(1);
    while (remote[0] && /^[A-Za-z_][A-Za-z0-9_]*=/.test(remote[0])) remote = remote.slice(1);
    return { where: 'node', argv: remote };
  }
  return { where: 'here', argv };
}

/** PLACEHOLDER and TEMP: does the planned argv stand for the witnessed one? */
export function sameCommand(planned: string[], seen: string[]): boolean {
  const p = planned.map(untemp);
  const s = seen.map(untemp);
  const match = (i: number, j: number): boolean => {
    if (i === p.length) return j === s.length;
    const a = p[i]!;
    if (/^<[^<>]+>$/.test(a)) {
      for (let k = j + 1; k <= s.length; k++) if (match(i + 1, k)) return true;
      return false;
    }
    if (j === s.length) return false;
    const re = new RegExp('^' + a.split(/<[^<>]+>/).map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+') + '$');
    return re.test(s[j]!) && match(i + 1, j + 1);
  };
  return match(0, 0);
}

/** READS: commands that only read, by their tools' documentation (argv[0] and the words that make it a read). */
const READS: string[][] = [
  ['uname'], ['getconf'], ['id'], ['lsblk'], ['blkid'], ['findmnt'], ['dpkg-query'],
  ['sfdisk', '--dump'], ['sfdisk', '-d'], ['sfdisk', '--json'], ['sfdisk', '-F'],
  ['apk', 'info'], ['lbu', 'status'], ['k0s', 'status'], ['/usr/local/bin/k0s', 'status'], ['/media/k0s-data/pi-prep/k0s', 'status'],
  ['systemctl', 'is-active'], ['systemctl', 'is-enabled'], ['systemctl', 'show'], ['rc-service', '--exists'],
  ['git', 'rev-parse'], ['git', 'ls-remote'], ['git', '-C', '*', 'rev-parse'],
  ['make', '-C', '*', '*', '*', '*', '-s', 'kernelrelease'], ['make', '-C', '*', '*', '*', '-s', 'kernelrelease'],
];
export function isReadCommand(argv: string[]): boolean {
  return READS.some((r) => r.length <= argv.length && r.every((w, i) => w === '*' || w === argv[i]));
}

export interface CommandDiff {
  /** Planned, never witnessed (in the planned order). */
  missing: string[][];
  /** Witnessed, neither planned nor a read. */
  unplanned: string[][];
}

/**
 * Walk the witnessed commands in order against the planned ones (`here` kept apart when the node
 * is not this machine): each is the next planned command, or a READ, or unplanned.
 */
export function compareCommands(planned: Command[], seen: Command[], dryRunSeen: Command[], readBack: (argv: string[]) => boolean): CommandDiff {
  const reads = new Set(dryRunSeen.map((c) => c.argv.map(untemp).join('\0')));
  const unplanned: string[][] = [];
  let i = 0;
  for (const c of seen) {
    const next = planned[i];
    if (next && next.where === c.where && sameCommand(next.argv, c.argv)) {
      i++;
      continue;
    }
    if (!reads.has(c.argv.map(untemp).join('\0')) && !isReadCommand(c.argv) && !readBack(c.argv)) unplanned.push([c.where, ...c.argv]);
  }
  return { missing: planned.slice(i).map((c) => [c.where, ...c.argv]), unplanned };
}

/** The plan's `run` actions as commands; on a local node every action is here. */
export function plannedCommands(r: Report, nodeIsHere = false): Command[] {
  return r.tasks.flatMap((t) => t.actions.filter((a) => a.kind === 'run').map((a) => ({ where: a.here || nodeIsHere ? 'here' as const : 'node' as const, argv: a.argv! })));
}

/** Every action but the runs, with its task, in order (TEMP applied to every string). */
export function otherActions(r: Report): (PlanAction & { task: string })[] {
  return r.tasks.flatMap((t) => t.actions.filter((a) => a.kind !== 'run').map((a) => JSON.parse(untemp(JSON.stringify({ task: t.id, ...a }))) as PlanAction & { task: string }));
}

/** PLACEHOLDER (`<...>`: any text) and GLOB (`*`: any text within one path component) in a planned string. */
function body(s: string): string {
  return s.split(/(<[^<>]+>|\*)/).map((x) => (x === '*' ? '[^/]*' : /^<[^<>]+>$/.test(x) ? '.+' : x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
}
const like = (planned: string, real: string) => new RegExp(`^${body(planned)}$`).test(real);
/** The same, or a path under it (a directory copied file by file). */
const under = (planned: string, real: string) => new RegExp(`^${body(planned.replace(/\/$/, ''))}(/.+)?$`).test(real);

/**
 * GLOB: a planned copy whose source or destination the dry run cannot list (a `*`, a `<...>`, a
 * destination directory ending in /) stands for the real run's copies of each file it covers, in a
 * row: one or more, or none for a `*` (a pattern may match nothing); a source or destination
 * directory covers the paths under it.
 */
const many = (a: PlanAction) => a.kind === 'put' && /[*<]|\/$/.test(`${a.from ?? ''} ${a.path ?? ''}`);

/**
 * MANIFEST: the kernel install record (`kernel-install.json`) lists the boot files the build made,
 * which a dry run names by placeholders: its list entries (and so its size) are not compared, every
 * other line is.
 */
const isManifest = (a: PlanAction) => a.kind === 'write' && /\/kernel-install\.json$/.test(a.path ?? '');
const manifestLines = (diff: unknown[]) => diff.map(String).filter((l) => !/^[+-] {5}"/.test(l) && !/^[+-] {3}\],?$/.test(l)).map((l) => l.replace(/\[\],?$/, '['));
/** PID: alpine-sd's scratch directory holds the pid of the run that made it (for the sweep of a killed run's). */
const isPidFile = (a: PlanAction) => a.kind === 'write' && /\/pi-prep-sd-<tmp>\/pid$/.test(a.path ?? '');
/** STAMP: a card's overlay carries the time it was written (the first boot's clock check), so its bytes are the run's own. */
const isStamped = (a: PlanAction) => a.kind === 'write' && /\.apkovl\.tar\.gz$/.test(a.path ?? '');

/**
 * A --json plan with what PID and STAMP let differ between two runs taken out (the pid file's
 * contents, a card overlay's size), for comparing two dry runs' plans as text.
 */
export function withoutRunValues(stdout: string): string {
  return stdout.replace(/("path": "[^"]*\/pi-prep-sd-[^"/]*\/pid",\s*"bytes": )\d+(,\s*"diff": \[\s*)"\+ \d+"/g, '$1<pid>$2"+ <pid>"')
    .replace(/("path": "[^"]*\.apkovl\.tar\.gz",\s*"bytes": )\d+/g, '$1<stamped>');
}

function matches(p: PlanAction & { task: string }, r: PlanAction & { task: string }): boolean {
  if (p.kind !== r.kind || p.task !== r.task) return false;
  const manifest = isManifest(p);
  for (const k of new Set([...Object.keys(p), ...Object.keys(r)]) as Set<keyof typeof p>) {
    let a = p[k];
    let b = r[k];
    // GLOB: whether each file a pattern covers replaces one (and is backed up) is the run's to find.
    if (k === 'backup' && many(p)) continue;
    if ((manifest || isStamped(p) || isPidFile(p)) && k === 'bytes') continue;
    if (isPidFile(p) && k === 'diff') continue;
    if (manifest && Array.isArray(a) && Array.isArray(b)) [a, b] = [manifestLines(a), manifestLines(b)];
    if (typeof a === 'string' && typeof b === 'string') {
      if (!(many(p) && (k === 'path' || k === 'from') ? under(a, b) : like(a, b))) return false;
    } else if (Array.isArray(a) && Array.isArray(b)) {
      // A write's diff, line by line (PLACEHOLDER inside a line: `"release": "<kernelrelease>"`).
      if (a.length !== b.length || a.some((x, i) => !like(String(x), String(b[i])))) return false;
    } else if (k === 'bytes' && p.diff?.some((l) => /<[^<>]+>/.test(l))) {
      continue; // a placeholder in the text: the real length is the real value's
    } else if (JSON.stringify(a) !== JSON.stringify(b)) return false;
  }
  return true;
}

/** The planned writes, copies, downloads and host steps against the real run's report, in order. */
export function compareOthers(plan: Report, done: Report): { missing: string[]; unplanned: string[] } {
  const want = otherActions(plan);
  const got = otherActions(done);
  const missing: string[] = [];
  const unplanned: string[] = [];
  let j = 0;
  for (const w of want) {
    const k = got.findIndex((g, i) => i >= j && matches(w, g));
    if (k < 0) {
      // A `*` may match no file at all (a tinyconfig build makes no overlays).
      if (!(many(w) && /\*/.test(w.from ?? ''))) missing.push(JSON.stringify(w));
      continue;
    }
    unplanned.push(...got.slice(j, k).map((g) => JSON.stringify(g)));
    j = k + 1;
    if (many(w)) while (j < got.length && matches(w, got[j]!)) j++;
  }
  unplanned.push(...got.slice(j).map((g) => JSON.stringify(g)));
  return { missing, unplanned };
}

/**
 * The node's files after the real run, against each planned write: a written or copied file is
 * there (with its mode when the plan gives one, a write with the planned size), a made directory is
 * a directory, a removed path is gone; the last action on a path decides, and a path a later
 * planned command names (an argument) is left to that command. `hostPath` maps a node
 * path to this machine (undefined: not on a filesystem the test can see).
 */
export function unmetWrites(plan: Report, hostPath: (a: PlanAction) => string | undefined): string[] {
  const last = new Map<string, PlanAction>();
  for (const t of plan.tasks) for (const a of t.actions) {
    // A planned command after a write may change what it wrote (`rm -rf` of a skeleton once mkfs read
    // it): a path a later command names is that command's, left to the command witness.
    if (a.kind === 'run') {
      for (const arg of a.argv ?? []) if (arg.startsWith('/')) for (const [p, w] of last) if (w.path === arg || w.path!.startsWith(arg + '/')) last.delete(p);
      continue;
    }
    // A copy into a directory (GLOB) is checked file by file against the run's report instead.
    if (!['write', 'put', 'mkdir', 'chmod', 'remove'].includes(a.kind) || !a.path || /[<*]|\/$/.test(a.path)) continue;
    // SCRATCH: alpine-sd's scratch directory is gone once the command ends.
    if (/\/pi-prep-sd-[0-9a-f]{16}(\/|$)/.test(a.path)) continue;
    const p = hostPath(a);
    if (p) last.set(p, a);
  }
  const bad: string[] = [];
  for (const [p, a] of last) {
    const s = existsSync(p) ? lstatSync(p) : undefined;
    const mode = s ? (s.mode & 0o7777).toString(8).padStart(4, '0') : undefined;
    if (a.kind === 'remove') {
      if (s) bad.push(`${a.path}: planned removed, still there`);
      continue;
    }
    if (!s) bad.push(`${a.path}: planned (${a.kind}), not there`);
    else if (a.kind === 'mkdir' && !s.isDirectory()) bad.push(`${a.path}: planned a directory, is not`);
    else if (a.mode && a.mode !== mode) bad.push(`${a.path}: planned mode ${a.mode}, has ${mode}`);
    else if (a.kind === 'write' && a.bytes !== undefined && s.size !== a.bytes && !isManifest(a) && !a.diff?.some((l) => /<[^<>]+>/.test(l))) bad.push(`${a.path}: planned ${a.bytes} bytes, has ${s.size}`);
  }
  return bad;
}

/** A node path inside a root directory on this machine. */
export const inRoot = (root: string) => (a: PlanAction) => (a.here ? a.path : join(root, a.path!));

/**
 * The file changes pi-prep made itself (strace, exec-trace.ts) that no planned action explains,
 * by these named rules (paths on this machine):
 * - ATOMIC: a write goes through `.NAME.pi-prep-PID-HEX.tmp` beside NAME, renamed over it
 *   (src/core/atomic-write.ts); a download through `DEST.PID-HEX.part` (src/core/download.ts).
 * - BACKUP: a planned write or copy with `backup` keeps `NAME.pi-prep.bak`.
 * - PARENTS: a planned write may make the missing directories above it.
 * - TREE: a planned remove of a directory removes what is under it.
 * - GLOB: a planned copy of what the dry run cannot list covers the paths under it.
 * - TIDY: removing what this same run made (its scratch) changes nothing that was there before.
 * - BOOKKEEPING: the run's lock (/run/lock/pi-prep/, TMPDIR/pi-prep-locks-UID/), the SSH control
 *   socket directory (TMPDIR/pi-prep-ssh-*), alpine-sd's work directory itself and its pid file
 *   (TMPDIR/pi-prep-sd-*, its `pid`): how a run runs, not what it changes.
 */
export function unplannedWrites(fullPlan: Report, done: Report, writes: FileWrite[], hostPath: (a: PlanAction) => string | undefined): string[] {
  const plan = reached(fullPlan, done);
  const planned: { path: string; a: PlanAction }[] = [];
  for (const t of plan.tasks) for (const a of t.actions) {
    if (!['write', 'put', 'mkdir', 'chmod', 'remove', 'download'].includes(a.kind) || !a.path) continue;
    const p = a.kind === 'download' ? a.path : hostPath(a);
    if (p) planned.push({ path: untemp(p), a });
  }
  const made = new Set<string>();
  const bad: string[] = [];
  for (const w of writes) {
    let p = untemp(w.path);
    const atomic = /^\.(.+)\.pi-prep-\d+-[0-9a-f]{8}\.tmp$/.exec(basename(p));
    if (atomic) p = join(dirname(p), atomic[1]!);
    p = p.replace(/\.\d+-[0-9a-f]{8}\.part$/, '');
    if (w.op === 'create' || w.op === 'mkdir' || w.op === 'rename-to' || w.op === 'symlink') made.add(p);
    const ok =
      planned.some(({ path, a }) => path === p || (a.backup && p === `${path}.pi-prep.bak`) || ((many(a) || a.kind === 'remove') && under(path, p)) || (/[<*]/.test(path) && like(path, p))) ||
      (w.op === 'mkdir' && planned.some(({ path }) => path.startsWith(p + '/'))) ||
      ((w.op === 'unlink' || w.op === 'rmdir' || w.op === 'rename-from') && [...made].some((m) => p === m || p.startsWith(m + '/'))) ||
      /^\/run\/lock\/pi-prep(\/|$)|\/pi-prep-locks-[^/]+(\/|$)|\/pi-prep-ssh-<tmp>(\/|$)|\/pi-prep-sd-<tmp>(\/pid)?$/.test(p);
    if (!ok) bad.push(`${w.op} ${w.path}`);
  }
  // Under a directory it made unplanned, the rest is counted, not listed (an extracted tarball).
  const out: string[] = [];
  const under_: Map<string, number> = new Map();
  for (const b of new Set(bad)) {
    const path = b.slice(b.indexOf(' ') + 1);
    const top = [...under_.keys()].find((d) => path.startsWith(d + '/'));
    if (top) under_.set(top, under_.get(top)! + 1);
    else {
      out.push(b);
      if (b.startsWith('mkdir ')) under_.set(path, 0);
    }
  }
  return out.map((b) => (b.startsWith('mkdir ') && under_.get(b.slice(6)) ? `${b} and ${under_.get(b.slice(6))} changes under it` : b));
}

export interface ProofOptions {
  /** Chroot directories: `chroot ROOT argv` is argv on the node. */
  roots: string[];
  /** The node is this machine (its actions are not marked here). */
  nodeIsHere?: boolean;
  /** Where a planned write lands on this machine (undefined: not checked by path). */
  hostPath: (a: PlanAction) => string | undefined;
  /** READ: more commands that read back what this run wrote or built. */
  readBack?: (argv: string[]) => boolean;
}

/** STOP: the tasks a real run reached (up to the one it stopped after for a reboot). */
export function reached(plan: Report, done: Report): Report {
  if (!done.stoppedFor) return plan;
  const last = Math.max(...done.tasks.map((t, i) => (t.status === 'not-reached' ? -1 : i)));
  return { ...plan, tasks: plan.tasks.slice(0, last + 1) };
}

/**
 * Everything in which a real run differs from the dry run's plan on the same starting state, each
 * as one line: commands against the exec witness (strace) and against the run's own report, the
 * other actions against the report, the planned writes against the node afterwards.
 */
export function planAgainstRun(fullPlan: Report, done: Report, seen: string[][], drySeen: string[][], o: ProofOptions, writes?: FileWrite[]): { problems: string[]; witnessed: string[] } {
  const plan = reached(fullPlan, done);
  const asCommands = (cs: string[][]) => cs.map((c) => decode(c, o.roots)).filter((c): c is Command => c !== undefined)
    .map((c) => (o.nodeIsHere ? { ...c, where: 'here' as const } : c));
  const planned = plannedCommands(plan, o.nodeIsHere);
  const problems: string[] = [];
  const line = (c: string[]) => c.join(' ').slice(0, 240);
  const diff = compareCommands(planned, asCommands(seen), asCommands(drySeen), o.readBack ?? (() => false));
  for (const c of diff.missing) problems.push(`planned, not run (strace): ${line(c)}`);
  for (const c of diff.unplanned) problems.push(`run (strace), not planned: ${line(c)}`);
  const ran = compareCommands(planned, plannedCommands(done, o.nodeIsHere), [], () => false);
  for (const c of ran.missing) problems.push(`planned, not in the real run's report: ${line(c)}`);
  for (const c of ran.unplanned) problems.push(`in the real run's report, not planned: ${line(c)}`);
  const others = compareOthers(plan, done);
  for (const w of others.missing) problems.push(`planned, not in the real run's report: ${w.slice(0, 300)}`);
  for (const g of others.unplanned) problems.push(`in the real run's report, not planned: ${g.slice(0, 300)}`);
  for (const u of unmetWrites(plan, o.hostPath)) problems.push(`after the real run: ${u}`);
  for (const w of writes ? unplannedWrites(fullPlan, done, writes, o.hostPath) : []) problems.push(`written by pi-prep itself (strace), not planned: ${w}`);
  return { problems, witnessed: asCommands(seen).map((c) => line([c.where, ...c.argv])) };
}
