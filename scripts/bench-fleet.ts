// Fleet scale, in one run against one real sshd on 127.0.0.1 (needs root and the test host setup):
// `pi-prep check` on one host, then on 50 hosts (an Ansible INI range, all the same sshd) at
// --parallel 10; interleaved rounds, median wall time and the peak memory of the whole run (the sum
// of RSS over pi-prep's process tree: the parent, every per-host child and their ssh clients).
// Usage: npx tsc -p . && nice node dist/scripts/bench-fleet.js [ROUNDS] [HOSTS] [PARALLEL] [arm64|amd64]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeRoot } from '../test/helpers/fixture-root.js';
import { piRoot } from '../test/helpers/pi-root.js';
import { TestSshd, makeClientKey } from '../test/helpers/sshd.js';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const rounds = Number(process.argv[2] ?? 3);
const count = Number(process.argv[3] ?? 50);
const parallel = Number(process.argv[4] ?? 10);
const arch = (process.argv[5] ?? 'amd64') as 'arm64' | 'amd64';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const root = piRoot(false, { '/boot/firmware/cmdline.txt': 'console=tty1 root=/dev/mmcblk0p2 rootwait cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n' }, arch);
const key = makeClientKey();
const sshd = await new TestSshd(key, ['LogLevel ERROR', 'MaxSessions 100', 'Match User root', `  ChrootDirectory ${root}`]).start();
const work = mkdtempSync(join(tmpdir(), 'pi-prep-bench-fleet-'));
const width = String(count).length;
const inventory = join(work, 'hosts.ini');
writeFileSync(inventory, `[pis]\npi[${'1'.padStart(width, '0')}:${count}] ansible_host=127.0.0.1 ansible_port=${sshd.port} ansible_user=root\n`);
const cleanup = async () => {
  await sshd.stop();
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
const sshdPid = () => Number(readFileSync(join(sshd.dir, 'sshd.pid'), 'utf8'));

async function measure(args: string[]): Promise<{ ms: number; peak: number; out: string; cpu: number; hostCpu: number }> {
  const cpu0 = childrenCpu('self');
  const host0 = childrenCpu(sshdPid());
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, treeRss(child.pid!))), 25);
  const code = await new Promise<number>((r) => child.on('close', (c) => r(c ?? 1)));
  clearInterval(sampler);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (code !== 0) throw new Error(`pi-prep ${args.join(' ')} exited ${code}:\n${out.slice(-2000)}`);
  // sshd reaps its per-connection children (and their commands) a moment after they close.
  await new Promise((r) => setTimeout(r, 300));
  return { ms, peak, out, cpu: childrenCpu('self') - cpu0, hostCpu: childrenCpu(sshdPid()) - host0 };
}

try {
  // OpenSSH's default key exchange here (9.2: sntrup761x25519) costs ~65 ms of client CPU per
  // connection; the second set shows the fleet with a classic one, for comparison only.
  const sets = { default: sshd.cliArgs(), 'KexAlgorithms=curve25519-sha256': [...sshd.cliArgs(), '--ssh-option', 'KexAlgorithms=curve25519-sha256'] };
  type Runs = { ms: number[]; peak: number[]; cpu: number[]; hostCpu: number[] };
  const empty = (): Runs => ({ ms: [], peak: [], cpu: [], hostCpu: [] });
  const t: Record<string, Record<'one' | 'fleet', Runs>> = Object.fromEntries(Object.keys(sets).map((k) => [k, { one: empty(), fleet: empty() }]));
  await measure(['check', '--host', sshd.host('root'), ...sshd.cliArgs()]); // warm the page cache and the chroot's busybox
  for (let i = 0; i < rounds; i++) {
    for (const [set, ssh] of Object.entries(sets)) {
      const one = ['check', '--host', sshd.host('root'), ...ssh];
      const fleet = ['check', '--inventory', inventory, '--parallel', String(parallel), ...ssh];
      for (const [k, args] of [['one', one], ['fleet', fleet]] as const) {
        const r = await measure(args);
        if (k === 'fleet' && !r.out.includes(`All ${count} hosts succeeded.`)) throw new Error(`the fleet run did not finish every host:\n${r.out.slice(-2000)}`);
        const runs = t[set]![k];
        runs.ms.push(r.ms);
        runs.peak.push(r.peak);
        runs.cpu.push(r.cpu);
        runs.hostCpu.push(r.hostCpu);
      }
    }
  }
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  console.log(`pi-prep check over SSH, ${arch} Pi root behind one sshd, ${cpus().length} cores; ${rounds} rounds, median wall time, peak RSS of pi-prep's process tree,`);
  console.log("CPU seconds of pi-prep's tree (this machine in real life) | of the sshd side (the Pis in real life)");
  for (const [set, r] of Object.entries(t)) {
    console.log(`ssh options: ${set}`);
    console.log(`  one host                          ${(median(r.one.ms) / 1000).toFixed(2).padStart(6)} s   peak ${mib(Math.max(...r.one.peak))}   CPU ${median(r.one.cpu).toFixed(2)} | ${median(r.one.hostCpu).toFixed(2)}`);
    console.log(`  ${count} hosts, --parallel ${parallel}`.padEnd(36) + `${(median(r.fleet.ms) / 1000).toFixed(2).padStart(6)} s   peak ${mib(Math.max(...r.fleet.peak))}   CPU ${median(r.fleet.cpu).toFixed(2)} | ${median(r.fleet.hostCpu).toFixed(2)}  (${(median(r.fleet.cpu) / count).toFixed(3)} | ${(median(r.fleet.hostCpu) / count).toFixed(3)} per host)`);
    console.log(`  ratio                             ${(median(r.fleet.ms) / median(r.one.ms)).toFixed(2).padStart(6)}x  (goal <= 6x)`);
  }
} finally {
  await cleanup();
}
