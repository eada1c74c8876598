import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildRoot, osRelease, removeRoot } from '../helpers/fixture-root.js';
import { CLI, runCli } from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import { k0sStandIn } from '../helpers/k0s-standin.js';
import { TAG, joinWorkspace, kernelConfig, type JoinWorkspace } from '../helpers/k0s-release.js';
import { LocalTarget } from '../../src/targets/local-target.js';
import { SshTarget } from '../../src/targets/ssh-target.js';
import { TestSshd, makeClientKey } from '../helpers/sshd.js';
import { CommandError } from '../../src/core/errors.js';

const RELEASE = '6.1.0-test';

/** Gone, or a zombie nobody reaped yet (a container's pid 1 may not): either way not running. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * A command on the node that never returns and never prints: k0s's `install` stand-in starts a
 * shell that sleeps forever and waits for it, the shape of a hung init script. Both write their
 * pid so the test can see that nothing is left behind.
 */
function hungInstall(dir: string): string {
  const path = join(dir, 'k0s-hung-install');
  const script = k0sStandIn(TAG).replace(/  install\)[\s\S]*?fi ;;\n/, () => `  install) echo $$ > /run/hung.pids; sh -c 'echo $$ >> /run/hung.pids; exec sleep 2147483647' ;;\n`);
  assert.notEqual(script, k0sStandIn(TAG), 'the install branch was replaced');
  writeFileSync(path, script, { mode: 0o755 });
  return path;
}

describe('every command on the node has a bound: a hung one is stopped with what it started', () => {
  let ws: JoinWorkspace;
  const roots: string[] = [];
  before(async () => {
    ws = await joinWorkspace('cmd-timeout');
  });
  after(async () => {
    await ws.stop();
    roots.forEach(removeRoot);
  });

  function workerRoot(): string {
    const root = buildRoot({
      arch: 'amd64',
      init: 'systemd',
      files: {
        '/etc/os-release': osRelease('ubuntu', '24.04', 'Ubuntu 24.04 LTS', 'ID_LIKE=debian\n'),
        '/proc/sys/kernel/osrelease': `${RELEASE}\n`,
        [`/boot/config-${RELEASE}`]: kernelConfig(),
        '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n',
        '/proc/meminfo': 'MemTotal:        3884376 kB\n',
      },
    });
    roots.push(root);
    return root;
  }
  const args = (root: string, k0s: string) => ['linux', '--root', root, '--join', `@${ws.tokenFile}`, '--k0s-binary', k0s];
  const pids = (root: string) => {
    const p = readFileSync(join(root, 'run/hung.pids'), 'utf8').trim().split(/\s+/).map(Number);
    assert.ok(p.length === 2 && p.every((n) => Number.isInteger(n) && n > 0), `two pids: ${p}`);
    return p;
  };

  it('a silent command is stopped after the idle bound: exit 1, one line, no process left', async () => {
    const root = workerRoot();
    const r = await runCli(args(root, hungInstall(ws.work)), {
      env: { XDG_CACHE_HOME: mkdtempSync(join(ws.work, 'cache-')), PI_PREP_COMMAND_IDLE_TIMEOUT: '1' },
    });
    assert.equal(r.code, 1, r.stderr + r.stdout);
    const line = 'pi-prep: `/usr/local/bin/k0s install worker --token-file /etc/k0s/k0stoken` printed nothing for 1 s and was stopped (hung): check that the machine and its network answer, then run again';
    assert.equal(r.stderr.trimEnd().split('\n').at(-1), line, 'the run ends with the one line');
    assert.equal((r.stdout + r.stderr).split('printed nothing').length, 2, 'said once');
    const [shell, sleeper] = pids(root);
    assert.equal(running(shell!), false, 'the command is gone');
    assert.equal(running(sleeper!), false, 'what it started is gone too');
  });

  it('SIGTERM while a command runs: exit 143 and the command and its children are stopped', async () => {
    const root = workerRoot();
    const child = spawn(process.execPath, [CLI, ...args(root, hungInstall(ws.work))], {
      env: { ...process.env, XDG_CACHE_HOME: mkdtempSync(join(ws.work, 'cache-')) }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.resume();
    const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    // Held inside the hung command (its pids written), then the world changes: a signal.
    await until(() => existsSync(join(root, 'run/hung.pids')) && readFileSync(join(root, 'run/hung.pids'), 'utf8').split('\n').length === 3, exited);
    child.kill('SIGTERM');
    assert.equal(await exited, 143, stderr);
    const [shell, sleeper] = pids(root);
    assert.equal(running(shell!), false, 'the command is gone');
    assert.equal(running(sleeper!), false, 'what it started is gone too');
  });

  it('a total bound stops a command that keeps talking; under allowFailure it is exit 124, not a throw', async () => {
    const t = new LocalTarget();
    const chatty = ['sh', '-c', 'while :; do echo tick; sleep 0.05; done'];
    await assert.rejects(t.run(chatty, { timeoutMs: 200, idleTimeoutMs: 600_000 }), (err: unknown) => {
      assert.ok(err instanceof CommandError);
      assert.equal(err.message, "`sh -c while :; do echo tick; sleep 0.05; done` did not finish within 200 ms and was stopped: check that the machine and its network answer, then run again");
      return true;
    });
    const r = await t.run(chatty, { timeoutMs: 200, idleTimeoutMs: 600_000, allowFailure: true });
    assert.equal(r.exitCode, 124);
    assert.match(r.timedOut ?? '', /did not finish within 200 ms/);
  });

  it('over SSH the same bound stops the ssh client: one-line error (the silent command on the node is left to the node)', async () => {
    const sshd = await new TestSshd(makeClientKey()).start();
    const t = new SshTarget({ host: '127.0.0.1', port: sshd.port, user: 'root', options: sshd.sshOptions() });
    const pidFile = join(ws.work, 'remote.pid');
    try {
      await assert.rejects(t.run(['sh', '-c', `echo $$ > ${pidFile}; exec sleep 2147483647`], { idleTimeoutMs: 1000 }), (err: unknown) => {
        assert.ok(err instanceof CommandError);
        assert.equal(err.message, `\`sh -c echo $$ > ${pidFile}; exec sleep 2147483647\` printed nothing for 1 s and was stopped (hung): check that the machine and its network answer, then run again`);
        return true;
      });
    } finally {
      // What docs/safety.md says: no terminal is allocated, so the node's side may keep running.
      if (existsSync(pidFile)) try { process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL'); } catch { /* already gone */ }
      await t.close();
      await sshd.stop();
    }
  });
});
