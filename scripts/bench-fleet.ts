// Fleet scale, in one run against real sshd's on 127.0.0.1 (needs root and the test host setup):
// `pi-prep check` on one host, then on 50 hosts (an Ansible INI range, all the same sshd) at
// --parallel 10; interleaved rounds, median wall time and the peak memory of the whole run (the sum
// of RSS over pi-prep's process tree: pi-prep itself and every ssh client and master it starts).
// Two sshd's chroot into the same Pi root: one as OpenSSH ships (its default key exchange), one
// offering only curve25519-sha256 (the BENCHMARK's sshd, standing in for 50 Pis on 2 cores; pi-prep
// and its ssh options are the same for both).
// Usage: npx tsc -p . && nice node dist/scripts/bench-fleet.js [ROUNDS] [HOSTS] [PARALLEL] [arm64|amd64]
//        (PI_PREP_CLI=OTHER/dist/src/cli/main.js measures another build, e.g. main before a change)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeRoot } from '../test/helpers/fixture-root.js';
import { piRoot } from '../test/helpers/pi-root.js';
import { TestSshd, makeClientKey } from '../test/helpers/sshd.js';

// PI_PREP_CLI: another build's dist/src/cli/main.js, to measure it under the same conditions.
const cli = process.env.PI_PREP_CLI ?? fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const rounds = Number(process.argv[2] ?? 3);
const count = Number(process.argv[3] ?? 50);
const parallel = Number(process.argv[4] ?? 10);
const arch = (process.argv[5] ?? 'amd64') as 'arm64' | 'amd64';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const root = piRoot(false, { '/boot/firmware/cmdline.txt': 'console=tty1 root=/dev/mmcblk0p2 rootwait cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n' }, arch);
const key = makeClientKey();
const sshdWith = (extra: string[]) => new TestSshd(key, ['LogLevel ERROR', 'MaxSessions 100', ...extra, 'Match User root', `  ChrootDirectory ${root}`]).start();
const sshds = { 'sshd as shipped (default key exchange)': await sshdWith([]), 'sshd offering only curve25519-sha256': await sshdWith(['KexAlgorithms curve25519-sha256']) };
const work = mkdtempSync(join(tmpdir(), 'pi-prep-bench-fleet-'));
const width = String(count).length;
const inventoryFor = (sshd: TestSshd) => {
  const file = join(work, `hosts-${sshd.port}.ini`);
  writeFileSync(file, `[pis]\npi[${'1'.padStart(width, '0')}:${count}] ansible_host=127.0.0.1 ansible_port=${sshd.port} ansible_user=root\n`);
  return file;
};
const cleanup = async () => {
  for (const sshd of Object.values(sshds)) await sshd.stop();
  removeRoot(root);
  rmSync(work, { recursive: true, force: true });
  rmSync(key.dir, { recursive: true, force: true });
};

/** Resident memory (bytes) of pid and all its descendants, from /proc. */
function treeRss(pid: number): number {
  const children = new Map<number, number[]>();
  let rss = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
      rss.set(Number(d), Number(fields[21]) * 4096);
    } catch {
      // gone meanwhile
    }
  }
  let total = 0;
  const walk = (p: number) => {
    total += rss.get(p) ?? 0;
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  rss = new Map();
  return total;
}

/** CPU seconds (user + system) of pid's waited-for children so far (cutime + cstime). */
function childrenCpu(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100; // clock ticks: 100 per second on Linux
}
const sshdPid = (sshd: TestSshd) => Number(readFileSync(join(sshd.dir, 'sshd.pid'), 'utf8'));

/** CPU seconds (user + system) pid itself has used so far, without its children. */
function ownCpu(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function measure(sshd: TestSshd, args: string[]): Promise<{ ms: number; peak: number; out: string; cpu: number; nodeCpu: number; hostCpu: number }> {
  const cpu0 = childrenCpu('self');
  const host0 = childrenCpu(sshdPid(sshd));
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  let peak = 0;
  let nodeCpu = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, treeRss(child.pid!));
    try {
      nodeCpu = ownCpu(child.pid!); // pi-prep's own CPU: the last sample before it exits
    } catch {
      // exited meanwhile
    }
  }, 25);
  const code = await new Promise<number>((r) => child.on('close', (c) => r(c ?? 1)));
  clearInterval(sampler);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (code !== 0) throw new Error(`pi-prep ${args.join(' ')} exited ${code}:\n${out.slice(-2000)}`);
  // sshd reaps its per-connection children (and their commands) a moment after they close.
  await new Promise((r) => setTimeout(r, 300));
  return { ms, peak, out, cpu: childrenCpu('self') - cpu0, nodeCpu, hostCpu: childrenCpu(sshdPid(sshd)) - host0 };
}

