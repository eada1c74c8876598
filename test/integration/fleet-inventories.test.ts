import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeRoot } from '../helpers/fixture-root.js';
import { piRoot } from '../helpers/pi-root.js';
import { jsonData } from '../helpers/json-contract.js';
import { runCli } from '../helpers/cli.js';
import { TestSshd, makeClientKey, type ClientKey } from '../helpers/sshd.js';

/**
 * `pi-prep check` over a fleet read from the inventories users already have, against real sshd's:
 * pi-a is fit for k0s, pi-b lacks a kernel option; a third sshd is only a bastion (k0sctl).
 */
describe('fleets from k0sctl.yaml and Ansible inventories, over real ssh', () => {
  let key: ClientKey;
  /** The bastion accepts only this key, the Pis only `key`: each hop must use its own. */
  let bastionKey: ClientKey;
  let work: string;
  let knownHosts: string;
  let a: TestSshd;
  let b: TestSshd;
  let bastion: TestSshd;
  const roots: string[] = [];

  before(async () => {
    key = makeClientKey();
    bastionKey = makeClientKey();
    work = mkdtempSync(join(tmpdir(), 'pi-prep-inventories-'));
    // A booted Pi: its boot partition (with the cgroup flags) at /boot/firmware.
    const boot = { '/boot/firmware/cmdline.txt': 'console=serial0,115200 root=PARTUUID=0a1b2c3d-02 rootwait cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1\n' };
    roots.push(piRoot(false, boot), piRoot(true, boot));
    a = await new TestSshd(key, ['Match User root', `  ChrootDirectory ${roots[0]}`]).start();
    b = await new TestSshd(key, ['Match User root', `  ChrootDirectory ${roots[1]}`]).start();
    bastion = await new TestSshd(bastionKey).start();
    knownHosts = join(work, 'known_hosts');
    writeFileSync(knownHosts, [a, b, bastion].map((s) => readFileSync(s.knownHosts, 'utf8')).join(''));
  });
  after(async () => {
    for (const s of [a, b, bastion]) await s?.stop();
    roots.forEach(removeRoot);
    rmSync(work, { recursive: true, force: true });
    rmSync(key.dir, { recursive: true, force: true });
    rmSync(bastionKey.dir, { recursive: true, force: true });
  });

  // The key comes from the inventory (keyPath, ansible_ssh_private_key_file); known_hosts from here.
  const sshArgs = () => ['--ssh-option', 'IdentitiesOnly=yes', '--ssh-option', 'IdentityAgent=none', '--ssh-option', `UserKnownHostsFile=${knownHosts}`, '--ssh-option', 'GlobalKnownHostsFile=/dev/null'];
  const write = (name: string, text: string) => {
    const f = join(work, name);
    writeFileSync(f, text);
    return f;
  };

  /** pi-a passes, pi-b fails its kernel check, the controller is never contacted. */
  function assertTwoWorkers(res: { code: number; stdout: string; stderr: string }) {
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /^pi-a \| .*Ready for k0s/m);
    assert.match(res.stdout, /^pi-b \| .*CONFIG_NETFILTER_XT_MATCH_COMMENT/m);
    const table = res.stdout.slice(res.stdout.indexOf('HOST'));
    assert.match(table, /^pi-a\s+ok\s/m);
    assert.match(table, /^pi-b\s+FAILED\s/m);
    assert.match(table, /1 of 2 hosts failed\./);
    assert.doesNotMatch(res.stdout + res.stderr, /^ctl/m);
  }

  it('k0sctl.yaml (k0sctl init layout): the workers checked, one through its bastion (with its own key); the controller skipped with why', async () => {
    const f = write('k0sctl.yaml', [
      'apiVersion: k0sctl.k0sproject.io/v1beta1',
      'kind: Cluster',
      'metadata:',
      '  name: k0s-cluster',
      'spec:',
      '  hosts:',
      '  - ssh:',
      '      address: 127.0.0.1',
      '      user: root',
      `      port: ${bastion.port}`,
      `      keyPath: ${key.path}`,
      '    role: controller',
      '  - ssh:',
      '      address: 127.0.0.1',
      '      user: root',
      `      port: ${a.port}`,
      `      keyPath: ${key.path}`,
      '    role: worker',
      '    hostname: pi-a',
      '  - ssh:',
      '      address: 127.0.0.1',
      `      port: ${b.port}`,
      `      keyPath: ${key.path}`,
      '      bastion:',
      '        address: 127.0.0.1',
      `        port: ${bastion.port}`,
      `        keyPath: ${bastionKey.path}`,
      '    role: controller+worker',
      '    hostname: pi-b',
      '  k0s:',
      '    version: v1.34.1+k0s.0',
      '',
    ].join('\n'));
    const res = await runCli(['check', '--inventory', f, ...sshArgs()]);
    assertTwoWorkers(res);
    assert.match(res.stderr, new RegExp(`^pi-prep: skipping 127\\.0\\.0\\.1:${bastion.port}: role controller: no worker runs there`, 'm'));
    assert.match(res.stderr, /check on 2 hosts \(k0sctl inventory\)/);
    // pi-b was reached through the bastion: its sshd forwarded a connection to pi-b's port.
    assert.match(bastion.log(), new RegExp(`direct-tcpip.*127\\.0\\.0\\.1.* port ${b.port}|to 127\\.0\\.0\\.1 port ${b.port}`));

    const json = await runCli(['check', '--inventory', f, '--json', ...sshArgs()]);
    const doc = jsonData<{ hosts: { host: string; exitCode: number; error?: string; result?: { ok: boolean } }[]; skipped: { host: string; reason: string }[] }>(json.stdout, 'fleet');
    assert.deepEqual(doc.hosts.map((h) => [h.host, h.exitCode, h.result?.ok]), [['pi-a', 0, true], ['pi-b', 1, false]]);
    // Why pi-b failed is its own (a check that failed), never the last line of its JSON ("}").
    assert.notEqual(doc.hosts[1]!.error, '}');
    assert.deepEqual(doc.skipped.map((s) => s.host), [`127.0.0.1:${bastion.port}`]);
  });

  it("k0sctl's ssh.hostKey: the pinned key is the only one trusted, whatever the user's own settings; a wrong one is refused", async () => {
    const hostKeyOf = (s: TestSshd) => readFileSync(join(s.dir, 'host_ed25519.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'other_host')]);
    const other = readFileSync(join(work, 'other_host.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const cluster = (bKey: string) => write('k0sctl-pinned.yaml', [
      'apiVersion: k0sctl.k0sproject.io/v1beta1',
      'kind: Cluster',
      'spec:',
      '  hosts:',
      '  - role: worker',
      '    hostname: pi-a',
      `    ssh: { address: 127.0.0.1, port: ${a.port}, keyPath: ${key.path}, hostKey: "${hostKeyOf(a)}" }`,
      '  - role: worker',
      '    hostname: pi-b',
      `    ssh: { address: 127.0.0.1, port: ${b.port}, keyPath: ${key.path}, hostKey: "${bKey}" }`,
      '',
    ].join('\n'));
    // The user's own settings would accept any key (no known_hosts, no strict checking): the pins decide.
    const loose = ['--ssh-option', 'IdentitiesOnly=yes', '--ssh-option', 'IdentityAgent=none', '--ssh-option', 'UserKnownHostsFile=/dev/null', '--ssh-option', 'GlobalKnownHostsFile=/dev/null', '--ssh-option', 'StrictHostKeyChecking=no'];
    const logged = b.log().length;
    const res = await runCli(['check', '--inventory', cluster(other), ...loose]);
    assert.equal(res.code, 3, res.stdout + res.stderr);
    const table = res.stdout.slice(res.stdout.indexOf('HOST'));
    assert.match(table, /^pi-a\s+ok\s/m);
    assert.match(table, new RegExp(`^pi-b\\s+REFUSED\\s+[\\d.]+s\\s+the host key of root@127\\.0\\.0\\.1:${b.port} is not the one pinned for it`, 'm'));
    assert.doesNotMatch(b.log().slice(logged), /Accepted publickey/, 'nothing logged in to the host whose key did not match');
    // With pi-b's real key pinned, both are reached (pi-b then fails its kernel check, as always).
    assertTwoWorkers(await runCli(['check', '--inventory', cluster(hostKeyOf(b)), ...loose]));

    const bad = await runCli(['check', '--inventory', cluster('AAAA-not-a-key'), ...loose]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /^pi-prep: the inventory .*k0sctl-pinned\.yaml, line 10 \(spec\.hosts\.1\.ssh\.hostKey\): hostKey AAAA-not-a-key: expected the host's public key as TYPE BASE64/);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    // The same pin for one host on the command line.
    const one = await runCli(['check', '--host', a.host('root'), '--host-key', other, '--ssh-option', `IdentityFile=${key.path}`, ...loose]);
    assert.equal(one.code, 3, one.stderr);
    assert.match(one.stderr, /^pi-prep: the host key of root@127\.0\.0\.1:\d+ is not the one pinned for it/m);
  });

  it("k0sctl's bastion hostKey: the bastion hop trusts only its pinned key; a wrong one refuses the host behind it", async () => {
    const bastionHostKey = readFileSync(join(bastion.dir, 'host_ed25519.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'other_bastion')]);
    const other = readFileSync(join(work, 'other_bastion.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const cluster = (pin: string) => write('k0sctl-bastion.yaml', [
      'apiVersion: k0sctl.k0sproject.io/v1beta1',
      'kind: Cluster',
      'spec:',
      '  hosts:',
      '  - role: worker',
      '    hostname: pi-a',
      `    ssh: { address: 127.0.0.1, port: ${a.port}, keyPath: ${key.path}, bastion: { address: 127.0.0.1, port: ${bastion.port}, keyPath: ${bastionKey.path}, hostKey: "${pin}" } }`,
      '',
    ].join('\n'));
    // known_hosts given to ssh holds pi-a's key only: the bastion is known through its pin alone.
    const piaOnly = write('known_hosts_pia', readFileSync(a.knownHosts, 'utf8'));
    const args = ['--ssh-option', 'IdentitiesOnly=yes', '--ssh-option', 'IdentityAgent=none', '--ssh-option', `UserKnownHostsFile=${piaOnly}`, '--ssh-option', 'GlobalKnownHostsFile=/dev/null'];
    const good = await runCli(['check', '--inventory', cluster(bastionHostKey), ...args]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /^pi-a\s+ok\s/m);
    const bastionLogged = bastion.log().length;
    const bad = await runCli(['check', '--inventory', cluster(other), ...args]);
    // ssh hides the bastion hop's own complaint while a master connection is set up (see ssh-errors.ts).
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, new RegExp(`^pi-a\\s+FAILED\\s+[\\d.]+s\\s+ssh to root@127\\.0\\.0\\.1:${a.port} through its bastion failed: the bastion closed the connection, or its host key is not the one pinned for it`, 'm'));
    assert.doesNotMatch(bastion.log().slice(bastionLogged), /Accepted publickey/, 'nothing logged in to the bastion whose key did not match');
    assert.deepEqual(readdirSync(tmpdir()).filter((d) => d.startsWith('pi-prep-bastion-')), [], 'the pinned keys are removed after the run');
  });

  it("k0sctl's openSSH.configPath: ssh reads that file (-F) for the host, and only that file", async () => {
    const config = write('ssh_config', [
      'Host pi-c-alias',
      '  HostName 127.0.0.1',
      `  Port ${a.port}`,
      '  User root',
      `  IdentityFile ${key.path}`,
      '  IdentitiesOnly yes',
      '  IdentityAgent none',
      `  UserKnownHostsFile ${knownHosts}`,
      '  GlobalKnownHostsFile /dev/null',
      '',
    ].join('\n'));
    const f = write('k0sctl-openssh.yaml', [
      'apiVersion: k0sctl.k0sproject.io/v1beta1',
      'kind: Cluster',
      'spec:',
      '  hosts:',
      '  - role: worker',
      `    openSSH: { address: pi-c-alias, configPath: ${config} }`,
      '',
    ].join('\n'));
    // No --ssh-option at all: the host's name, port, user, key and known_hosts all come from that file.
    const res = await runCli(['check', '--inventory', f]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /^pi-c-alias \| .*Ready for k0s/m);
    const missing = await runCli(['check', '--inventory', write('k0sctl-noconfig.yaml', readFileSync(f, 'utf8').replace(config, join(work, 'nope')))]);
    assert.equal(missing.code, 2, missing.stdout + missing.stderr);
    assert.match(missing.stdout + missing.stderr, /--ssh-config .*nope: cannot read that ssh config file; check the path/);
  });

  it("Ansible YAML (k3s-ansible's sample layout) with --group agent", async () => {
    const f = write('inventory.yml', [
      '---',
      'k3s_cluster:',
      '  children:',
      '    server:',
      '      hosts:',
      '        ctl:',
      '          ansible_host: 127.0.0.1',
      `          ansible_port: ${bastion.port}`,
      '    agent:',
      '      hosts:',
      '        pi-a:',
      '          ansible_host: 127.0.0.1',
      `          ansible_port: ${a.port}`,
      '        pi-b:',
      '          ansible_host: 127.0.0.1',
      `          ansible_port: ${b.port}`,
      '  vars:',
      '    ansible_port: 22',
      '    ansible_user: root',
      `    ansible_ssh_private_key_file: ${key.path}`,
      '    k3s_version: v1.30.2+k3s1',
      '    token: "changeme!"',
      '',
    ].join('\n'));
    assertTwoWorkers(await runCli(['check', '--inventory', f, '--group', 'agent', ...sshArgs()]));
  });

  it('Ansible INI with [group:vars] and [group:children], --group agent', async () => {
    const f = write('hosts.ini', [
      '[server]',
      `ctl ansible_host=127.0.0.1 ansible_port=${bastion.port}`,
      '',
      '[agent]',
      `pi-a ansible_host=127.0.0.1 ansible_port=${a.port}`,
      `pi-b ansible_host=127.0.0.1 ansible_port=${b.port}`,
      '',
      '[agent:vars]',
      `ansible_ssh_private_key_file=${key.path}`,
      '',
      '[k3s_cluster:children]',
      'server',
      'agent',
      '',
      '[k3s_cluster:vars]',
      'ansible_user=root',
      '',
    ].join('\n'));
    assertTwoWorkers(await runCli(['check', '--inventory', f, '--group', 'agent', ...sshArgs()]));
  });

  it('a bad inventory of each format: exit 2, one line naming the key and the line, no host contacted', async () => {
    const before = [a, b, bastion].map((s) => s.log().length);
    for (const [name, text, pattern] of [
      ['bad-k0sctl.yaml', 'apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\nspec:\n  hosts:\n  - role: worker\n    ssh:\n      adress: 127.0.0.1\n', /line 7 \(spec\.hosts\.0\.ssh\.adress\): unknown key "adress"/],
      ['bad.yml', 'agent:\n  hosts:\n    pi-a:\n      ansible_port: ssh\n', /line 4 \(agent\.hosts\.pi-a\.ansible_port\): host pi-a: ansible_port "ssh" is not valid/],
      ['bad.ini', '[agent]\npi-a ansible_host=127.0.0.1\npi-b ansible_port\n', /line 3: "ansible_port" after host pi-b must be KEY=VALUE/],
    ] as const) {
      const res = await runCli(['check', '--inventory', write(name, text), ...sshArgs()]);
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, pattern);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    }
    const res = await runCli(['check', '--host', a.host('root'), '--group', 'agent']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--group picks hosts of an Ansible inventory: add --inventory FILE/);
    assert.deepEqual([a, b, bastion].map((s) => s.log().length), before, 'no sshd saw a connection');
  });
});
