import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { buildRoot, osRelease, removeRoot, standInCalls } from '../helpers/fixture-root.js';
import { runCli } from '../helpers/cli.js';
import { treeHash } from '../helpers/tree-hash.js';
import { kernelConfig } from '../helpers/k0s-release.js';
import { BOOKWORM_CMDLINE, piRoot } from '../helpers/rpi-fixture.js';

/** --prepare-only: the OS made fit for k0s, k0s itself left to `k0sctl apply`. */
describe('--prepare-only (prepare here, install with k0sctl)', () => {
  const roots: string[] = [];
  after(() => roots.forEach(removeRoot));

  it('rpios: cmdline.txt patched, reboot asked for, verified after it; no k0s, no token, nothing fetched', async () => {
    const root = piRoot({ board: 'pi4' });
    roots.push(root);
    const first = await runCli(['rpios', '--root', root, '--prepare-only', '--verbose', '--kernel-repo', '/nonexistent/linux']);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    assert.match(readFileSync(join(root, 'boot/firmware/cmdline.txt'), 'utf8'), new RegExp(`^${BOOKWORM_CMDLINE.trimEnd()} cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n$`));
    execFileSync('chroot', [root, '/sbin/reboot']); // the user reboots the Pi
    const second = await runCli(['rpios', '--root', root, '--prepare-only', '--verbose', '--kernel-repo', '/nonexistent/linux']);
    assert.equal(second.code, 0, second.stderr + second.stdout);
    assert.match(second.stdout, /\[x\] After the reboot: kernel, cgroups and CFS bandwidth verified/);
    assert.match(second.stdout, /Prepared only \(--prepare-only\): k0s is not installed and the node has not joined\. Run `k0sctl apply`/);
    assert.doesNotMatch(second.stdout, /k0s binary|Join token/);
    assert.ok(!existsSync(join(root, 'usr/local/bin/k0s')) && !existsSync(join(root, 'etc/k0s')), 'no k0s, no token');
    assert.deepEqual(standInCalls(root).filter((c) => c[0] === 'k0s'), []);
  });

  it('linux: the kernel and cgroup checks only; a root that fails them still fails', async () => {
    const good = buildRoot({
      arch: 'amd64',
      init: 'systemd',
      files: {
        '/etc/os-release': osRelease('ubuntu', '24.04', 'Ubuntu 24.04 LTS', 'ID_LIKE=debian\n'),
        '/proc/sys/kernel/osrelease': '6.1.0-test\n',
        '/boot/config-6.1.0-test': kernelConfig(),
        '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids\n',
        '/proc/meminfo': 'MemTotal:        3884376 kB\n',
      },
    });
    roots.push(good);
    const h = treeHash(good);
    const res = await runCli(['linux', '--root', good, '--prepare-only', '--dry-run']);
    assert.equal(res.code, 0, res.stderr + res.stdout);
    assert.match(res.stdout, /Kernel and cgroups fit for a k0s worker/);
    assert.match(res.stdout, /Prepared only \(--prepare-only\)/);
    assert.doesNotMatch(res.stdout, /k0s binary/);
    const real = await runCli(['linux', '--root', good, '--prepare-only']);
    assert.equal(real.code, 0, real.stderr);
    assert.equal(treeHash(good), h, 'nothing to change on a fit Linux');

    const bad = await runCli(['linux', '--root', good, '--prepare-only', '--join', '@/nonexistent/token']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^pi-prep: --prepare-only leaves k0s and the join to k0sctl: drop --join, or drop --prepare-only$/m);
  });
});