try {
  type Runs = { ms: number[]; peak: number[]; cpu: number[]; nodeCpu: number[]; hostCpu: number[] };
  const empty = (): Runs => ({ ms: [], peak: [], cpu: [], nodeCpu: [], hostCpu: [] });
  const t: Record<string, Record<'one' | 'fleet', Runs>> = Object.fromEntries(Object.keys(sshds).map((k) => [k, { one: empty(), fleet: empty() }]));
  const inventories = new Map(Object.values(sshds).map((s) => [s, inventoryFor(s)]));
  for (const sshd of Object.values(sshds)) await measure(sshd, ['check', '--host', sshd.host('root'), ...sshd.cliArgs()]); // warm the page cache and the chroot's busybox
  const load0 = loadavg()[0]!;
  for (let i = 0; i < rounds; i++) {
    for (const [set, sshd] of Object.entries(sshds)) {
      const one = ['check', '--host', sshd.host('root'), ...sshd.cliArgs()];
      const fleet = ['check', '--inventory', inventories.get(sshd)!, '--parallel', String(parallel), ...sshd.cliArgs()];
      for (const [k, args] of [['one', one], ['fleet', fleet]] as const) {
        const r = await measure(sshd, args);
        if (k === 'fleet' && !r.out.includes(`All ${count} hosts succeeded.`)) throw new Error(`the fleet run did not finish every host:\n${r.out.slice(-2000)}`);
        const runs = t[set]![k];
        runs.ms.push(r.ms);
        runs.peak.push(r.peak);
        runs.cpu.push(r.cpu);
        runs.nodeCpu.push(r.nodeCpu);
        runs.hostCpu.push(r.hostCpu);
      }
    }
  }
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const cpu = (r: Runs, per = 1) => `CPU ${(median(r.cpu) / per).toFixed(3)} (node ${(median(r.nodeCpu) / per).toFixed(3)}, ssh ${((median(r.cpu) - median(r.nodeCpu)) / per).toFixed(3)}) | ${(median(r.hostCpu) / per).toFixed(3)}`;
  if (process.env.PI_PREP_CLI) console.log(`pi-prep: ${cli}`);
  console.log(`pi-prep check over SSH, ${arch} Pi root behind one sshd, ${cpus().length} cores, load average ${load0.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)}; ${rounds} rounds, median wall time,`);
  console.log("peak RSS of pi-prep's process tree, CPU seconds of pi-prep's tree (node itself, its ssh clients) | of the sshd side (the Pis in real life)");
  for (const [set, r] of Object.entries(t)) {
    console.log(set);
    console.log(`  one host                  ${(median(r.one.ms) / 1000).toFixed(2).padStart(6)} s   peak ${mib(Math.max(...r.one.peak))}   ${cpu(r.one)}`);
    console.log(`  ${count} hosts, --parallel ${parallel}`.padEnd(28) + `${(median(r.fleet.ms) / 1000).toFixed(2).padStart(6)} s   peak ${mib(Math.max(...r.fleet.peak))}  ${cpu(r.fleet)}`);
    console.log(`    per host                              ${cpu(r.fleet, count)}`);
    console.log(`  ratio                     ${(median(r.fleet.ms) / median(r.one.ms)).toFixed(2).padStart(6)}x  (goal <= 6x)`);
    // The fleet is CPU-bound here (the 50 "Pis" share this machine): its CPU over every core, idle.
    const floor = (median(r.fleet.cpu) + median(r.fleet.hostCpu)) / cpus().length;
    console.log(`  CPU-bound floor           ${floor.toFixed(2).padStart(6)} s   (all CPU above on ${cpus().length} idle cores: ratio >= ${(floor * 1000 / median(r.one.ms)).toFixed(2)}x)`);
  }
} finally {
  await cleanup();
}
