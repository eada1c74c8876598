import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { TAG, k0sReleaseServer, sampleWorkerToken } from '../helpers/k0s-release.js';
import type { TestHttpServer } from '../helpers/http-server.js';
import { alpineTarball, bootFile, bootFiles, debugfs, e2fsck, fsckVfat, partitions, sha256, tarListing, tarballFiles } from '../helpers/card-inspect.js';

const M = 1024 * 1024;
const BOOT = { offset: 4 * M, size: 256 * M };
const DATA_OFFSET = 260 * M;

describe('pi-prep alpine-sd on an image file', () => {
  let server: TestHttpServer;
  let assets: Record<string, string>;
  let work: string;
  let tarball: string;
  let token: string;
  let tokenFile: string;
  let keyFile: string;

  before(async () => {
    ({ server, assets } = await k0sReleaseServer());
    work = mkdtempSync(join(tmpdir(), 'pi-prep-sd-img-'));
    tarball = alpineTarball();
    token = await sampleWorkerToken();
    tokenFile = join(work, 'worker.token');
    writeFileSync(tokenFile, token + '\n');
    keyFile = join(work, 'id.pub');
    writeFileSync(keyFile, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMhg0pHc9Q1bqmKq2u9lqv1t8bq5cP0E9g0k8Vt1x5oN me@laptop\n');
  });
  after(async () => {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const args = (img: string, ...more: string[]) => [
    'alpine-sd', img, '--tarball', tarball, '--size', '600M', '--hostname', 'pi-w1', '--ssh-key', keyFile,
    '--join', `@${tokenFile}`, '--k0s-mirror', server.url, '--k0s-version', TAG, ...more,
  ];
  const env = () => ({ XDG_CACHE_HOME: mkdtempSync(join(work, 'cache-')) });

  it('dry run on a missing image: a plan, exit 0, no file created', async () => {
    const img = join(work, 'none.img');
    const r = await runCli(args(img, '--dry-run'), { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /mkfs\.vfat -F 32 .* --offset 8192/);
    assert.match(r.stdout, /sfdisk --quiet --wipe never/);
    assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token), 'the token leaked into the plan');
    assert.equal(existsSync(img), false);
  });

  it('writes a verified card: table, clean filesystems, every file, cmdline, apkovl, data partition', async () => {
    const img = join(work, 'card.img');
    const r = await runCli(args(img), { env: env() });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token), 'the token leaked into the output');

    assert.deepEqual(partitions(img), [
      { start: 8192, size: 524288, type: 'c', bootable: true },
      { start: 532480, size: (596 - 260) * 2048, type: '83', bootable: false },
    ]);
    assert.match(fsckVfat(img, BOOT.offset, BOOT.size), /files, \d+\/\d+ clusters/);
    assert.match(e2fsck(img, DATA_OFFSET), /k0s-data: \d+\/\d+ files/);

    const want = tarballFiles(tarball);
    const got = bootFiles(img, BOOT.offset);
    for (const [p, h] of want) {
      if (p === 'cmdline.txt') continue;
      assert.equal(got.get(p), h, `${p} differs or is missing on the card`);
    }
    const cmdline = bootFile(img, BOOT.offset, 'cmdline.txt').toString();
    assert.equal(cmdline, 'modules=loop,squashfs,sd-mod,usb-storage quiet console=serial0,115200 console=tty1 cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n');
    assert.match(bootFile(img, BOOT.offset, 'usercfg.txt').toString(), /arm_64bit=1/);

    const ovl = tarListing(bootFile(img, BOOT.offset, 'pi-w1.apkovl.tar.gz'));
    assert.equal(ovl.get('root/.ssh'), 'drwx------ 0/0');
    assert.equal(ovl.get('root/.ssh/authorized_keys'), '-rw------- 0/0');
    assert.equal(ovl.get('etc/hostname'), '-rw-r--r-- 0/0');
    assert.equal(ovl.get('etc/init.d/pi-prep-first-boot'), '-rwxr-xr-x 0/0');
    assert.equal(ovl.get('etc/runlevels/boot/cgroups'), 'lrwxrwxrwx 0/0 -> /etc/init.d/cgroups');
    assert.equal(ovl.get('etc/runlevels/default/pi-prep-first-boot'), 'lrwxrwxrwx 0/0 -> /etc/init.d/pi-prep-first-boot');
    for (const f of ['etc/fstab', 'etc/lbu/lbu.conf', 'etc/apk/world', 'etc/apk/repositories', 'etc/network/interfaces', 'etc/rc.conf']) assert.ok(ovl.has(f), `${f} missing from the apkovl`);
    const ovlDir = mkdtempSync(join(work, 'ovl-'));
    execFileSync('tar', ['-xzf', '-', '-C', ovlDir], { input: bootFile(img, BOOT.offset, 'pi-w1.apkovl.tar.gz') });
    assert.equal(readFileSync(join(ovlDir, 'etc/hostname'), 'utf8'), 'pi-w1\n');
    assert.match(readFileSync(join(ovlDir, 'etc/fstab'), 'utf8'), /^LABEL=k0s-data\t\/media\/k0s-data\text4\tdefaults,noatime\t0 2\n\/media\/k0s-data\/k0s\t\/var\/lib\/k0s\tnone\tbind\t0 0$/m);
    assert.equal(readFileSync(join(ovlDir, 'etc/apk/protected_paths.d/pi-prep.list'), 'utf8'), '+etc/init.d/k0sworker\n+etc/init.d/pi-prep-media\n+root/.ssh\n+usr/local/bin/k0s\n', 'what lbu must keep beyond /etc');
    assert.match(readFileSync(join(ovlDir, 'etc/lbu/lbu.conf'), 'utf8'), /^LBU_MEDIA=mmcblk0p1$/m);
    assert.match(readFileSync(join(ovlDir, 'etc/rc.conf'), 'utf8'), /rc_cgroup_mode="unified"/);
    assert.match(readFileSync(join(ovlDir, 'root/.ssh/authorized_keys'), 'utf8'), /me@laptop/);
    for (const f of ['etc/init.d/pi-prep-first-boot', 'etc/init.d/pi-prep-media', 'etc/pi-prep/first-boot.sh']) {
      assert.ok(!readFileSync(join(ovlDir, f), 'utf8').includes(token));
      execFileSync('sh', ['-n', join(ovlDir, f)]);
    }

    // Data partition: k0s for arm64 as published, the token 0600 root-owned in a 0700 directory.
    const dir = debugfs(img, DATA_OFFSET, 'stat /pi-prep');
    assert.match(dir, /Mode:\s+0700/);
    const tok = debugfs(img, DATA_OFFSET, 'stat /pi-prep/join.token');
    assert.match(tok, /Mode:\s+0600/);
    assert.match(tok, /User:\s+0\s+Group:\s+0/);
    assert.equal(debugfs(img, DATA_OFFSET, 'cat /pi-prep/join.token').trim(), token);
    assert.equal(debugfs(img, DATA_OFFSET, 'cat /pi-prep/k0s'), assets.arm64);
    assert.match(debugfs(img, DATA_OFFSET, 'stat /pi-prep/k0s'), /Mode:\s+0755/);
    assert.match(debugfs(img, DATA_OFFSET, 'stat /k0s'), /Type: directory/, 'k0s/, bound to /var/lib/k0s at boot');
  });

  it('a dry run on an existing card changes no byte; a re-run rewrites it cleanly', async () => {
    const img = join(work, 'card.img');
    const before = sha256(img);
    const dry = await runCli(args(img, '--dry-run', '--hostname', 'pi-w2'), { env: env() });
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(sha256(img), before, 'the dry run changed the image');

    const again = await runCli(args(img, '--hostname', 'pi-w2'), { env: env() });
    assert.equal(again.code, 0, again.stderr + again.stdout);
    const files = bootFiles(img, BOOT.offset);
    assert.ok(files.has('pi-w2.apkovl.tar.gz'));
    assert.ok(!files.has('pi-w1.apkovl.tar.gz'), 'the old overlay survived the rewrite');
    assert.match(fsckVfat(img, BOOT.offset, BOOT.size), /files/);
    assert.match(e2fsck(img, DATA_OFFSET), /k0s-data/);
    assert.equal(partitions(img).length, 2);
  });

  it('without --join: no k0s and no token on the data partition', async () => {
    const img = join(work, 'nojoin.img');
    const r = await runCli(['alpine-sd', img, '--tarball', tarball, '--size', '600M', '--ssh-key', keyFile], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(debugfs(img, DATA_OFFSET, 'ls /pi-prep'), /join\.token|k0s\b/);
    assert.match(e2fsck(img, DATA_OFFSET), /k0s-data/);
  });

  it('names, keys and sizes as people give them: a unique default hostname, the user\'s own keys, GB as on the label', async () => {
    const home = mkdtempSync(join(work, 'home-'));
    const base = (img: string, ...more: string[]) => ['alpine-sd', img, '--tarball', tarball, '--dry-run', ...more];
    // No --ssh-key and no key anywhere: refused with the fix, nothing made.
    const none = await runCli(base(join(work, 'k0.img'), '--size', '600M'), { env: { HOME: home, SSH_AUTH_SOCK: '' } });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no SSH key to put on the card.*--ssh-key ~\/\.ssh\/id_ed25519\.pub.*--no-ssh/);
    // A dangerous target is refused for what it is, before any talk of keys.
    const typo = await runCli(['alpine-sd', '//dev/sdzz', '--tarball', tarball, '--dry-run'], { env: { HOME: home, SSH_AUTH_SOCK: '' } });
    assert.equal(typo.code, 3, typo.stderr);
    // The invoking user's ~/.ssh/*.pub, said which; and no two cards share a default host name.
    mkdirSync(join(home, '.ssh'));
    writeFileSync(join(home, '.ssh/id_ed25519.pub'), readFileSync(keyFile));
    writeFileSync(join(home, '.ssh/id_ed25519'), '-----BEGIN OPENSSH PRIVATE KEY-----\nnot for the card\n-----END OPENSSH PRIVATE KEY-----\n');
    const names = new Set<string>();
    for (const n of [1, 2]) {
      const r = await runCli(base(join(work, `k${n}.img`), '--size', '600M'), { env: { HOME: home, SSH_AUTH_SOCK: '' } });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`root on the Pi accepts 1 key\\(s\\) from ${home}/\\.ssh/id_ed25519\\.pub`));
      const name = /this card is (pi-worker-[0-9a-f]{4})/.exec(r.stderr)?.[1];
      assert.ok(name, r.stderr);
      assert.match(r.stdout, new RegExp(`${name}\\.apkovl\\.tar\\.gz: hostname, DHCP, sshd with 1 key`));
      names.add(name);
    }
    assert.equal(names.size, 2, 'two cards, two host names');
    // A private key given by mistake is refused; a repeatable --ssh-key leaves TARGET alone.
    const priv = await runCli(['alpine-sd', '--ssh-key', join(home, '.ssh/id_ed25519'), join(work, 'k3.img'), '--tarball', tarball, '--dry-run']);
    assert.equal(priv.code, 2);
    assert.match(priv.stderr, /not an OpenSSH public key: give the \.pub file, never the private key/);
    const two = await runCli(['alpine-sd', '--ssh-key', keyFile, '--ssh-key', keyFile, join(work, 'k4.img'), '--tarball', tarball, '--size', '600M', '--dry-run']);
    assert.equal(two.code, 0, two.stderr);
    assert.match(two.stdout, /sshd with 2 key\(s\)/);
    // --no-ssh: said, and no sshd.
    const noSsh = await runCli(base(join(work, 'k5.img'), '--size', '600M', '--no-ssh'));
    assert.equal(noSsh.code, 0, noSsh.stderr);
    assert.match(noSsh.stdout, /no SSH \(--no-ssh\)/);
    // 8GB is 8 x 10^9 bytes, as on the card's label (8GiB would be 8.59 GB).
    const gb = await runCli(base(join(work, 'k6.img'), '--size', '8GB', '--no-ssh', '--json'));
    assert.equal(gb.code, 0, gb.stderr);
    assert.match(gb.stdout, /k6\.img, 8000000000 bytes/);
    assert.ok(!existsSync(join(work, 'k6.img')), 'a dry run');
  });
});
