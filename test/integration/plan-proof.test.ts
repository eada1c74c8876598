import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRoot, osRelease, removeRoot, STANDIN_LOG } from '../helpers/fixture-root.js';
import { piRoot as debianPiRoot } from '../helpers/pi-root.js';
import { piRoot } from '../helpers/rpi-fixture.js';
import { bootRpiOs } from '../helpers/pi-sim/rpios-boot.js';
import { kernelRepo } from '../helpers/kernel-repo.js';
import { TAG, joinWorkspace, kernelConfig, type JoinWorkspace } from '../helpers/k0s-release.js';
import { simK0sRelease } from '../helpers/pi-sim/release.js';
import { SimAlpinePi } from '../helpers/pi-sim/alpine-pi.js';
import { setupAlpineCard } from '../helpers/pi-sim/alpine-card.js';
import { TestSshd, makeClientKey, type ClientKey } from '../helpers/sshd.js';
import { alpineTarball } from '../helpers/card-inspect.js';
import type { TestHttpServer } from '../helpers/http-server.js';
import { runCliReadOnly } from '../helpers/readonly-ns.js';
import { runCliTraced, type FileWrite, type TracedRun } from '../helpers/exec-trace.js';
import { fsState, stateDiff } from '../helpers/fs-state.js';
import {
  inRoot, planAgainstRun, reportOf, unplannedWrites, untemp, withoutRunValues, type PlanAction, type Report,
} from '../helpers/plan-witness.js';

/**
 * Issue 13's proof, for every recipe, on fixtures the other tests build:
 *
 * 1. "dry run read-only": the dry run (--json) runs twice from the same state, once as usual and
 *    once inside a private mount namespace where the whole filesystem is read-only except one
 *    scratch directory (TMPDIR, HOME, XDG_CACHE_HOME; helpers/readonly-ns.ts). Both exit alike
 *    (0, or 1 for a blocked plan) with the same plan, and the node, the image or the device did not
 *    change (helpers/fs-state.ts: modes, sizes, mtimes, ctimes and contents; a device by its bytes,
 *    since a ro mount cannot stop a write through a device node).
 * 2. "plan equals run": a real run from the same state then starts exactly the planned commands,
 *    in order (witness: strace of the run, helpers/exec-trace.ts; the pi-sim and chroot stand-ins
 *    record argv too), its own report lists the same writes, copies and downloads, and each
 *    planned write is on the node afterwards, and every file pi-prep itself changed (strace) is a
 *    planned one. What a dry run cannot know is matched by the named rules of
 *    helpers/plan-witness.ts (PLACEHOLDER, TEMP, READ, STOP, GLOB; ATOMIC, BACKUP, PARENTS, TIDY,
 *    BOOKKEEPING for file changes), never by leaving an action out.
 *
 * The rebuild of rpios is proven against a real build in kernel-build.test.ts (it pays the build).
 */

interface Proof {
  /** --json kind of the command. */
  kind: string;
  /** The command line without --dry-run and --json. */
  args: () => string[];
  /** The dry run's exit: 0, or 1 when the plan is blocked. */
  dryCode: number;
  /** Paths whose state must not change in a dry run (roots, image files, device nodes). */
  watched: () => string[];
  /** Files whose state is their stat only (a loop device's backing file: its bytes are hashed through the device). */
  statOnly?: () => string[];
  /** More state that must not change, e.g. the part of a card a mounted ext4 does not own. */
  extraState?: () => string;
  /**
   * The node's own scratch (its /tmp: tmpfs on a diskless Alpine), where its tools keep temp files
   * while they read (lbu status unpacks the last overlay there). Kept writable in the namespace and
   * left out of the state; after a dry run the only new entries allowed in it are `toolScratch`'s.
   */
  nodeScratch?: () => string[];
  toolScratch?: RegExp;
  /** Witness files the test's own stand-ins append to (kept writable; checked separately). */
  witnesses?: () => string[];
  /** Chroot directories: `chroot ROOT argv` is argv on the node. */
  roots: () => string[];
  /** The node is this machine (its actions are not marked here). */
  nodeIsHere?: boolean;
  /** Where a planned write lands on this machine (undefined: not checked by path). */
  hostPath: (a: PlanAction) => string | undefined;
}

