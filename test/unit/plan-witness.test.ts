import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseTrace } from '../helpers/exec-trace.js';
import { compareCommands, compareOthers, sameCommand, splitQuoted, decode, type Report } from '../helpers/plan-witness.js';

// The witnesses of the issue 13 proof (test/integration/plan-proof.test.ts) must not see what was
// not there nor miss what was: their parsing, on strace lines as strace prints them.
const NODE = process.execPath;

describe('exec-trace: the commands pi-prep processes started, from strace -f', () => {
  it('a pid reused after its process exited is a new process (a kernel build forks past pid_max)', () => {
    const trace = [
      `100 execve("${NODE}", ["node", "cli.js"], 0x1 /* 3 vars */) = 0`,
      '100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD, child_tidptr=0x1) = 200',
      '200 execve("/usr/bin/make", ["make", "-j3"], 0x1 /* 3 vars */) = 0',
      '200 clone(child_stack=NULL, flags=SIGCHLD) = 300',
      '300 execve("/usr/bin/gcc", ["gcc", "-c", "x.c"], 0x1 /* 3 vars */) = 0',
      '300 +++ exited with 0 +++',
      '200 +++ exited with 0 +++',
      // pid 300 again, now forked by node: scripts/config, not gcc.
      '100 clone(child_stack=NULL, flags=SIGCHLD) = 300',
      '300 execve("/k/scripts/config", ["/k/scripts/config", "--file", "/k/.config"], 0x1 /* 3 vars */) = 0',
    ].join('\n');
    assert.deepEqual(parseTrace(trace).commands, [['make', '-j3'], ['/k/scripts/config', '--file', '/k/.config']]);
  });

  it('a child whose exec comes before the parent\'s clone returns, forks from threads, a call in two parts', () => {
    const trace = [
      `100 execve("${NODE}", ["node", "cli.js"], 0x1 /* 3 vars */) = 0`,
      '100 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, exit_signal=0} => {parent_tid=[101]}, 88) = 101',
      '101 clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>',
      '102 execve("/usr/sbin/chroot", ["chroot", "/r", "k0s", "start"], 0x1 /* 3 vars */) = 0',
      '101 <... clone resumed>) = 102',
      '102 execve("/usr/local/bin/k0s", ["k0s", "start"], 0x1 /* 3 vars */) = 0',
      '102 execve("/nope", ["x"], 0x1 /* 3 vars */) = -1 ENOENT (No such file or directory)',
    ].join('\n');
    assert.deepEqual(parseTrace(trace).commands, [['chroot', '/r', 'k0s', 'start']]);
  });

  it('pi-prep\'s own file changes: writing opens, renames, removals; reads and other processes\' are not', () => {
    const trace = [
      `100 execve("${NODE}", ["node", "cli.js"], 0x1 /* 3 vars */) = 0`,
      '100 openat(AT_FDCWD, "/etc/os-release", O_RDONLY|O_CLOEXEC) = 3',
      '100 openat(AT_FDCWD, "/r/etc/.k0stoken.pi-prep-100-0a1b2c3d.tmp", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = 4',
      '100 rename("/r/etc/.k0stoken.pi-prep-100-0a1b2c3d.tmp", "/r/etc/k0stoken") = 0',
      '100 openat(AT_FDCWD, "/dev/null", O_RDWR|O_CLOEXEC) = 5',
      '100 clone(child_stack=NULL, flags=SIGCHLD) = 200',
      '200 execve("/bin/rm", ["rm", "-rf", "/x"], 0x1 /* 3 vars */) = 0',
      '200 unlinkat(AT_FDCWD, "/x/a", 0) = 0',
      '100 mkdir("/r/etc/k0s", 0700) = 0',
      '100 unlinkat(AT_FDCWD, "/r/gone", 0) = -1 ENOENT (No such file or directory)',
      '100 openat(AT_FDCWD, "/r/with \\"quote\\"\\303\\251", O_WRONLY|O_TRUNC) = 6',
    ].join('\n');
    assert.deepEqual(parseTrace(trace).writes, [
      { op: 'create', path: '/r/etc/.k0stoken.pi-prep-100-0a1b2c3d.tmp' },
      { op: 'rename-from', path: '/r/etc/.k0stoken.pi-prep-100-0a1b2c3d.tmp' },
      { op: 'rename-to', path: '/r/etc/k0stoken' },
      { op: 'mkdir', path: '/r/etc/k0s' },
      { op: 'open-write', path: '/r/with "quote"é' },
    ]);
  });
});

