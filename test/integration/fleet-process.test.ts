import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { removeRoot } from '../helpers/fixture-root.js';
import { piRoot } from '../helpers/pi-root.js';
import { CLI } from '../helpers/cli.js';
import { watchArgv } from '../helpers/argv-watch.js';
import { TestHttpServer } from '../helpers/http-server.js';
import { TAG, joinWorkspace, type JoinWorkspace } from '../helpers/k0s-release.js';
import { TestSshd, makeClientKey, type ClientKey } from '../helpers/sshd.js';
import { until } from '../helpers/until.js';

/** pi-prep's child processes with their command names. */
function children(pid: number): { pid: number; comm: string; cmdline: string }[] {
  const ids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return ids.map((c) => ({ pid: c, comm: readFileSync(`/proc/${c}/comm`, 'utf8').trim(), cmdline: readFileSync(`/proc/${c}/cmdline`, 'utf8') }));
}

/** Processes whose argv mentions `text` (ssh clients and masters using a socket directory under it). */
function processesWith(text: string): string[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text);
    } catch {
      return false;
    }
  });
}

/**
 * A fleet runs every host in the pi-prep process itself (src/fleet/run-host.ts): no process per
 * host or per slot, only the hosts' ssh clients. A host whose ssh dies fails that host only,
 * `--join -` reaches every run but never an argv, and Ctrl-C closes every host's ssh master.
 */
describe('a fleet in one process', () => {
  let key: ClientKey;
  let ws: JoinWorkspace;
  let root: string;
  let sshd: TestSshd;
  let silent: Server;
  let silentPort = 0;
  const held: Socket[] = [];

  before(async () => {
    key = makeClientKey();
    ws = await joinWorkspace('fleet-process');
    root = piRoot(false);
    sshd = await new TestSshd(key, ['Match User root', `  ChrootDirectory ${root}`]).start();
    // A "host" that accepts the TCP connection and never says a word: ssh waits for its banner.
    silent = createServer((s) => held.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    silentPort = (silent.address() as { port: number }).port;
  });
  after(async () => {
    held.forEach((s) => s.destroy());
    await new Promise((r) => silent.close(r));
    await sshd.stop();
    removeRoot(root);
    await ws.stop();
    rmSync(key.dir, { recursive: true, force: true });
  });

  const inventory = (hosts: string[]) => {
    const file = join(ws.work, `fleet-${hosts.join('-')}.yaml`);
    writeFileSync(file, ['defaults: { user: root, hostname: 127.0.0.1 }', 'hosts:', ...hosts.map((h) => `  ${h}: { port: ${h === 'hung' ? silentPort : sshd.port} }`), ''].join('\n'));
    return file;
  };

  it("a host whose ssh is killed mid-run fails only itself; the next hosts run in the same process, each reading the token from stdin", async () => {
    const token = readFileSync(ws.tokenFile, 'utf8').trim();
    const watch = watchArgv([token]);
    const heldBefore = held.length;
    const child = spawn(process.execPath, [CLI, 'linux', '--dry-run', '--inventory', inventory(['hung', 'pi-b', 'pi-c']), '--parallel', '1', ...sshd.cliArgs(), '--join', '-', '--k0s-mirror', ws.server.url, '--k0s-version', TAG], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, XDG_CACHE_HOME: join(ws.work, 'cache') },
    });
    child.stdin.end(token + '\n');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    // Hold: the first host's ssh is connected and waiting for a banner. Then kill that ssh.
    await until(() => held.length > heldBefore, exited);
    const kids = children(child.pid!);
    assert.deepEqual(kids.map((k) => k.comm), ['ssh'], 'no worker process: the only child is the held host\'s ssh');
    assert.ok(kids[0]!.cmdline.includes(`\0${silentPort}\0`), kids[0]!.cmdline);
    process.kill(kids[0]!.pid, 'SIGKILL');
    const code = await exited;
    const argv = await watch.stop();
    assert.ok(argv.sawSsh && argv.scans > 0, 'the watcher saw the runs');
    assert.deepEqual(argv.leaks, [], 'no process (pi-prep, ssh) had the token in its argv');

    assert.equal(code, 1, stdout + stderr);
    const table = stdout.slice(stdout.indexOf('HOST'));
    assert.match(table, new RegExp(`^hung\\s+FAILED\\s+[\\d.]+s\\s+ssh to root@127\\.0\\.0\\.1:${silentPort} failed: ssh was killed by SIGKILL$`, 'm'));
    assert.match(table, /^pi-b\s+ok\s+[\d.]+s\s+\d+ done, \d+ would run\. Nothing was changed\.$/m);
    assert.match(table, /^pi-c\s+ok\s+/m);
    // Both later runs read the token (its server is in their plans).
    for (const h of ['pi-b', 'pi-c']) assert.match(stdout, new RegExp(`^${h} \\| .*write the token for https://`, 'm'));
    assert.ok(!(stdout + stderr).includes(token), 'the token is never shown');
  });

  it('SIGINT mid-fleet: exit 130, one line, and no host keeps an ssh master, a socket directory or a partial download', async () => {
    // pi-a is held at its k0s download (its ssh master up), hung at its connection.
    const stall = await new TestHttpServer().start();
    for (const arch of ['arm64', 'amd64']) {
      const name = `k0s-${TAG}-${arch}`;
      stall.routes.set(`/${TAG}/sha256sums.txt`, { body: ['arm64', 'amd64'].map((a) => `${'a'.repeat(64)} *k0s-${TAG}-${a}\n`).join('') });
      stall.routes.set(`/${TAG}/${name}`, { body: Buffer.alloc(1024 * 1024), stallAfter: 64 * 1024 });
    }
    const tmp = mkdtempSync('/tmp/pp-'); // short: ssh's ControlPath must fit a Unix socket name
    const cache = mkdtempSync(join(ws.work, 'cache-'));
    const heldBefore = held.length;
    try {
      const child = spawn(process.execPath, [CLI, 'linux', '--inventory', inventory(['pi-a', 'hung']), '--parallel', '2', ...sshd.cliArgs(), '--join', `@${ws.tokenFile}`, '--k0s-mirror', stall.url, '--k0s-version', TAG], {
        env: { ...process.env, TMPDIR: tmp, XDG_CACHE_HOME: cache }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      const k0sCache = join(cache, 'pi-prep', 'k0s');
      await until(() => held.length > heldBefore && existsSync(k0sCache) && readdirSync(k0sCache).some((n) => n.endsWith('.part')) && readdirSync(tmp).some((n) => n.startsWith('pi-prep-ssh-')), exited)
        .catch((err: Error) => assert.fail(`${err.message}: ${out}`));
      assert.ok(processesWith(tmp).length > 0, "pi-a's ssh master runs while the fleet is held");
      child.kill('SIGINT');
      assert.equal(await exited, 130, out);
      assert.match(out, /pi-prep: stopped by SIGINT: temporary files removed; run the same command again to finish\n$/);
      assert.equal(out.match(/stopped by SIGINT/g)?.length, 1, out);
      assert.deepEqual(readdirSync(tmp), [], 'no socket directory');
      assert.deepEqual(processesWith(tmp), [], 'no ssh master');
      assert.deepEqual(processesWith(`\0${silentPort}\0`), [], "no ssh client of the held host");
      assert.deepEqual(readdirSync(k0sCache).filter((n) => n.endsWith('.part')), []);
    } finally {
      await stall.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