/**
 * One scratch directory per proof, at the same path for every run (plans name cache paths); short,
 * since ssh's control socket lives in TMPDIR and a socket path has at most 107 bytes.
 */
function scratchFor(): { dir: string; env: Record<string, string>; reset(): void } {
  const dir = mkdtempSync('/tmp/ppr-');
  scratches.push(dir);
  const env = { TMPDIR: join(dir, 't'), HOME: join(dir, 'h'), XDG_CACHE_HOME: join(dir, 'c') };
  const reset = () => {
    rmSync(dir, { recursive: true, force: true });
    for (const d of Object.values(env)) mkdirSync(d, { recursive: true, mode: 0o700 });
  };
  reset();
  return { dir, env, reset };
}

/** Durations differ between two runs of one plan: the fleet's per-host seconds. */
const untimed = (s: string) => s.replace(/"(seconds|durationMs|ms|elapsed[A-Za-z]*)": [\d.]+/g, '"$1": 0');

const scratches: string[] = [];
process.on('exit', () => scratches.forEach((d) => rmSync(d, { recursive: true, force: true })));

function sayTime(name: string, t0: number): void {
  process.stderr.write(`# plan-proof ${name}: ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
}

/** The two tests of one recipe: the second compares the first's dry run with a real run from the same state. */
function proveRecipe(name: string, p: Proof): void {
  let dry: TracedRun | undefined;
  let scratch: ReturnType<typeof scratchFor>;

  it(`${name}: dry run read-only (whole filesystem ro but a scratch dir): same exit, same plan, nothing written`, async () => {
    const t0 = Date.now();
    scratch = scratchFor();
    const env = scratch.env;
    const args = [...p.args(), '--dry-run', '--json'];
    const watched = p.watched();
    const witnessed = () => (p.witnesses?.() ?? []).map((w) => readFileSync(w, 'utf8'));
    const nodeScratch = p.nodeScratch?.() ?? [];
    const state = () => fsState(watched, [...(p.witnesses?.() ?? []), ...nodeScratch], p.statOnly?.()) + (p.extraState?.() ?? '');
    const scratchEntries = () => nodeScratch.map((d) => readdirSync(d).filter((e) => !p.toolScratch?.test(e)).sort().join(' '));
    const entriesBefore = scratchEntries();
    const before = state();
    const seenBefore = witnessed();

    // As usual (traced: what it starts are the reads of the READ rule), then in the namespace.
    dry = await runCliTraced(args, { env });
    assert.equal(dry.code, p.dryCode, `outside: ${dry.stderr}${dry.stdout.slice(-2000)}`);
    assert.equal(state(), before, `the dry run (outside) changed:\n${stateDiff(before, state())}`);
    assert.deepEqual(scratchEntries(), entriesBefore, "the dry run (outside) left nothing in the node's /tmp");
    scratch.reset();
    const ro = await runCliReadOnly([scratch.dir, ...(p.witnesses?.() ?? []), ...nodeScratch], args, { env });
    assert.equal(state(), before, `the dry run (read-only namespace) changed:\n${stateDiff(before, state())}`);
    assert.deepEqual(scratchEntries(), entriesBefore, "the dry run (read-only namespace) left nothing in the node's /tmp");
    assert.equal(ro.code, dry.code, `read-only namespace: exit ${ro.code}, outside ${dry.code}:\n${ro.stderr}${ro.stdout.slice(-2000)}`);
    assert.equal(withoutRunValues(untimed(untemp(ro.stdout))), withoutRunValues(untimed(untemp(dry.stdout))), 'the same plan inside the read-only namespace');
    assert.equal(untemp(ro.stderr), untemp(dry.stderr), 'the same messages');
    // The stand-ins' own logs: a dry run asks them nothing that changes (they log every call).
    const after = witnessed();
    for (const [i, w] of after.entries()) {
      const added = w.slice(seenBefore[i]!.length).split('\n').filter(Boolean).map((l) => l.split('\t'));
      const changing = added.filter((c) => !isReadCall(c));
      assert.deepEqual(changing, [], 'no stand-in was asked to change anything');
    }
    sayTime(`${name} dry runs`, t0);
  });

  it(`${name}: plan equals run (the planned commands, writes and downloads are what a real run makes)`, async () => {
    assert.ok(dry, 'the dry run of the test before');
    const t0 = Date.now();
    scratch.reset();
    const env = scratch.env;
    const plan = reportOf(dry.stdout, p.kind);
    const real = await runCliTraced([...p.args(), '--json'], { env, files: true });
    sayTime(`${name} real run`, t0);
    const done = reportOf(real.stdout, p.kind);
    assert.equal(real.code, p.dryCode, `a feasible plan runs to its end: ${real.stderr}`);
    compare(plan, done, real.commands, dry.commands, p, real.writes);
  });
}

/** Calls of the pi-sim and chroot stand-ins that only read. */
function isReadCall(c: string[]): boolean {
  return (c[0] === 'apk' && c[1] === 'info') || (c[0] === 'lbu' && c[1] === 'status') || (c[0] === 'k0s' && c[1] === 'status') || (c[0] === 'systemctl' && ['is-active', 'is-enabled', 'status', 'show'].includes(c[1]!));
}

function compare(fullPlan: Report, done: Report, seen: string[][], drySeen: string[][], p: Proof, writes: FileWrite[]): void {
  const { problems, witnessed } = planAgainstRun(fullPlan, done, seen, drySeen, { roots: p.roots(), nodeIsHere: p.nodeIsHere, hostPath: p.hostPath }, writes);
  // Every difference at once: a failing proof says all that differs.
  assert.deepEqual(problems, [], `the plan against the real run (witnessed: ${JSON.stringify(witnessed)})`);
}

describe('issue 13: every recipe\'s dry run is read-only, and its plan is what the real run does', () => {
  let ws: JoinWorkspace;
  let sim: TestHttpServer;
  let work: string;
  before(async () => {
    ws = await joinWorkspace('plan-proof');
    sim = await simK0sRelease();
    work = mkdtempSync(join(tmpdir(), 'pi-prep-plan-proof-'));
  });
  after(async () => {
    await sim.stop();
    await ws.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const join_ = (server: () => TestHttpServer) => ['--join', `@${ws.tokenFile}`, '--k0s-mirror', server().url, '--k0s-version', TAG];

  describe('rpios --root, a kernel without CFS_BANDWIDTH: a rebuild from a real kernel repository', () => {
    let root: string;
    let repo: string;
    before(() => {
      repo = kernelRepo();
      root = piRoot({ board: 'pi4', without: ['CFS_BANDWIDTH'] });
    });
    after(() => removeRoot(root));
    const args = () => ['rpios', '--root', root, ...join_(() => sim), '--kernel-repo', repo, '--kernel-jobs', '3'];
    // Read-only half only here: the real rebuild (minutes) is proven in kernel-build.test.ts on its own tree.
    let scratch: ReturnType<typeof scratchFor>;
    it('rpios (kernel rebuild): dry run read-only (whole filesystem ro but a scratch dir): same exit, same plan, nothing written', async () => {
      const t0 = Date.now();
      scratch = scratchFor();
      const a = [...args(), '--dry-run', '--json'];
      const before = fsState([root], [join(root, STANDIN_LOG)]);
      const out = await runCliTraced(a, { env: scratch.env });
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /lacks CONFIG_CFS_BANDWIDTH/);
      scratch.reset();
      const ro = await runCliReadOnly([scratch.dir], a, { env: scratch.env });
      assert.equal(fsState([root], [join(root, STANDIN_LOG)]), before, 'the Pi root did not change');
      assert.equal(ro.code, out.code, ro.stderr + ro.stdout.slice(-2000));
      assert.equal(ro.stdout, out.stdout, 'the same plan inside the read-only namespace');
      sayTime('rpios rebuild dry runs', t0);
    });
  });

  describe('rpios --root, a kernel that has every option: cmdline, the reboot, then the join', () => {
    let root: string;
    before(() => {
      root = piRoot({ board: 'pi4' });
      writeFileSync(join(root, STANDIN_LOG), '', { flag: 'a' });
    });
    after(() => removeRoot(root));
    const rpios = (): Proof => ({
      kind: 'rpios',
      // A local path that is not there: a run that wrongly decided to rebuild could reach nothing.
      args: () => ['rpios', '--root', root, ...join_(() => sim), '--kernel-repo', '/nonexistent/raspberrypi-linux'],
      dryCode: 0,
      watched: () => [root],
      witnesses: () => [join(root, STANDIN_LOG)],
      roots: () => [root],
      hostPath: (a) => inRoot(root)(a),
    });
    proveRecipe('rpios (before the reboot)', rpios());
    it('rpios: the user reboots the Pi', () => {
      bootRpiOs(root, 'pi4');
    });
    proveRecipe('rpios (after the reboot)', rpios());
  });

  describe('alpine-sd onto an image path', () => {
    let tarball: string;
    let dir: string;
    let keyFile: string;
    before(() => {
      tarball = alpineTarball();
      dir = mkdtempSync(join(work, 'sd-img-'));
      keyFile = join(dir, 'id.pub');
      writeFileSync(keyFile, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMhg0pHc9Q1bqmKq2u9lqv1t8bq5cP0E9g0k8Vt1x5oN me@laptop\n');
    });
    const img = () => join(dir, 'card.img');
    proveRecipe('alpine-sd (image)', {
      kind: 'alpine-sd',
      args: () => ['alpine-sd', img(), '--tarball', tarball, '--size', '600M', '--hostname', 'pi-w1', '--ssh-key', keyFile, ...join_(() => ws.server)],
      dryCode: 0,
      watched: () => [dir],
      roots: () => [],
      nodeIsHere: true,
      hostPath: (a) => a.path,
    });
  });

  describe('alpine-sd onto a loop device', () => {
    let tarball: string;
    let dir: string;
    let dev: string;
    before(() => {
      tarball = alpineTarball();
      dir = mkdtempSync(join(work, 'sd-dev-'));
      execFileSync('truncate', ['-s', '640M', join(dir, 'loop.img')]);
      dev = execFileSync('losetup', ['-f', '--show', join(dir, 'loop.img')]).toString().trim();
    });
    after(() => {
      if (dev) execFileSync('losetup', ['-d', dev]);
    });
    proveRecipe('alpine-sd (loop device)', {
      kind: 'alpine-sd',
      args: () => ['alpine-sd', dev, '--loop', '--yes', '--no-ssh', '--tarball', tarball, '--hostname', 'looped', ...join_(() => ws.server)],
      dryCode: 0,
      watched: () => [dir, dev],
      statOnly: () => [join(dir, 'loop.img')],
      roots: () => [],
      nodeIsHere: true,
      hostPath: (a) => a.path,
    });
  });

  describe('alpine --root on the simulated diskless Alpine Pi (card on a loop device)', () => {
    let pi: SimAlpinePi;
    before(() => {
      pi = new SimAlpinePi({ image: setupAlpineCard(mkdtempSync(join(work, 'card-'))) });
      assert.deepEqual(pi.boot().errors, []);
      // The witness file exists before the dry run, so the namespace can keep it writable.
      writeFileSync(join(pi.root, STANDIN_LOG), '', { flag: 'a' });
    });
    after(() => pi.destroy());
    /** SHA-256 of the card up to the data partition (139264 sectors): the table and the FAT partition. */
    const cardHead = () => {
      const buf = Buffer.alloc(139264 * 512);
      const fd = openSync(pi.loop, 'r');
      try {
        readSync(fd, buf, 0, buf.length, 0);
      } finally {
        closeSync(fd);
      }
      return `\ncard head ${createHash('sha256').update(buf).digest('hex')}`;
    };
    const alpine = (booted: boolean): Proof => ({
      kind: 'alpine',
      args: () => ['alpine', '--root', pi.root, ...join_(() => sim)],
      dryCode: 0,
      // The stand-ins' log is the witness of what they were asked (kept writable, checked apart).
      // Once booted, the data partition is a mounted ext4 the kernel writes (journal, lazy init):
      // it is compared through the mounted tree, the rest of the card by its bytes.
      watched: () => (booted ? [pi.root] : [pi.root, pi.loop]),
      extraState: booted ? cardHead : undefined,
      statOnly: () => (booted ? [join(pi.root, pi.disk)] : []),
      nodeScratch: () => [join(pi.root, 'tmp')],
      toolScratch: /^\.lbu-/,
      witnesses: () => [join(pi.root, STANDIN_LOG)],
      roots: () => [pi.root],
      hostPath: (a) => inRoot(pi.root)(a),
    });
    proveRecipe('alpine (before the boot)', alpine(false));
    // The first run stopped for the boot (STOP): the plan's later tasks are proven on the next run.
    it('alpine: the user boots the Pi with the prepared card', () => {
      assert.deepEqual(pi.reboot().errors, []);
      writeFileSync(join(pi.root, STANDIN_LOG), '', { flag: 'a' });
    });
    proveRecipe('alpine (after the boot)', alpine(true));
  });

  describe('linux --root (an amd64 chroot)', () => {
    let root: string;
    before(() => {
      root = buildRoot({
        arch: 'amd64',
        init: 'systemd',
        files: {
          '/etc/os-release': osRelease('ubuntu', '24.04', 'Ubuntu 24.04 LTS', 'ID_LIKE=debian\n'),
          '/proc/sys/kernel/osrelease': '6.1.0-test\n',
          '/boot/config-6.1.0-test': kernelConfig(),
          '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n',
          '/proc/meminfo': 'MemTotal:        3884376 kB\n',
        },
      });
    });
    after(() => removeRoot(root));
    proveRecipe('linux --root', {
      kind: 'linux',
      args: () => ['linux', '--root', root, ...join_(() => ws.server)],
      dryCode: 0,
      watched: () => [root],
      roots: () => [root],
      hostPath: (a) => inRoot(root)(a),
    });
  });

  describe('linux --host over SSH (the test sshd, chrooted into a Pi root)', () => {
    let key: ClientKey;
    let root: string;
    let sshd: TestSshd;
    before(async () => {
      key = makeClientKey();
      root = debianPiRoot(false);
      sshd = await new TestSshd(key, ['Match User root', `  ChrootDirectory ${root}`]).start();
    });
    after(async () => {
      await sshd.stop();
      removeRoot(root);
      rmSync(key.dir, { recursive: true, force: true });
    });
    proveRecipe('linux --host', {
      kind: 'linux',
      args: () => ['linux', '--host', sshd.host('root'), ...sshd.cliArgs(), ...join_(() => ws.server)],
      dryCode: 0,
      watched: () => [root],
      roots: () => [],
      hostPath: (a) => inRoot(root)(a),
    });
  });

  describe('a fleet (--inventory): two Pis over SSH, one of them blocked', () => {
    let key: ClientKey;
    const pis: { name: string; root: string; sshd: TestSshd }[] = [];
    let inventory: string;
    before(async () => {
      key = makeClientKey();
      for (const name of ['pi-a', 'pi-b']) {
        const root = debianPiRoot(name === 'pi-b');
        pis.push({ name, root, sshd: await new TestSshd(key, ['Match User root', `  ChrootDirectory ${root}`]).start() });
      }
      inventory = join(work, 'fleet.yaml');
      writeFileSync(inventory, [
        'defaults:',
        '  user: root',
        `  ssh-options: [IdentityFile=${key.path}, IdentitiesOnly=yes, IdentityAgent=none, GlobalKnownHostsFile=/dev/null]`,
        'hosts:',
        ...pis.flatMap((p) => [`  ${p.name}:`, '    hostname: 127.0.0.1', `    port: ${p.sshd.port}`, `    ssh-options: [UserKnownHostsFile=${p.sshd.knownHosts}]`]),
        '',
      ].join('\n'));
    });
    after(async () => {
      for (const p of pis) await p.sshd.stop();
      pis.forEach((p) => removeRoot(p.root));
      rmSync(key.dir, { recursive: true, force: true });
    });
    proveFleet(() => pis, () => ['linux', '--inventory', inventory, '--parallel', '1', ...join_(() => ws.server)]);
  });
});

/** A fleet's plan is one report per host: each host's planned commands against those sent to its port. */
function proveFleet(pis: () => { name: string; root: string; sshd: TestSshd }[], args: () => string[]): void {
  let dry: TracedRun | undefined;
  let scratch: ReturnType<typeof scratchFor>;
  type Env = { data?: Report; error?: { report?: Report } };
  const hosts = (stdout: string) => (JSON.parse(stdout) as { data: { hosts: { host: string; exitCode: number; result?: Env }[] } }).data.hosts
    .map((h) => ({ ...h, report: h.result?.data ?? h.result?.error?.report }));
  const onPort = (port: number) => (c: string[]) => c[0] !== 'ssh' || c.includes(String(port));

  it('fleet (--inventory): dry run read-only (whole filesystem ro but a scratch dir): same exit, same plan, nothing written', async () => {
    const t0 = Date.now();
    scratch = scratchFor();
    const a = [...args(), '--dry-run', '--json'];
    const roots = pis().map((p) => p.root);
    const before = fsState(roots);
    dry = await runCliTraced(a, { env: scratch.env });
    assert.equal(dry.code, 1, 'pi-b is blocked: ' + dry.stderr);
    assert.equal(fsState(roots), before, `outside:\n${stateDiff(before, fsState(roots))}`);
    scratch.reset();
    const ro = await runCliReadOnly([scratch.dir], a, { env: scratch.env });
    assert.equal(fsState(roots), before, `read-only namespace:\n${stateDiff(before, fsState(roots))}`);
    assert.equal(ro.code, dry.code, ro.stderr + ro.stdout.slice(-2000));
    assert.equal(untimed(ro.stdout), untimed(dry.stdout), 'the same plans inside the read-only namespace');
    sayTime('fleet dry runs', t0);
  });

  it('fleet (--inventory): plan equals run, host by host', async () => {
    assert.ok(dry, 'the dry run of the test before');
    scratch.reset();
    const t0 = Date.now();
    const real = await runCliTraced([...args(), '--json'], { env: scratch.env, files: true });
    sayTime('fleet real run', t0);
    assert.equal(real.code, 1, real.stderr);
    const planned = hosts(dry.stdout);
    const done = hosts(real.stdout);
    assert.deepEqual(done.map((h) => h.exitCode), planned.map((h) => (h.report?.ok === false ? 1 : 0)), 'a blocked plan is a failed run, a feasible one a finished run');
    // A blocked host's plan is not run at all: nothing planned, nothing changed (reads only).
    const feasible = pis().map((_, i) => {
      const plan = planned[i]!.report!;
      const report = done[i]!.report ?? { ...plan, tasks: [] };
      return plan.ok ? { plan, report } : { plan: { ...plan, tasks: [] }, report: { ...report, tasks: [] } };
    });
    const problems: string[] = [];
    for (const [i, p] of pis().entries()) {
      const port = p.sshd.port;
      const r = planAgainstRun(feasible[i]!.plan, feasible[i]!.report, real.commands.filter(onPort(port)), dry.commands.filter(onPort(port)), { roots: [], hostPath: inRoot(p.root) });
      problems.push(...r.problems.map((x) => `${p.name}: ${x}`));
    }
    // This machine's own file changes (the downloads every host shares) against all the plans together.
    const all = (k: 'plan' | 'report'): Report => ({ ...feasible[0]![k], tasks: feasible.flatMap((f) => f[k].tasks) });
    problems.push(...unplannedWrites(all('plan'), all('report'), real.writes, (a) => (a.here ? a.path : undefined)).map((w) => `written by pi-prep itself (strace), not planned: ${w}`));
    assert.deepEqual(problems, []);
  });
}

