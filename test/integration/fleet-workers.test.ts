import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { removeRoot } from '../helpers/fixture-root.js';
import { piRoot } from '../helpers/pi-root.js';
import { CLI } from '../helpers/cli.js';
import { watchArgv } from '../helpers/argv-watch.js';
import { TAG, joinWorkspace, type JoinWorkspace } from '../helpers/k0s-release.js';
import { TestSshd, makeClientKey, type ClientKey } from '../helpers/sshd.js';

/**
 * A fleet's --parallel slots are worker processes that run their hosts one after another
 * (src/fleet/worker.ts). A run that kills its worker fails that host only; the next host gets a
 * fresh worker, and `--join -` reaches every run, never through argv.
 */
describe('fleet workers', () => {
  let key: ClientKey;
  let ws: JoinWorkspace;
  let root: string;
  let sshd: TestSshd;
  let silent: Server;
  let silentPort = 0;
  const held: Socket[] = [];

  before(async () => {
    key = makeClientKey();
    ws = await joinWorkspace('workers');
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

  it('a worker killed mid-run fails its host only; the next hosts run in a fresh worker, each reading the token from stdin', async () => {
    const inventory = join(ws.work, 'fleet.yaml');
    writeFileSync(inventory, [
      'defaults: { user: root, hostname: 127.0.0.1 }',
      'hosts:',
      `  hung: { port: ${silentPort} }`,
      `  pi-b: { port: ${sshd.port} }`,
      `  pi-c: { port: ${sshd.port} }`,
      '',
    ].join('\n'));
    const token = readFileSync(ws.tokenFile, 'utf8').trim();
    const watch = watchArgv([token]);
    const child = spawn(process.execPath, [CLI, 'linux', '--dry-run', '--inventory', inventory, '--parallel', '1', ...sshd.cliArgs(), '--join', '-', '--k0s-mirror', ws.server.url, '--k0s-version', TAG], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, XDG_CACHE_HOME: join(ws.work, 'cache') },
    });
    child.stdin.end(token + '\n');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // Hold: the first host's ssh is connected and waiting. Then kill the worker running it.
    while (held.length === 0) await new Promise((r) => setTimeout(r, 20));
    const workers = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    assert.equal(workers.length, 1, 'one worker for --parallel 1');
    process.kill(workers[0]!, 'SIGKILL');
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    const argv = await watch.stop();
    assert.ok(argv.sawSsh && argv.scans > 0, 'the watcher saw the runs');
    assert.deepEqual(argv.leaks, [], 'no process (parent, workers, ssh) had the token in its argv');

    assert.equal(code, 1, stdout + stderr);
    const table = stdout.slice(stdout.indexOf('HOST'));
    assert.match(table, /^hung\s+FAILED\s+[\d.]+s\s+killed by SIGKILL$/m);
    assert.match(table, /^pi-b\s+ok\s+[\d.]+s\s+\d+ done, \d+ would run\. Nothing was changed\.$/m);
    assert.match(table, /^pi-c\s+ok\s+/m);
    // Both later runs read the token (its server is in their plans) from the worker's input.
    for (const h of ['pi-b', 'pi-c']) assert.match(stdout, new RegExp(`^${h} \\| .*write the token for https://`, 'm'));
    assert.ok(!(stdout + stderr).includes(token), 'the token is never shown');
  });
});
