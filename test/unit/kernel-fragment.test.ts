import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { droppedOptions, loadFragments, missingOptions, parseFragment, scriptsConfigArgs } from '../../src/lib/kernel/fragment.js';
import { depsFromKconfig, evalExpr, explainDropped } from '../../src/lib/kernel/kconfig-deps.js';
import { branchFor, buildJobs } from '../../src/lib/kernel/jobs.js';
import { parseKernelConfig } from '../../src/targets/probes/kernel-config.js';

const GiB = 1024 ** 3;

describe('kernel fragment, jobs, branch', () => {
  it('the shipped fragment asks for CFS_BANDWIDTH and the k0s options', () => {
    const f = loadFragments();
    assert.equal(f.options.get('CFS_BANDWIDTH'), 'y');
    assert.equal(f.options.get('NETFILTER_XT_MATCH_COMMENT'), 'm');
    assert.deepEqual(missingOptions(f, parseKernelConfig([...f.options].map(([k, v]) => `CONFIG_${k}=${v}`).join('\n'))), []);
    const noCfs = parseKernelConfig([...f.options].map(([k, v]) => (k === 'CFS_BANDWIDTH' ? '# CONFIG_CFS_BANDWIDTH is not set' : `CONFIG_${k}=${v}`)).join('\n'));
    assert.deepEqual(missingOptions(f, noCfs), ['CONFIG_CFS_BANDWIDTH']);
  });
  it('scripts/config arguments and what counts as surviving', () => {
    const frag = { files: [], options: parseFragment('CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D="x y"\nCONFIG_E=3\n', 't') };
    assert.deepEqual(scriptsConfigArgs(frag, '-k0s'), ['--enable', 'A', '--module', 'B', '--disable', 'C', '--set-str', 'D', 'x y', '--set-val', 'E', '3', '--set-str', 'LOCALVERSION', '-k0s', '--disable', 'LOCALVERSION_AUTO']);
    assert.deepEqual(droppedOptions(frag, parseKernelConfig('CONFIG_A=m\nCONFIG_B=y\nCONFIG_D="x y"\nCONFIG_E=3\n')), []);
    assert.deepEqual(droppedOptions(frag, parseKernelConfig('CONFIG_C=y\nCONFIG_D="z"\n')), ['A', 'B', 'C', 'D', 'E']);
    assert.throws(() => parseFragment('CONFIG_A=y\nrubbish\n', 'bad.config'), /bad.config:2: not a kconfig line/);
  });
  it('-j from cores and RAM: no OOM on a 2 GB board', () => {
    assert.equal(buildJobs(4, 2 * GiB), 3);
    assert.equal(buildJobs(4, 1 * GiB), 1);
    assert.equal(buildJobs(4, 8 * GiB), 6);
    assert.equal(buildJobs(2, 23 * GiB), 3);
  });
  it('branch from the running release', () => {
    assert.equal(branchFor('6.6.51+rpt-rpi-v8'), 'rpi-6.6.y');
    assert.equal(branchFor('6.12.25-v8-16k+'), 'rpi-6.12.y');
    assert.equal(branchFor('weird'), undefined);
  });
  it('Kconfig expressions and the chain of dependencies', async () => {
    const c = parseKernelConfig('CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\n');
    assert.equal(evalExpr('A && B', c), 1);
    assert.equal(evalExpr('A && !C', c), 2);
    assert.equal(evalExpr('C || (A && B)', c), 1);
    assert.equal(evalExpr('B = m', c), 2);
    const kconfig = new Map([['init/Kconfig', 'menuconfig C\n\tbool "c"\n\thelp\n\t  if you say Y here\n\nif C\nconfig D\n\tbool "d"\n\tdepends on C\nendif\nconfig E\n\tbool "e"\n\tdepends on D && A\n']]);
    assert.deepEqual(depsFromKconfig('E', kconfig), ['D && A']);
    assert.deepEqual(depsFromKconfig('D', kconfig), ['C', 'C']);
    assert.deepEqual(depsFromKconfig('C', kconfig), []);
    assert.equal(await explainDropped('E', c, async (s) => depsFromKconfig(s, kconfig)), 'CONFIG_E depends on CONFIG_D (n), which depends on CONFIG_C (n)');
    assert.equal(await explainDropped('Z', c, async (s) => depsFromKconfig(s, kconfig)), 'CONFIG_Z does not exist in this kernel tree');
  });
});
