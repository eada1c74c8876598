import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseOsRelease } from '../../src/targets/probes/os-release.js';
import { boardFromCpuinfo, boardFromDeviceTree, kernelFlavour } from '../../src/targets/probes/board.js';
import { isEnabled, parseKernelConfig } from '../../src/targets/probes/kernel-config.js';
import { parseCgroups } from '../../src/targets/probes/cgroups.js';
import { compareVersions, k0sArchFor } from '../../src/targets/facts.js';

describe('probes', () => {
  it('os-release: quoted and unquoted values, ID_LIKE list', () => {
    const os = parseOsRelease('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\nID_LIKE="ubuntu debian"\n# comment\n');
    assert.deepEqual(os, { id: 'debian', idLike: ['ubuntu', 'debian'], versionId: '13', codename: 'trixie', prettyName: 'Debian GNU/Linux 13 (trixie)' });
    assert.equal(parseOsRelease(undefined).id, 'unknown');
  });

  it('board from the device tree: Pi 5 and Pi 4 (NUL-separated compatible)', () => {
    assert.deepEqual(boardFromDeviceTree('Raspberry Pi 5 Model B Rev 1.0\0', 'raspberrypi,5-model-b\0brcm,bcm2712\0'),
      { model: 'Raspberry Pi 5 Model B Rev 1.0', soc: 'BCM2712', source: 'device-tree' });
    assert.equal(boardFromDeviceTree('Raspberry Pi 4 Model B Rev 1.4\0', 'raspberrypi,4-model-b\0brcm,bcm2711\0')?.soc, 'BCM2711');
    assert.equal(boardFromDeviceTree(undefined, undefined), undefined);
  });

  it('board from cpuinfo revision codes (new style, bit 23)', () => {
    assert.deepEqual(boardFromCpuinfo('Hardware\t: BCM2835\nRevision\t: d03114\n'), { model: 'Raspberry Pi 4 Model B', soc: 'BCM2711', source: 'cpuinfo' });
    assert.equal(boardFromCpuinfo('Revision\t: c04170\n')?.soc, 'BCM2712'); // Pi 5
    assert.equal(boardFromCpuinfo('Revision\t: a020d3\n')?.model, 'Raspberry Pi 3 Model B+');
    assert.equal(boardFromCpuinfo('Revision\t: 902120\n')?.model, 'Raspberry Pi Zero 2 W');
    assert.equal(boardFromCpuinfo('processor: 0\n'), undefined);
  });

  it('kernel flavour per SoC', () => {
    assert.deepEqual(kernelFlavour('BCM2712'), { defconfig: 'bcm2712_defconfig', image: 'kernel_2712.img' });
    assert.deepEqual(kernelFlavour('BCM2711'), { defconfig: 'bcm2711_defconfig', image: 'kernel8.img' });
    assert.deepEqual(kernelFlavour('BCM2837'), { defconfig: 'bcm2711_defconfig', image: 'kernel8.img' });
    assert.equal(kernelFlavour('BCM2835'), undefined);
  });

  it('kernel config: y and m pass, n and unset do not', () => {
    const c = parseKernelConfig('CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D="x"\n');
    assert.equal(isEnabled(c, 'A'), true);
    assert.equal(isEnabled(c, 'CONFIG_B'), true);
    assert.equal(isEnabled(c, 'C'), false);
    assert.equal(isEnabled(c, 'D'), false);
    assert.equal(isEnabled(c, 'E'), false);
  });

  it('cgroups: v2 from cgroup.controllers, v1 enabled controllers from /proc/cgroups', () => {
    assert.deepEqual(parseCgroups('cpuset cpu io memory pids\n', undefined), { version: 2, controllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'] });
    assert.deepEqual(parseCgroups(undefined, '#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t1\t1\t1\nmemory\t0\t1\t0\n'), { version: 1, controllers: ['cpuset'] });
    assert.deepEqual(parseCgroups(undefined, undefined), { version: undefined, controllers: [] });
  });

  it('arch names and version order', () => {
    assert.equal(k0sArchFor('aarch64'), 'arm64');
    assert.equal(k0sArchFor('x86_64'), 'amd64');
    assert.equal(k0sArchFor('armv7l'), 'arm');
    assert.equal(k0sArchFor('riscv64'), undefined);
    assert.deepEqual(['6.6.51+rpt-rpi-v8', '6.12.25+rpt-rpi-2712', '6.1.0-test'].sort(compareVersions), ['6.1.0-test', '6.6.51+rpt-rpi-v8', '6.12.25+rpt-rpi-2712']);
  });
});
