import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRoot, osRelease, recordingScript, removeRoot, standInCalls } from '../helpers/fixture-root.js';
import { watchArgv } from '../helpers/argv-watch.js';
import { runCli } from '../helpers/cli.js';
import { jsonData, parseEnvelope } from '../helpers/json-contract.js';
import { sampleWorkerToken } from '../helpers/k0s-release.js';
import { TestSshd, chrootable, makeClientKey, type ClientKey } from '../helpers/sshd.js';

const ADMIN_CONF = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Y2EtZGF0YQ==
    server: https://localhost:6443
  name: local
contexts:
- context:
    cluster: local
    namespace: default
    user: user
  name: Default
current-context: Default
kind: Config
users:
- name: user
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5LWRhdGEtdGhhdC1pcy1zZWNyZXQ=
`;

describe('controller helpers over SSH: pi-prep token and pi-prep kubeconfig', () => {
  let key: ClientKey;
  let root: string;
  let sshd: TestSshd;
  let work: string;
  let token: string;

  before(async () => {
    key = makeClientKey();
    token = await sampleWorkerToken();
    // The controller (Ubuntu, amd64): k0s stands in, records argv and prints a token.
    root = chrootable(() =>
      buildRoot({
        arch: 'amd64',
        init: 'systemd',
        files: { '/etc/os-release': osRelease('ubuntu', '24.04', 'Ubuntu 24.04 LTS'), '/var/lib/k0s/pki/admin.conf': ADMIN_CONF },
        standIns: {
          '/usr/local/bin/k0s': recordingScript(`[ "$1 $2" = "token create" ] && printf '%s\\n' '${token}'`),
        },
      }),
    );
    sshd = await new TestSshd(key, ['Match User root', `  ChrootDirectory ${root}`]).start();
    work = mkdtempSync(join(tmpdir(), 'pi-prep-controller-'));
  });
  after(async () => {
    await sshd.stop();
    removeRoot(root);
    rmSync(work, { recursive: true, force: true });
    rmSync(key.dir, { recursive: true, force: true });
  });

  it('token: k0s token create runs on the controller; the token lands in a 0600 file, never in argv, output or logs', async () => {
    const out = join(work, 'worker.token');
    const watch = watchArgv([token, '0123456789abcdef']);
    const res = await runCli(['token', '--controller', sshd.host('root'), ...sshd.cliArgs(), '--expiry', '2h', '-o', out]);
    const seen = await watch.stop();
    assert.equal(res.code, 0, res.stderr);
    assert.ok(seen.sawSsh, `the watcher saw the ssh process (${seen.scans} scans)`);
    assert.deepEqual(seen.leaks, [], 'no process had the token in its argv');
    assert.deepEqual(standInCalls(root).at(-1), ['k0s', 'token', 'create', '--role', 'worker', '--expiry', '2h']);
    assert.equal(readFileSync(out, 'utf8'), token + '\n');
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.equal(res.stdout, '', 'not printed unless asked');
    assert.match(res.stderr, /wrote a worker token for https:\/\/127\.0\.0\.1:6443 \(valid 2h\) to .*worker\.token \(mode 0600\)/);
    assert.ok(!res.stderr.includes(token));
    assert.ok(!sshd.log().includes(token) && !sshd.log().includes('0123456789abcdef'), 'not in sshd DEBUG3 log');

    const printed = await runCli(['token', '--controller', sshd.host('root'), ...sshd.cliArgs(), '-o', join(work, 'again.token'), '--print']);
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout, token + '\n', '--print prints it');
    assert.deepEqual(standInCalls(root).at(-1), ['k0s', 'token', 'create', '--role', 'worker', '--expiry', '1h']);
  });

  it('token: bad --expiry is a usage error and nothing runs; a controller without k0s is one line', async () => {
    const calls = standInCalls(root).length;
    const bad = await runCli(['token', '--controller', sshd.host('root'), ...sshd.cliArgs(), '--expiry', 'tomorrow']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^pi-prep: --expiry tomorrow is not a duration: use e\.g\. --expiry 1h/);
    assert.equal(standInCalls(root).length, calls);

    const k0s = join(root, 'usr/local/bin/k0s');
    renameSync(k0s, k0s + '.away');
    try {
      const out = join(work, 'x.token');
      const noK0s = await runCli(['token', '--controller', sshd.host('root'), ...sshd.cliArgs(), '-o', out]);
      assert.equal(noK0s.code, 1);
      assert.match(noK0s.stderr, /^pi-prep: `k0s token create` failed on root@127\.0\.0\.1:\d+ \(exit 127: .*\): is it a running k0s controller\?\n$/);
      assert.ok(!existsSync(out));
    } finally {
      renameSync(k0s + '.away', k0s);
    }
  });

  it('kubeconfig: admin.conf with localhost replaced by the address ssh reaches, written 0600', async () => {
    const out = join(work, 'kubeconfig');
    const res = await runCli(['kubeconfig', '--controller', sshd.host('root'), ...sshd.cliArgs(), '-o', out]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(readFileSync(out, 'utf8'), ADMIN_CONF.replace('server: https://localhost:6443', 'server: https://127.0.0.1:6443'));
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.equal(res.stdout, '');

    const other = await runCli(['kubeconfig', '--controller', sshd.host('root'), ...sshd.cliArgs(), '--address', 'k0s.example.lan']);
    assert.equal(other.code, 0, other.stderr);
    assert.match(other.stdout, /^    server: https:\/\/k0s\.example\.lan:6443$/m);
  });

  it('token and kubeconfig --json: one envelope each, never the token, mode as octal; errors as JSON too', async () => {
    const out = join(work, 'json.token');
    const res = await runCli(['token', '--controller', sshd.host('root'), ...sshd.cliArgs(), '-o', out, '--json']);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(jsonData(res.stdout, 'token'), { dryRun: false, controller: sshd.host('root'), server: 'https://127.0.0.1:6443', expiry: '1h', file: out, mode: '0600' });
    assert.ok(!res.stdout.includes(token) && !res.stderr.includes(token));
    assert.equal(readFileSync(out, 'utf8'), token + '\n');
    const dry = await runCli(['token', '--controller', sshd.host('root'), ...sshd.cliArgs(), '--dry-run', '--json']);
    assert.equal(jsonData<{ argv: string[] }>(dry.stdout, 'token').argv.join(' '), 'k0s token create --role worker --expiry 1h');

    const bad = await runCli(['token', '--controller', sshd.host('root'), ...sshd.cliArgs(), '--expiry', 'tomorrow', '--json']);
    assert.equal(bad.code, 2);
    assert.deepEqual(parseEnvelope(bad.stdout, 'token').error, { message: '--expiry tomorrow is not a duration: use e.g. --expiry 1h or --expiry 24h', exitCode: 2 });
    const both = await runCli(['token', '--controller', sshd.host('root'), ...sshd.cliArgs(), '--print', '--json']);
    assert.equal(both.code, 2);
    assert.match(parseEnvelope(both.stdout, 'token').error!.message, /--print and --json: give one/);

    const kube = await runCli(['kubeconfig', '--controller', sshd.host('root'), ...sshd.cliArgs(), '--json']);
    assert.equal(kube.code, 0, kube.stderr);
    const k = jsonData<{ server: string; kubeconfig: string }>(kube.stdout, 'kubeconfig');
    assert.equal(k.server, 'https://127.0.0.1');
    assert.match(k.kubeconfig, /^    server: https:\/\/127\.0\.0\.1:6443$/m);
  });

  it('kubeconfig: a machine that is no controller gives one line', async () => {
    rmSync(join(root, 'var/lib/k0s/pki/admin.conf'));
    const out = join(work, 'none');
    const res = await runCli(['kubeconfig', '--controller', sshd.host('root'), ...sshd.cliArgs(), '-o', out]);
    assert.equal(res.code, 1);
    assert.equal(res.stderr, `pi-prep: ${sshd.host('root')} has no /var/lib/k0s/pki/admin.conf: is it a k0s controller (k0s controller / k0s install controller)?\n`);
    assert.ok(!existsSync(out));
    const json = await runCli(['kubeconfig', '--controller', sshd.host('root'), ...sshd.cliArgs(), '--json']);
    assert.equal(json.code, 1);
    assert.match(parseEnvelope(json.stdout, 'kubeconfig').error!.message, /has no \/var\/lib\/k0s\/pki\/admin\.conf/);
  });
});
