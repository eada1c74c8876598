import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalTarget } from '../../src/targets/local-target.js';
import { loadFragments, scriptsConfigArgs } from '../../src/lib/kernel/fragment.js';
import { verifyConfig } from '../../src/steps/kernel/config.js';
import type { KernelState } from '../../src/steps/kernel/plan.js';
import { parseKernelConfig } from '../../src/targets/probes/kernel-config.js';
import { kernelRepo } from '../helpers/kernel-repo.js';

const MAKE = ['ARCH=arm64', 'CROSS_COMPILE=aarch64-linux-gnu-'];

/** The kernel's own tools, as the recipe runs them: defconfig, scripts/config, olddefconfig. */
function configure(dir: string, defconfig: string, state: Pick<KernelState, 'fragment'>): void {
  execFileSync('make', ['-C', dir, ...MAKE, defconfig], { stdio: 'ignore' });
  execFileSync(join(dir, 'scripts/config'), ['--file', join(dir, '.config'), ...scriptsConfigArgs(state.fragment, '-k0s')]);
  execFileSync('make', ['-C', dir, ...MAKE, 'olddefconfig'], { stdio: 'ignore' });
}

describe("kernel-configs/ on the kernel's real Kconfig (Debian linux-source, ARCH=arm64)", () => {
  let work: string;
  let dir: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'pi-prep-kconfig-'));
    dir = join(work, 'linux');
    execFileSync('git', ['clone', '-q', kernelRepo(), dir], { stdio: 'ignore' });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('the fragment merged into the arm64 defconfig survives olddefconfig', async () => {
    const state = { fragment: loadFragments() } as Pick<KernelState, 'fragment'>;
    configure(dir, 'defconfig', state);
    await verifyConfig(new LocalTarget(), state.fragment, dir);
    const cfg = parseKernelConfig(readFileSync(join(dir, '.config'), 'utf8'));
    assert.equal(cfg.get('CFS_BANDWIDTH'), 'y');
    assert.equal(cfg.get('LOCALVERSION'), '"-k0s"');
    assert.equal(cfg.get('LOCALVERSION_AUTO'), 'n');
    for (const [k] of state.fragment.options) assert.ok(['y', 'm'].includes(cfg.get(k) ?? 'n'), `CONFIG_${k} kept`);
  });

  it('with CGROUP_SCHED switched off, the check fails naming the dropped options and CGROUP_SCHED', async () => {
    const off = join(work, 'no-cgroup-sched.config');
    // SCHED_AUTOGROUP selects CGROUP_SCHED: it goes too, or the select wins.
    writeFileSync(off, '# CONFIG_SCHED_AUTOGROUP is not set\n# CONFIG_CGROUP_SCHED is not set\n');
    const state = { fragment: loadFragments([off]) } as Pick<KernelState, 'fragment'>;
    configure(dir, 'defconfig', state);
    await assert.rejects(verifyConfig(new LocalTarget(), state.fragment, dir), (err: Error) => {
      assert.match(err.message, /^olddefconfig dropped CONFIG_FAIR_GROUP_SCHED, CONFIG_CFS_BANDWIDTH: /);
      assert.match(err.message, /CONFIG_FAIR_GROUP_SCHED depends on CONFIG_CGROUP_SCHED \(n\)/);
      assert.match(err.message, /CONFIG_CFS_BANDWIDTH depends on CONFIG_FAIR_GROUP_SCHED \(n\), which depends on CONFIG_CGROUP_SCHED \(n\)/);
      assert.match(err.message, /--kernel-fragment FILE/);
      return true;
    });
  });

  it('an option this tree does not know is named as such', async () => {
    const bogus = join(work, 'bogus.config');
    writeFileSync(bogus, 'CONFIG_PI_PREP_NO_SUCH_OPTION=y\n');
    const state = { fragment: loadFragments([bogus]) } as Pick<KernelState, 'fragment'>;
    configure(dir, 'defconfig', state);
    await assert.rejects(verifyConfig(new LocalTarget(), state.fragment, dir), /CONFIG_PI_PREP_NO_SUCH_OPTION does not exist in this kernel tree/);
  });
});