describe('plan-witness: commands against the plan', () => {
  it('PLACEHOLDER: <...> inside an argument is any text; as a whole argument, one or more arguments', () => {
    assert.ok(sameCommand(['fsck.vfat', '-n', '<loop>'], ['fsck.vfat', '-n', '/dev/loop7']));
    assert.ok(sameCommand(['mcopy', '-i', 'c.img', '<every file>', '::'], ['mcopy', '-i', 'c.img', '/w/a', '/w/b', '::']));
    assert.ok(!sameCommand(['mcopy', '-i', 'c.img', '<every file>', '::'], ['mcopy', '-i', 'c.img', '::']), 'at least one');
    assert.ok(sameCommand(['depmod', '/lib/modules/<kernelrelease>'], ['depmod', '/lib/modules/6.1.192-k0s']));
    assert.ok(!sameCommand(['k0s', 'start'], ['k0s', 'stop']));
  });

  it('a command hidden from the plan, a planned one not run, and reads (made by the dry run too, or documented reads)', () => {
    const here = (...argv: string[]) => ({ where: 'here' as const, argv });
    const planned = [here('dd', 'of=c.img'), here('sync', 'c.img')];
    const seen = [here('lsblk', '--json'), here('dd', 'of=c.img'), here('losetup', '--find', 'c.img'), here('sfdisk', '--dump', 'c.img')];
    assert.deepEqual(compareCommands(planned, seen, [here('lsblk', '--json')], () => false), {
      missing: [['here', 'sync', 'c.img']],
      unplanned: [['here', 'losetup', '--find', 'c.img']],
    });
  });

  it('decodes a root target\'s chroot and an SSH target\'s remote line (sudo, env), and leaves its file scripts to the writes', () => {
    assert.deepEqual(decode(['chroot', '/r', 'k0s', 'start'], ['/r']), { where: 'node', argv: ['k0s', 'start'] });
    assert.deepEqual(decode(['chroot', '/other', 'k0s'], ['/r']), { where: 'here', argv: ['chroot', '/other', 'k0s'] });
    const line = "exec sudo -n -- env PATH=/usr/bin K0S_X='a b' /usr/local/bin/k0s install worker --token-file '/etc/k0s/it'\\''s'";
    assert.deepEqual(splitQuoted(line).slice(-4), ['install', 'worker', '--token-file', "/etc/k0s/it's"]);
    assert.deepEqual(decode(['ssh', '-p', '22', '--', 'h', line], []), { where: 'node', argv: ['/usr/local/bin/k0s', 'install', 'worker', '--token-file', "/etc/k0s/it's"] });
    assert.equal(decode(['ssh', '--', 'h', "exec sh -c 'cat > \"$1\"' sh /etc/x"], []), undefined);
    assert.equal(decode(['ssh', '-O', 'exit', '--', 'h'], []), undefined);
  });
});

describe('plan-witness: writes and copies against the real run\'s report', () => {
  const report = (...actions: object[]): Report => ({ target: 't', ok: true, notes: [], tasks: [{ id: 'install', status: 'applied', actions: actions as Report['tasks'][0]['actions'] }] });
  it('GLOB: a planned copy of a directory or pattern covers the per-file copies; a * may match none; the rest must be equal', () => {
    const plan = report(
      { kind: 'put', from: '/b/mods/<kernelrelease>', path: '/lib/modules/<kernelrelease>', mode: '0644' },
      { kind: 'put', from: '/b/overlays/*.dtbo', path: '/boot/overlays/', mode: '0644' },
      { kind: 'write', path: '/boot/config.txt', bytes: 10 },
    );
    const real = report(
      { kind: 'put', from: '/b/mods/6.1.9/a.ko', path: '/lib/modules/6.1.9/a.ko', mode: '0644' },
      { kind: 'put', from: '/b/mods/6.1.9/modules.dep', path: '/lib/modules/6.1.9/modules.dep', mode: '0644' },
      { kind: 'write', path: '/boot/config.txt', bytes: 10 },
    );
    assert.deepEqual(compareOthers(plan, real), { missing: [], unplanned: [] });
    const other = report(
      { kind: 'put', from: '/b/mods/6.1.9/a.ko', path: '/lib/modules/6.1.9/a.ko' },
      { kind: 'write', path: '/var/lib/pi-prep/kernel-install.json', bytes: 5 },
      { kind: 'write', path: '/boot/config.txt', bytes: 10 },
    );
    const d = compareOthers(plan, other);
    assert.equal(d.missing.length, 1, 'the module copy without its mode is not the planned one');
    assert.equal(d.unplanned.length, 2);
  });

  it('PLACEHOLDER in a write\'s text: line by line, and then its size is the real value\'s', () => {
    const plan = report({ kind: 'write', path: '/var/lib/pi-prep/kernel-install.json', bytes: 40, diff: ['+ "release": "<kernelrelease>"'] });
    const real = report({ kind: 'write', path: '/var/lib/pi-prep/kernel-install.json', bytes: 36, diff: ['+ "release": "6.1.192-k0s"'] });
    assert.deepEqual(compareOthers(plan, real), { missing: [], unplanned: [] });
    const wrong = report({ kind: 'write', path: '/var/lib/pi-prep/kernel-install.json', bytes: 36, diff: ['+ "image": "kernel8.img"'] });
    assert.equal(compareOthers(plan, wrong).missing.length, 1);
  });
});
