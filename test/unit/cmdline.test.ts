import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CGROUP_FLAGS, cmdlineProblems, patchCmdline } from '../../src/lib/cmdline.js';

const DISABLE = 'cgroup_disable=memory';
const param = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[a-z][a-z0-9_.]{0,10}(=[A-Za-z0-9,:/._-]{0,12})?$/) },
  { weight: 1, arbitrary: fc.constantFrom(...CGROUP_FLAGS, DISABLE, 'cgroup_enable=cpu', 'quiet', 'root=PARTUUID=4e639091-02') },
);
const sep = fc.constantFrom(' ', ' ', '  ', '\t', ' \t ');
/** A cmdline.txt: parameters, odd spacing, sometimes `--` and init's arguments, sometimes a newline. */
const cmdline = fc.tuple(fc.array(fc.tuple(param, sep), { maxLength: 14 }), fc.boolean(), fc.array(param, { maxLength: 3 }), fc.constantFrom('', '\n', '\r\n'), fc.constantFrom('', ' '))
  .map(([ps, dashes, init, eol, lead]) => lead + ps.map(([p, s]) => p + s).join('').trimEnd() + (dashes ? ' -- ' + init.join(' ') : '') + eol);

const tokens = (line: string) => line.split('\n')[0]!.split(/\s+/).filter(Boolean);

describe('patchCmdline (property, 10,000 generated lines each)', () => {
  const runs = { numRuns: 10_000 };
  it('is idempotent', () => fc.assert(fc.property(cmdline, (c) => patchCmdline(patchCmdline(c)) === patchCmdline(c)), runs));
  it('stays one line and never empty; flags present, cgroup_disable=memory gone', () => fc.assert(fc.property(cmdline, (c) => {
    const out = patchCmdline(c);
    const body = out.replace(/\r?\n$/, '');
    assert.ok(!body.includes('\n'), 'one line');
    assert.ok(body.trim().length > 0, 'never empty');
    assert.deepEqual(cmdlineProblems(out), []);
    assert.ok(!tokens(out).includes(DISABLE));
  }), runs));
  it('keeps every other parameter byte for byte and in order (flags before `--`)', () => fc.assert(fc.property(cmdline, (c) => {
    const before = tokens(c).filter((t) => t !== DISABLE);
    const kernelPart = tokens(c).indexOf('--') === -1 ? tokens(c) : tokens(c).slice(0, tokens(c).indexOf('--'));
    const added = CGROUP_FLAGS.filter((f) => !kernelPart.includes(f));
    const after = [...tokens(patchCmdline(c))];
    for (const f of added) after.splice(after.indexOf(f), 1);
    assert.deepEqual(after, before);
    const dd = tokens(patchCmdline(c)).indexOf('--');
    if (dd !== -1) for (const f of CGROUP_FLAGS) assert.ok(tokens(patchCmdline(c)).indexOf(f) < dd, `${f} before --`);
    if (c.includes('\r\n')) assert.ok(patchCmdline(c).endsWith('\n'));
  }), runs));
  it('Bookworm default line', () => {
    const bw = 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet splash\n';
    assert.equal(patchCmdline(bw), bw.trimEnd() + ' cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n');
    assert.equal(patchCmdline('cgroup_disable=memory console=tty1\n'), 'console=tty1 cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n');
  });

  it('a quoted value holding spaces or `--` is one parameter, as the kernel reads it', () => {
    const line = 'console=tty1 foo="a -- b" root=PARTUUID=4e639091-02\n';
    assert.equal(patchCmdline(line), 'console=tty1 foo="a -- b" root=PARTUUID=4e639091-02 cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n');
    assert.deepEqual(cmdlineProblems('foo="x cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1"'), CGROUP_FLAGS.map((f) => `${f} missing`));
    assert.equal(patchCmdline('a "b c" -- init "d -- e"\n'), 'a "b c" cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1 -- init "d -- e"\n');
  });
});
