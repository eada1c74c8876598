import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { RefusedError } from '../../src/core/errors.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRoot, osRelease, removeRoot, standInCalls, STANDIN_LOG } from '../helpers/fixture-root.js';
import { watchArgv } from '../helpers/argv-watch.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { treeHash } from '../helpers/tree-hash.js';
import { TAG, joinWorkspace, kernelConfig, type JoinWorkspace } from '../helpers/k0s-release.js';
import { TestSshd, chrootable, ensureUser, freePort, makeClientKey, type ClientKey } from '../helpers/sshd.js';
import { TestHttpServer } from '../helpers/http-server.js';
import { CLI } from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import { spawn } from 'node:child_process';
import { SshConnection } from '../../src/targets/ssh-connection.js';
import { SshTarget } from '../../src/targets/ssh-target.js';
import { jsonData } from '../helpers/json-contract.js';

const RELEASE = '6.6.51-v8+';

/** A Raspberry Pi 4 on Raspberry Pi OS, as a root directory (arm64 busybox under qemu). */
function piRoot(kconfig = kernelConfig()): string {
  return buildRoot({
    arch: 'arm64',
    init: 'systemd',
    files: {
      '/etc/os-release': osRelease('debian', '12', 'Debian GNU/Linux 12 (bookworm)', 'VERSION_CODENAME=bookworm\n'),
      '/proc/sys/kernel/osrelease': `${RELEASE}\n`,
      [`/boot/config-${RELEASE}`]: kconfig,
      '/proc/device-tree/model': 'Raspberry Pi 4 Model B Rev 1.4\0',
      '/proc/device-tree/compatible': 'raspberrypi,4-model-b\0brcm,bcm2711\0',
      '/boot/firmware/cmdline.txt': 'console=serial0,115200 console=tty1 root=PARTUUID=abcd-02 rootfstype=ext4 fsck.repair=yes rootwait cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n',
      '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n',
      '/proc/meminfo': 'MemTotal:        3884376 kB\n',
    },
  });
}


/** stderr without the command's progress note ("joining ... as a worker"): the error itself. */
const errorLines = (r: CliResult) => r.stderr.split('\n').filter((l) => l && !/^pi-prep: joining /.test(l));

const checkItems = (r: CliResult) => {
  const j = jsonData<{ target: string; items: { id: string; status: string; detail: string }[] }>(r.stdout, 'check');
  // Free space moves between two runs; everything else must be the same.
  return j.items.map((i) => (i.id === 'disk' ? { ...i, detail: '' } : i));
};

