import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { batchHostnames, cardOverlay, firstClash, sharedBootFiles, type SharedPlan } from '../../src/lib/alpine/card-plan.js';
import { cardHostnames, expandTargets } from '../../src/commands/alpine-sd.js';
import { UsageError } from '../../src/core/errors.js';
import type { TarballContents } from '../../src/lib/disk/extract.js';

const plan = (more: Partial<SharedPlan> = {}): SharedPlan => ({
  tarball: { path: '/t.tar.gz' }, alpineMirror: 'https://mirror.example/alpine', sshKeys: ['ssh-ed25519 AAAA me'], work: '/tmp/w', writtenAt: 1_700_000_000, ...more,
});
const contents: TarballContents = {
  files: [{ path: 'cmdline.txt', size: 3, sha256: 'x' }, { path: 'boot/vmlinuz-rpi', size: 6, sha256: 'k'.repeat(64) }],
  dirs: ['boot'],
  bytes: 9,
  text: new Map([['cmdline.txt', 'modules=loop quiet console=tty1\n'], ['.alpine-release', '3.21.2\n']]),
  raw: Buffer.alloc(0),
};
const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

describe('the alpine-sd plan: a pure value, made before any effect', () => {
  it('shared boot files: the tarball\'s, cmdline.txt patched (cgroups, serial console), usercfg.txt, each with its SHA-256', () => {
    const b = sharedBootFiles(plan(), contents);
    assert.equal(b.cmdline, 'modules=loop quiet console=serial0,115200 console=tty1 cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n');
    assert.equal(b.usercfg, '# pi-prep: k0s worker\narm_64bit=1\nenable_uart=1\n');
    assert.equal(b.repoBranch, 'v3.21');
    assert.deepEqual(b.files.map((f) => f.path), ['boot/vmlinuz-rpi', 'cmdline.txt', 'usercfg.txt']);
    assert.equal(b.files.find((f) => f.path === 'cmdline.txt')!.sha256, sha(b.cmdline));
    assert.deepEqual(sharedBootFiles(plan(), contents), b, 'the same inputs, the same plan');
  });

  it('the overlay is the card\'s identity: the same for the same name and time, another for another name', () => {
    const a = cardOverlay(plan(), 'pi-1', 'v3.21');
    assert.equal(a.name, 'pi-1.apkovl.tar.gz');
    assert.deepEqual(cardOverlay(plan(), 'pi-1', 'v3.21').data, a.data, 'byte for byte');
    assert.notEqual(cardOverlay(plan(), 'pi-2', 'v3.21').file.sha256, a.file.sha256);
    assert.notEqual(cardOverlay(plan({ sshKeys: [] }), 'pi-1', 'v3.21').file.sha256, a.file.sha256);
    // Written at another time: another file (the first boot's clock floor), rebuilt equal from the card's own time.
    assert.notEqual(cardOverlay(plan(), 'pi-1', 'v3.21', 1_800_000_000).file.sha256, a.file.sha256);
    const listing = execFileSync('tar', ['-tvzf', '-', '--full-time'], { input: a.data }).toString();
    assert.match(listing, /2023-11-14 \d\d:13:20 etc\/hostname/);
  });

  it('host names for a batch: {n} numbers the cards, plain names are one per card, defaults are unique', () => {
    assert.deepEqual(batchHostnames(['pi-{n}'], 3, () => 'x'), ['pi-1', 'pi-2', 'pi-3']);
    assert.deepEqual(batchHostnames(['a', 'b'], 2, () => 'x'), ['a', 'b']);
    let i = 0;
    const seq = ['pi-worker-aaaa', 'pi-worker-aaaa', 'pi-worker-bbbb'];
    assert.deepEqual(batchHostnames(undefined, 2, () => seq[i++]!), ['pi-worker-aaaa', 'pi-worker-bbbb'], 'a repeated random name is drawn again');
    assert.equal(firstClash(['a', 'B', 'b']), 'b', 'host names are case-insensitive');
    assert.equal(firstClash(['a', 'b']), undefined);
  });

  it('a clash or a miscount is bad input (exit 2), named with the fix', () => {
    const usage = (f: () => unknown, re: RegExp) => assert.throws(f, (e: Error) => e instanceof UsageError && re.test(e.message));
    usage(() => cardHostnames(['pi'], 3), /would name all 3 cards the same.*--hostname 'pi-\{n\}'/);
    usage(() => cardHostnames(['a', 'a'], 2), /two cards would both be named a/);
    usage(() => cardHostnames(['a', 'b', 'c'], 2), /3 --hostname values for 2 card/);
    usage(() => cardHostnames(['pi_{n}'], 2), /pi_1 is not a host name/);
    assert.deepEqual(cardHostnames(['pi-{n}'], 2), ['pi-1', 'pi-2']);
    assert.deepEqual(expandTargets(['c/pi-{n}.img'], '3'), ['c/pi-1.img', 'c/pi-2.img', 'c/pi-3.img']);
    usage(() => expandTargets(['c/pi-{n}.img'], undefined), /holds \{n\}: add --count N/);
    usage(() => expandTargets(['a.img'], '2'), /--count numbers one TARGET holding \{n\}/);
    usage(() => expandTargets(['c/pi-{n}.img'], '0'), /--count 0 is not a number of cards/);
  });

  it('Wi-Fi packages are the ones Alpine\'s network extras pull in; no clock service is chosen by the overlay (initramfs-init picks hwclock on a Pi 5, swclock else)', () => {
    const ovl = cardOverlay(plan({ wifi: { ssid: 'home', psk: 'secret-passphrase' } }), 'pi-1', 'v3.21').data;
    const tar = (...args: string[]) => execFileSync('tar', ['-xzf', '-', ...args], { input: ovl }).toString();
    const world = tar('-O', 'etc/apk/world').split('\n');
    assert.ok(world.includes('wpa_supplicant') && world.includes('iw'), world.join(' '));
    assert.ok(!world.includes('wireless-tools'));
    const listing = execFileSync('tar', ['-tzf', '-'], { input: ovl }).toString();
    assert.doesNotMatch(listing, /runlevels\/\w+\/(hw|sw)clock/, 'a clock service in the overlay would sit beside the one initramfs-init adds');
    assert.match(listing, /etc\/runlevels\/boot\/wpa_supplicant/);
  });
});
