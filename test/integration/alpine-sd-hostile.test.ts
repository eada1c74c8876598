import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CLI, runCli } from '../helpers/cli.js';
import { treeHash } from '../helpers/tree-hash.js';
import { alpineTarball, e2fsck, fsckVfat, partitions } from '../helpers/card-inspect.js';

const M = 1024 * 1024;

/** A raw ustar entry: any type flag, any name, so the tarball can be as hostile as we like. */
function entry(name: string, type: string, data = '', link = ''): Buffer {
  const h = Buffer.alloc(512);
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0';
  h.write(name, 0, 100);
  h.write(oct(0o644, 8), 100);
  h.write(oct(0, 8), 108);
  h.write(oct(0, 8), 116);
  h.write(oct(Buffer.byteLength(data), 12), 124);
  h.write(oct(1735689600, 12), 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write(link, 157, 100);
  h.write('ustar\0', 257);
  h.write('00', 263);
  if (type === '3' || type === '4') { h.write(oct(1, 8), 329); h.write(oct(3, 8), 337); }
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const body = Buffer.from(data);
  const pad = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([h, body, pad]);
}

/** A PAX extended header naming the next entry's path: how tar stores paths of any length. */
function paxPath(path: string, data = 'x'): Buffer[] {
  const body = (n: number) => `${n} path=${path}\n`;
  let len = body(0).length;
  while (body(len).length !== len) len = body(len).length;
  return [entry('./PaxHeaders/deep', 'x', body(len)), entry('./placeholder', '0', data)];
}

const good = () => [entry('./cmdline.txt', '0', 'modules=loop quiet\n'), entry('./boot/', '5'), entry('./boot/vmlinuz-rpi', '0', 'kernel')];

describe('pi-prep alpine-sd with hostile tarballs, and killed mid-write', () => {
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'pi-prep-sd-hostile-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const hostile: [string, Buffer[], RegExp][] = [
    ['dot-dot', [entry('./../../escaped', '0', 'x')], /climbs out/],
    ['absolute path', [entry('/tmp/pi-prep-escaped', '0', 'x')], /absolute path/],
    ['symlink', [entry('./evil', '2', '', '/etc/passwd')], /SymbolicLink/],
    ['hardlink', [entry('./hard', '1', '', 'cmdline.txt')], /Link/],
    ['device node', [entry('./sda', '4')], /BlockDevice/],
    ['char device', [entry('./tty', '3')], /CharacterDevice/],
    ['FAT-illegal name', [entry('./what?.txt', '0', 'x')], /FAT cannot store/],
    ['case-colliding names', [entry('./BOOT/x', '0', 'x')], /same name on FAT/],
    // mtools stores such a name as a mangled 8.3 alias the read-back misses: refused before the erase.
    ['non-ASCII name', [entry('./caf\u00e9.txt', '0', 'x')], /"café\.txt" is not ASCII/],
    // 850 levels, 4249 characters: past PATH_MAX once extracted, so the real run failed after a clean dry run.
    ['deep PAX path', paxPath('./' + Array.from({ length: 850 }, (_, i) => `d${String(i).padStart(3, '0')}`).join('/') + '/file.txt'), /a path longer than 1024 characters/],
  ];
  for (const [name, extra, why] of hostile) {
    it(`refuses a tarball with a ${name}: exit 3, nothing written anywhere`, async () => {
      const t = join(work, `${name.replace(/\W/g, '-')}.tar.gz`);
      writeFileSync(t, gzipSync(Buffer.concat([...good(), ...extra, Buffer.alloc(1024)])));
      const img = join(work, `${name.replace(/\W/g, '-')}.img`);
      const before = treeHash(work);
      const r = await runCli(['alpine-sd', img, '--no-ssh', '--hostname', 'pi-t', '--tarball', t, '--size', '600M']);
      assert.equal(r.code, 3, r.stderr + r.stdout);
      assert.match(r.stderr, why);
      assert.equal(existsSync(img), false, 'the image was created');
      assert.equal(treeHash(work, [`/${name.replace(/\W/g, '-')}.img`]), before);
      assert.equal(existsSync('/tmp/pi-prep-escaped'), false);
      // A dry run refuses it too.
      const dry = await runCli(['alpine-sd', img, '--no-ssh', '--hostname', 'pi-t', '--tarball', t, '--size', '600M', '--dry-run']);
      assert.equal(dry.code, 3, dry.stderr);
    });
  }

  it('a full scratch disk during extraction is one line (exit 1), the scratch directory goes, the card is untouched', async () => {
    const { execFileSync } = await import('node:child_process');
    const mnt = mkdtempSync(join(tmpdir(), 'pi-prep-fulltmp-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'pi-prep-test', mnt]);
    try {
      const img = join(work, 'full-scratch.img');
      const r = await runCli(['alpine-sd', img, '--no-ssh', '--hostname', 'pi-t', '--tarball', alpineTarball(), '--size', '600M'], { env: { TMPDIR: mnt } });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^pi-prep: no space left in \S+ while extracting \S+ \(\d+ bytes written\): free space there or set TMPDIR to a larger disk; nothing was written to the card\n$/);
      assert.deepEqual(readdirSync(mnt), []);
      assert.equal(existsSync(img), false);
    } finally {
      execFileSync('umount', [mnt]);
      rmSync(mnt, { recursive: true });
    }
  });

  it('kill -9 during the write leaves no valid partition table; a re-run completes', async () => {
    const tarball = alpineTarball();
    const img = join(work, 'killed.img');
    const log = join(work, 'killed.log');
    // Start from a valid card, so "no table" proves the old one was erased before anything else.
    const first = await runCli(['alpine-sd', img, '--no-ssh', '--hostname', 'pi-t', '--tarball', tarball, '--size', '600M']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(partitions(img).length, 2);
    // Another host name: the finished card is not this run's card (the same one would be left alone).
    const child = spawn(process.execPath, [CLI, 'alpine-sd', img, '--no-ssh', '--hostname', 'pi-t2', '--tarball', tarball, '--size', '600M', '--log-file', log], {
      stdio: 'ignore',
      // The killed run cannot remove its scratch directory: keep it inside this test's work dir.
      env: { ...process.env, TMPDIR: work },
    });
    // Kill as soon as the boot filesystem is being written (the log says so before the tools run).
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
        if (/run `mkfs\.vfat|Boot partition: FAT32 .*: to do/.test(text)) {
          clearInterval(timer);
          child.kill('SIGKILL');
          resolve();
        }
      }, 5);
      child.on('exit', () => { clearInterval(timer); reject(new Error('pi-prep finished before it could be killed')); });
    });
    await new Promise((r) => child.on('exit', r));
    assert.doesNotMatch(readFileSync(log, 'utf8'), /Partition table .*: to do/, 'killed too late to prove anything');
    assert.deepEqual(partitions(img), [], 'a partition table survived the kill');

    const stale = readdirSync(work).filter((n) => n.startsWith('pi-prep-sd-'));
    assert.equal(stale.length, 1, 'the killed run left its scratch directory');
    const again = await runCli(['alpine-sd', img, '--no-ssh', '--hostname', 'pi-t', '--tarball', tarball, '--size', '600M'], { env: { TMPDIR: work } });
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.deepEqual(readdirSync(work).filter((n) => n.startsWith('pi-prep-sd-')), [], 'the re-run swept the dead run\'s scratch directory');
    assert.equal(partitions(img).length, 2);
    assert.match(fsckVfat(img, 4 * M, 256 * M), /files/);
    assert.match(e2fsck(img, 260 * M), /k0s-data/);
  });
});