describe('pi-prep over SSH (a real sshd on 127.0.0.1)', () => {
  let key: ClientKey;
  let pi: TestSshd; // root logins land in a chroot: the arm64 "Pi"
  let plain: TestSshd; // non-root users on this machine, with and without passwordless sudo
  let server: TestHttpServer;
  let work: string;
  let tokenFile: string;
  let ws: JoinWorkspace;
  const roots: string[] = [];
  const cleanups: (() => void)[] = [];

  before(async () => {
    key = makeClientKey();
    ws = await joinWorkspace('ssh-test');
    ({ server, work, tokenFile } = ws);
    cleanups.push(ensureUser('pi-prep-sudo', 'nopasswd'), ensureUser('pi-prep-pw', 'password'));
    plain = await new TestSshd(key).start();
  });
  after(async () => {
    await pi?.stop();
    await plain?.stop();
    await ws.stop();
    cleanups.forEach((c) => c());
    roots.forEach(removeRoot);
    rmSync(key.dir, { recursive: true, force: true });
  });

  /** A fresh Pi root behind a fresh sshd whose root login is chrooted into it. */
  async function piOverSsh(kconfig?: string): Promise<{ root: string; sshd: TestSshd }> {
    const root = chrootable(() => piRoot(kconfig));
    roots.push(root);
    await pi?.stop();
    pi = await new TestSshd(key, ['Match User root', `  ChrootDirectory ${root}`]).start();
    return { root, sshd: pi };
  }

  const joinArgs = () => ['--join', `@${tokenFile}`, '--k0s-mirror', server.url, '--k0s-version', TAG];
  const env = () => ({ XDG_CACHE_HOME: mkdtempSync(join(work, 'cache-')) });

  it('SIGTERM during a --host run: exit 143, and neither the ssh master nor its socket directory stays', async () => {
    const { sshd } = await piOverSsh();
    // A mirror whose k0s download stalls: the run is held there, the ssh master up.
    const stall = await new TestHttpServer().start();
    const name = `k0s-${TAG}-arm64`;
    stall.routes.set(`/${TAG}/sha256sums.txt`, { body: `${'a'.repeat(64)} *${name}\n` });
    stall.routes.set(`/${TAG}/${name}`, { body: Buffer.alloc(1024 * 1024), stallAfter: 64 * 1024 });
    const tmp = mkdtempSync('/tmp/pp-'); // short: ssh's ControlPath must fit a Unix socket name
    const cache = mkdtempSync(join(work, 'cache-'));
    try {
      const child = spawn(process.execPath, [CLI, 'linux', '--host', sshd.host('root'), ...sshd.cliArgs(), '--join', `@${tokenFile}`, '--k0s-mirror', stall.url, '--k0s-version', TAG], {
        env: { ...process.env, TMPDIR: tmp, XDG_CACHE_HOME: cache }, stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      const k0sCache = join(cache, 'pi-prep', 'k0s');
      await until(() => existsSync(k0sCache) && readdirSync(k0sCache).some((n) => n.endsWith('.part')) && readdirSync(tmp).some((n) => n.startsWith('pi-prep-ssh-')), exited)
        .catch((err: Error) => assert.fail(`${err.message}: ${stderr}`));
      const masters = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(tmp);
        } catch {
          return false;
        }
      });
      assert.ok(masters().length > 0, 'an ssh master runs while the run is held');
      child.kill('SIGTERM');
      assert.equal(await exited, 143, stderr);
      assert.match(stderr, /pi-prep: stopped by SIGTERM: temporary files removed; run the same command again to finish\n$/);
      assert.deepEqual(readdirSync(tmp), [], 'no socket directory');
      assert.deepEqual(masters(), [], 'no ssh master');
      assert.deepEqual(readdirSync(k0sCache).filter((n) => n.endsWith('.part')), []);
    } finally {
      await stall.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('a peer that freezes mid-run ends the run (ssh keepalives) instead of hanging it', { timeout: 120_000 }, async () => {
    const { sshd } = await piOverSsh();
    const { k0sReleaseServer } = await import('../helpers/k0s-release.js');
    const { server: rel } = await k0sReleaseServer();
    let open!: () => void;
    const asset = `/${TAG}/k0s-${TAG}-arm64`;
    rel.routes.set(asset, { ...rel.routes.get(asset)!, gate: new Promise<void>((r) => (open = r)) });
    let thaw = () => undefined as void;
    try {
      // Short keepalives through --ssh-option (the user's values win over pi-prep's 15 s x 3).
      const child = spawn(process.execPath, [CLI, 'linux', '--host', sshd.host('root'), ...sshd.cliArgs(), '--ssh-option', 'ServerAliveInterval=1', '--ssh-option', 'ServerAliveCountMax=2',
        '--join', `@${tokenFile}`, '--k0s-mirror', rel.url, '--k0s-version', TAG], { env: { ...process.env, ...env() }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      // Held at the k0s download, the ssh master up; then the Pi stops answering, then the download ends.
      await until(() => rel.requests.includes(asset), exited);
      thaw = sshd.freeze();
      open();
      assert.equal(await exited, 1, stderr);
      assert.match(errorLines({ code: 1, stdout: '', stderr }).join('\n'), /^pi-prep: .*root@127\.0\.0\.1:\d+/);
      assert.equal(errorLines({ code: 1, stdout: '', stderr }).length, 1, stderr);
      // pi-prep's own keepalives are on every ssh it runs, after the user's (ssh takes the first value).
      const argv = new SshConnection({ host: '127.0.0.1', port: sshd.port, user: 'root', options: ['ServerAliveInterval=1'] }).sshArgs();
      assert.ok(argv.indexOf('ServerAliveInterval=1') < argv.indexOf('ServerAliveInterval=15'), argv.join(' '));
      assert.ok(argv.includes('ServerAliveCountMax=3'), argv.join(' '));
    } finally {
      thaw();
      await rel.stop();
    }
  });

  it('check over SSH reports what check --root reports for the same Pi', async () => {
    const { root, sshd } = await piOverSsh();
    const local = await runCli(['check', '--root', root, '--json']);
    const remote = await runCli(['check', '--host', sshd.host('root'), ...sshd.cliArgs(), '--json']);
    assert.equal(remote.code, local.code, remote.stderr);
    assert.equal(remote.code, 0, remote.stdout);
    assert.deepEqual(checkItems(remote), checkItems(local));
    const j = jsonData<Record<string, string>>(remote.stdout, 'check');
    assert.equal(j.target, sshd.host('root'));
    assert.equal(j.arch, 'aarch64');
    assert.equal(j.board, 'Raspberry Pi 4 Model B Rev 1.4');
    const text = await runCli(['check', '--host', sshd.host('root'), ...sshd.cliArgs()]);
    assert.match(text.stdout, /^root@127\.0\.0\.1:\d+: Debian GNU\/Linux 12 \(bookworm\), aarch64, Raspberry Pi 4/);
  });

  it('linux over SSH does what linux --root does, the token never in argv or sshd logs, and a second run changes nothing', async () => {
    const localRoot = piRoot();
    chmodSync(localRoot, 0o755); // as chrootable() leaves a root for sshd
    roots.push(localRoot);
    const local = await runCli(['linux', '--root', localRoot, ...joinArgs()], { env: env() });
    assert.equal(local.code, 0, local.stderr);

    const { root, sshd } = await piOverSsh();
    const token = readFileSync(tokenFile, 'utf8').trim();
    const watch = watchArgv([token, '0123456789abcdef']);
    const remote = await runCli(['linux', '--host', sshd.host('root'), ...sshd.cliArgs(), ...joinArgs()], { env: env() });
    const seen = await watch.stop();
    assert.equal(remote.code, 0, remote.stderr);
    assert.ok(seen.scans > 5 && seen.sawSsh, `the watcher saw ssh processes (${seen.scans} scans)`);
    assert.deepEqual(seen.leaks, [], 'no process had the token in its argv');
    assert.ok(!sshd.log().includes(token) && !sshd.log().includes('0123456789abcdef'), 'sshd DEBUG3 log holds no token');
    assert.match(sshd.log(), /debug3/, 'the log is at DEBUG3');
    assert.ok(!remote.stdout.includes(token) && !remote.stderr.includes(token));

    // A live host is polled with `k0s status` until k0s runs; a root directory cannot run it.
    const calls = (r: string) => standInCalls(r).filter((c) => c[1] !== 'status');
    assert.deepEqual(calls(root), calls(localRoot), 'same k0s calls');
    assert.equal(treeHash(root, [STANDIN_LOG, '/root', '/bin/bash', '/dev/null']), treeHash(localRoot, [STANDIN_LOG]), 'same files, modes, owners');
    const tok = statSync(join(root, 'etc/k0s/k0stoken'));
    assert.equal(tok.mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(root, 'etc/k0s')), ['k0stoken'], 'no temp file left');

    const before2 = treeHash(root, [STANDIN_LOG]);
    const again = await runCli(['linux', '--host', sshd.host('root'), ...sshd.cliArgs(), ...joinArgs()], { env: env() });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already done, 0 changed/);
    assert.equal(treeHash(root, [STANDIN_LOG]), before2);
  });

  it('dry run over SSH prints the plan and changes nothing', async () => {
    const { root, sshd } = await piOverSsh();
    const before = treeHash(root);
    const res = await runCli(['linux', '--dry-run', '--host', sshd.host('root'), ...sshd.cliArgs(), ...joinArgs()], { env: env() });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /write \/etc\/k0s\/k0stoken \(contents redacted, mode 0600\)/);
    assert.match(res.stdout, /run `\/usr\/local\/bin\/k0s install worker --token-file \/etc\/k0s\/k0stoken`/);
    assert.equal(treeHash(root), before);
  });

  it('a non-root login uses sudo -n: check matches a local check, and files are written as root, atomically', async () => {
    const remote = await runCli(['check', '--host', plain.host('pi-prep-sudo'), ...plain.cliArgs(), '--json']);
    const local = await runCli(['check', '--json']);
    assert.equal(remote.code, local.code, remote.stderr);
    assert.deepEqual(checkItems(remote), checkItems(local));

    const dir = mkdtempSync(join(tmpdir(), 'pi-prep-sudo-'));
    const t = new SshTarget({ host: '127.0.0.1', port: plain.port, user: 'pi-prep-sudo', options: plain.sshOptions() });
    try {
      await t.mkdir(`${dir}/etc/k0s`, 0o700);
      await t.writeFile(`${dir}/etc/k0s/k0stoken`, 'secret\n', { mode: 0o600, secret: true });
      const st = statSync(`${dir}/etc/k0s/k0stoken`);
      assert.equal(st.uid, 0, 'written through sudo as root');
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal(statSync(`${dir}/etc/k0s`).mode & 0o777, 0o700);
      assert.equal((await t.readFile(`${dir}/etc/k0s/k0stoken`))?.toString(), 'secret\n');
      assert.equal((await t.stat(`${dir}/etc/k0s/k0stoken`))?.mode, 0o600);
      assert.equal(await t.readFile(`${dir}/nope`), undefined);
      assert.equal(await t.stat(`${dir}/nope`), undefined);

      writeFileSync(`${dir}/cmdline.txt`, 'old\n', { mode: 0o644 });
      await t.writeFile(`${dir}/cmdline.txt`, 'new\n', { backup: true });
      await t.writeFile(`${dir}/cmdline.txt`, 'newer\n', { backup: true });
      assert.equal(readFileSync(`${dir}/cmdline.txt`, 'utf8'), 'newer\n');
      assert.equal(readFileSync(`${dir}/cmdline.txt.pi-prep.bak`, 'utf8'), 'old\n', 'the first version is kept');
      assert.equal(statSync(`${dir}/cmdline.txt`).mode & 0o777, 0o644, 'mode kept');
      assert.deepEqual(await t.readDir(dir), ['cmdline.txt', 'cmdline.txt.pi-prep.bak', 'etc'], 'no temp files left');

      // What kill -9 leaves beside a file (one may hold a token copy): swept by the next write of it.
      const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
      writeFileSync(`${dir}/etc/k0s/.k0stoken.pi-prep-${pidMax + 1}.tmp`, 'a token copy');
      writeFileSync(`${dir}/etc/k0s/.k0stoken.pi-prep-bak-${pidMax + 1}.tmp`, 'a token copy');
      writeFileSync(`${dir}/etc/k0s/.k0stoken.pi-prep-${process.pid}.tmp`, 'a live run\'s');
      await t.writeFile(`${dir}/etc/k0s/k0stoken`, 'secret\n', { mode: 0o600, secret: true });
      assert.deepEqual(readdirSync(`${dir}/etc/k0s`).sort(), [`.k0stoken.pi-prep-${process.pid}.tmp`, 'k0stoken']);
      // A planted backup link would stand in for the backup: refused, nothing written.
      writeFileSync(`${dir}/config.txt`, 'old\n');
      symlinkSync('/dev/null', `${dir}/config.txt.pi-prep.bak`);
      await assert.rejects(t.writeFile(`${dir}/config.txt`, 'new\n', { backup: true }), (err: Error) =>
        err instanceof RefusedError && err.message === `${dir}/config.txt.pi-prep.bak on ${t.label} is a symlink or not a plain file, not pi-prep's backup: remove it, then run again`);
      assert.equal(readFileSync(`${dir}/config.txt`, 'utf8'), 'old\n');
      const bin = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      writeFileSync(join(work, 'blob'), bin);
      await t.putFile(join(work, 'blob'), `${dir}/blob`, { mode: 0o755 });
      assert.deepEqual(readFileSync(`${dir}/blob`), bin, 'binary contents survive');
      assert.equal(await t.sha256(`${dir}/blob`), (await import('node:crypto')).createHash('sha256').update(bin).digest('hex'));
      const odd = `${dir}/it's a "file" $(touch ${dir}/pwned)`;
      await t.writeFile(odd, 'x');
      assert.equal(readFileSync(odd, 'utf8'), 'x', 'odd names are quoted, not run');
      assert.ok(!existsSync(`${dir}/pwned`));
      await t.remove(`${dir}/etc`);
      assert.ok(!existsSync(`${dir}/etc`));
      const r = await t.run(['sh', '-c', 'echo "$0 $1"; id -u', 'a b', "c'd"]);
      assert.equal(r.stdout, "a b c'd\n0\n");
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('connection problems: one line, nothing changed', () => {
    // A failed connect leaves no master connection and no socket directory behind.
    const socketDirs = () => readdirSync(tmpdir()).filter((d) => d.startsWith('pi-prep-ssh-')).sort();
    let dirsBefore: string[] = [];
    before(() => {
      dirsBefore = socketDirs();
    });
    after(() => {
      assert.deepEqual(socketDirs(), dirsBefore, 'no socket directory left behind');
    });

    it('sudo that wants a password', async () => {
      const res = await runCli(['linux', '--host', plain.host('pi-prep-pw'), ...plain.cliArgs(), ...joinArgs()], { env: env() });
      assert.equal(res.code, 1);
      assert.equal(errorLines(res).length, 1, res.stderr);
      assert.match(errorLines(res)[0]!, /^pi-prep: sudo on pi-prep-pw@127\.0\.0\.1:\d+ wants a password for pi-prep-pw.*NOPASSWD/);
      assert.ok(!existsSync('/etc/k0s/k0stoken') && !existsSync('/usr/local/bin/k0s'), 'nothing installed on this machine');
    });

    it('a host key that does not match known_hosts', async () => {
      const { root, sshd } = await piOverSsh();
      sshd.trustWrongKey();
      const before = treeHash(root);
      const res = await runCli(['linux', '--host', sshd.host('root'), ...sshd.cliArgs(), ...joinArgs()], { env: env() });
      assert.equal(res.code, 3, res.stderr);
      assert.equal(errorLines(res).length, 1, res.stderr);
      assert.match(errorLines(res)[0]!, /^pi-prep: the host key of root@127\.0\.0\.1:\d+ does not match known_hosts.*ssh-keygen -R/);
      assert.equal(treeHash(root), before);
      assert.deepEqual(standInCalls(root), []);
    });

    it('a host key that is not known at all', async () => {
      const { sshd } = await piOverSsh();
      writeFileSync(sshd.knownHosts, '');
      const res = await runCli(['check', '--host', sshd.host('root'), ...sshd.cliArgs()]);
      assert.equal(res.code, 3, res.stderr);
      assert.match(res.stderr, /^pi-prep: the host key of .* is not in known_hosts: .*StrictHostKeyChecking=accept-new\n$/);
    });

    it('a refused connection', async () => {
      const port = await freePort();
      const res = await runCli(['linux', '--host', `root@127.0.0.1:${port}`, ...plain.cliArgs(), ...joinArgs()], { env: env() });
      assert.equal(res.code, 1);
      assert.deepEqual(errorLines(res).join('\n'), `pi-prep: cannot connect to root@127.0.0.1:${port}: connection refused; is sshd running there and is the port right?`);
    });

    it('bad --host and --ssh-option values are usage errors', async () => {
      for (const [args, pattern] of [
        [['--host', '-oProxyCommand=x'], /--host -oProxyCommand=x: "-oProxyCommand=x" is not a host name/],
        [['--host', 'pi:99999'], /"99999" is not a port/],
        [['--host', 'pi', '--ssh-option', '-F/dev/null'], /--ssh-option -F\/dev\/null: expected KEY=VALUE/],
        [['--host', 'pi', '--root', '/tmp'], /--root and --host name different machines/],
      ] as const) {
        const res = await runCli(['check', ...args]);
        assert.equal(res.code, 2, res.stderr);
        assert.match(res.stderr, pattern);
      }
    });
  });
});
