// SSH costs, in one run, against a real sshd on 127.0.0.1 (needs root and the test host setup):
//  1. one command's round trip over SSH, with and without the multiplexed connection;
//  2. `pi-prep check` over SSH against `pi-prep check --root` on the same arm64 Pi root.
// Usage: npx tsc -p . && node dist/scripts/bench-ssh.js [RUNS]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SshTarget } from '../src/targets/ssh-target.js';
import { removeRoot } from '../test/helpers/fixture-root.js';
import { piRoot as testPiRoot } from '../test/helpers/pi-root.js';
import { TestSshd, ensureUser, makeClientKey } from '../test/helpers/sshd.js';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const runs = Number(process.argv[2] ?? 15);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

// The same Pi facts in two roots (the tests' Pi 4 root, with its boot files): arm64 (every remote
// process runs under qemu, standing in for a Pi) and amd64 (native: what SSH itself costs).
const bootFiles = {
  '/proc/device-tree/compatible': 'raspberrypi,4-model-b\0brcm,bcm2711\0',
  '/boot/firmware/cmdline.txt': 'console=tty1 root=/dev/mmcblk0p2 rootwait cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n',
};
const piRoot = (arch: 'arm64' | 'amd64') => testPiRoot(false, bootFiles, arch);
const root = piRoot('arm64');
const nativeRoot = piRoot('amd64');
const key = makeClientKey();
// root lands in the arm64 Pi (qemu-user runs its busybox); on this machine itself a user with
// /bin/sh and passwordless sudo, like `pi` on Raspberry Pi OS (root's own shell rc may be slow here).
const pi = await new TestSshd(key, ['LogLevel ERROR', 'Match User root', `  ChrootDirectory ${root}`]).start();
const plain = await new TestSshd(key, ['LogLevel ERROR']).start();
const native = await new TestSshd(key, ['LogLevel ERROR', 'Match User root', `  ChrootDirectory ${nativeRoot}`]).start();
const dropUser = ensureUser('pi-prep-bench', 'nopasswd');
const cleanup = async () => {
  await pi.stop();
  await plain.stop();
  await native.stop();
  dropUser();
  removeRoot(root);
  removeRoot(nativeRoot);
};
process.once('uncaughtException', async (err) => {
  console.error(err);
  await cleanup();
  process.exit(1);
});

async function roundTrips(sshd: TestSshd, multiplex: boolean, user = 'root'): Promise<number> {
  const t = new SshTarget({ host: '127.0.0.1', port: sshd.port, user, options: sshd.sshOptions(), multiplex });
  await t.run(['true']); // connect (and, multiplexed, start the master)
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await t.run(['true']);
    times.push(ms(t0));
  }
  await t.close();
  return median(times);
}

const rt = {
  'this machine (sudo -n), multiplexed': await roundTrips(plain, true, 'pi-prep-bench'),
  'this machine (sudo -n), new connection each': await roundTrips(plain, false, 'pi-prep-bench'),
  'arm64 Pi root, multiplexed': await roundTrips(pi, true),
  'arm64 Pi root, new connection each': await roundTrips(pi, false),
};

const cases: Record<string, string[]> = {
  'check --root (local)': ['check', '--root', root],
  'check --host (SSH)': ['check', '--host', pi.host('root'), ...pi.cliArgs()],
  'check --root (local), amd64 root': ['check', '--root', nativeRoot],
  'check --host (SSH), amd64 root': ['check', '--host', native.host('root'), ...native.cliArgs()],
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let i = 0; i < runs + 2; i++) {
  for (const [name, args] of Object.entries(cases)) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    const took = ms(t0);
    if (r.status !== 0) throw new Error(`${name} exited ${r.status}: ${r.stdout}${r.stderr}`);
    if (i >= 2) times[name]!.push(took);
  }
}
const node = (() => {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    xs.push(ms(t0));
  }
  return median(xs);
})();

console.log(`runs: ${runs} each, median wall time`);
console.log('\none command (`true`) over SSH, round trip:');
for (const [k, v] of Object.entries(rt)) console.log(`  ${k.padEnd(44)} ${v.toFixed(1).padStart(7)} ms`);
console.log('\npi-prep check, whole CLI process:');
console.log(`  ${'node -e 0 (baseline)'.padEnd(44)} ${node.toFixed(1).padStart(7)} ms`);
for (const [localCase, remoteCase] of [
  ['check --root (local)', 'check --host (SSH)'],
  ['check --root (local), amd64 root', 'check --host (SSH), amd64 root'],
] as const) {
  const local = median(times[localCase]!);
  const remote = median(times[remoteCase]!);
  console.log(`  ${localCase.padEnd(44)} ${local.toFixed(1).padStart(7)} ms`);
  console.log(`  ${remoteCase.padEnd(44)} ${remote.toFixed(1).padStart(7)} ms  ${(remote / local).toFixed(2)}x`);
}

await cleanup();
