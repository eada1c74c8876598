import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readInventory } from '../../src/fleet/inventory.js';
import { proxyCommand } from '../../src/fleet/jump-host.js';
import { UsageError } from '../../src/core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'pi-prep-inv-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string, ext = 'yml'): string {
  const f = join(dir, `inv${++n}.${ext}`);
  writeFileSync(f, text);
  return f;
}
/** The one-line usage error reading `text` gives. */
async function usage(text: string, groups?: string[], ext?: string): Promise<string> {
  const err = await readInventory(file(text, ext), groups).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof UsageError, `expected a usage error, got ${String(err)}`);
  assert.ok(!err.message.includes('\n'), 'one line');
  return err.message;
}

// The layout `k0sctl init` writes, plus what users add: a bastion, a controller+worker, localhost.
const K0SCTL = `apiVersion: k0sctl.k0sproject.io/v1beta1
kind: Cluster
metadata:
  name: k0s-cluster
  user: admin
spec:
  hosts:
  - ssh:
      address: 10.0.0.1
      user: root
      port: 22
      keyPath: ~/.ssh/id_ed25519
    role: controller
  - ssh:
      address: 10.0.0.2
      user: root
      port: 22
      keyPath: ~/.ssh/id_ed25519
    role: controller+worker
  - ssh:
      address: 10.0.0.3
      port: 2222
      hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGT/0y4jikK5T6r8BoEKt+T2mGZKqdtKPdmjU3JBMzty
      bastion:
        address: 10.0.0.1
        user: jump
        keyPath: ~/.ssh/bastion
    role: worker
  - role: single
    hostname: pi5
    openSSH:
      address: pi5.lan
      user: pi
      configPath: ~/.ssh/pis.config
      options:
        StrictHostKeyChecking: "yes"
  - role: worker
    localhost:
      enabled: true
  k0s:
    version: v1.34.1+k0s.0
`;

// k3s-ansible's inventory-sample.yml layout.
const K3S_ANSIBLE = `---
k3s_cluster:
  children:
    server:
      hosts:
        192.16.35.11:
    agent:
      hosts:
        192.16.35.12:
        192.16.35.13:
          ansible_user: pi
          ansible_port: 2200

  # Required Vars
  vars:
    ansible_port: 22
    ansible_user: debian
    k3s_version: v1.26.9+k3s1
    token: "changeme!"
    api_endpoint: "{{ hostvars[groups['server'][0]]['ansible_host'] | default(groups['server'][0]) }}"
`;

const INI = `# an Ansible INI inventory
[server]
ctl-1 ansible_host=10.0.1.1

[agent]
pi4-[01:03] ansible_user=pi
pi5-a ansible_host=10.0.1.50 ansible_port=2222 ansible_ssh_private_key_file="/home/me/.ssh/pi key"  # the new one

[agent:vars]
ansible_ssh_common_args='-o StrictHostKeyChecking=yes'
pi_prep_kernel=skip

[k3s_cluster:children]
server
agent

[k3s_cluster:vars]
ansible_user=admin
ansible_port=22
`;

describe('inventories in the formats users already have', () => {
  it('k0sctl.yaml: the hosts that run a worker, the rest skipped with why; bastion kept', async () => {
    const inv = await readInventory(file(K0SCTL));
    assert.equal(inv.format, 'k0sctl');
    assert.deepEqual(inv.hosts.map((h) => [h.name, h.address, h.sshOptions]), [
      ['10.0.0.2', { user: 'root', host: '10.0.0.2' }, ['IdentityFile=~/.ssh/id_ed25519']],
      ['10.0.0.3:2222', { user: 'root', host: '10.0.0.3', port: 2222 }, []],
      ['pi5', { user: 'pi', host: 'pi5.lan' }, ['StrictHostKeyChecking=yes']],
    ]);
    assert.deepEqual(inv.hosts[1]!.jump, { host: '10.0.0.1', user: 'jump', keyPath: '~/.ssh/bastion' });
    // ssh.hostKey pins that host's key; openSSH.configPath is that host's ssh -F.
    assert.deepEqual(inv.hosts.map((h) => h.ssh), [undefined, { hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGT/0y4jikK5T6r8BoEKt+T2mGZKqdtKPdmjU3JBMzty' }, { sshConfig: '~/.ssh/pis.config' }]);
    assert.deepEqual(inv.skipped.map((s) => s.name), ['10.0.0.1', 'localhost']);
    assert.match(inv.skipped[0]!.why, /role controller/);
    assert.match(inv.skipped[1]!.why, /localhost/);
  });

  it('k3s-ansible YAML: group vars inherited, host vars win, --group picks agents', async () => {
    const f = file(K3S_ANSIBLE);
    const all = await readInventory(f);
    assert.equal(all.format, 'ansible-yaml');
    assert.deepEqual(all.hosts.map((h) => h.name), ['192.16.35.11', '192.16.35.12', '192.16.35.13']);
    const agents = await readInventory(f, ['agent']);
    assert.deepEqual(agents.hosts.map((h) => h.address), [
      { user: 'debian', host: '192.16.35.12', port: 22 },
      { user: 'pi', host: '192.16.35.13', port: 2200 },
    ]);
    assert.match(await usage(K3S_ANSIBLE, ['agents']), /--group agents: .* has no such group \(groups: k3s_cluster, server, agent\)/);
  });

  it('Ansible INI: ranges, [group:vars] deeper than [parent:vars], quoted values, pi_prep_ flags', async () => {
    const f = file(INI, 'ini');
    const inv = await readInventory(f, ['agent']);
    assert.equal(inv.format, 'ansible-ini');
    assert.deepEqual(inv.hosts.map((h) => [h.name, h.address]), [
      ['pi4-01', { user: 'pi', host: 'pi4-01', port: 22 }],
      ['pi4-02', { user: 'pi', host: 'pi4-02', port: 22 }],
      ['pi4-03', { user: 'pi', host: 'pi4-03', port: 22 }],
      ['pi5-a', { user: 'admin', host: '10.0.1.50', port: 2222 }],
    ]);
    assert.deepEqual(inv.hosts[3]!.sshOptions, ['IdentityFile=/home/me/.ssh/pi key', 'StrictHostKeyChecking=yes']);
    assert.deepEqual(inv.hosts[0]!.flags, { kernel: 'skip' });
    const server = await readInventory(f, ['server']);
    assert.deepEqual(server.hosts.map((h) => h.address), [{ user: 'admin', host: '10.0.1.1', port: 22 }]);
  });

  it('Ansible: host vars under all.hosts, membership under children; [all:vars] in INI', async () => {
    const yml = await readInventory(file([
      'all:',
      '  hosts:',
      '    k1: { ansible_host: 10.0.5.1, ansible_user: root }',
      '    k2: { ansible_host: 10.0.5.2, ansible_user: root }',
      '  children:',
      '    k3s-masters:',
      '      hosts:',
      '        k1:',
      '    k3s-agents:',
      '      hosts:',
      '        k2:',
      '',
    ].join('\n')), ['k3s-agents']);
    assert.deepEqual(yml.hosts.map((h) => [h.name, formatted(h.address)]), [['k2', 'root@10.0.5.2']]);
    const ini = await readInventory(file('[agent]\npi-a\n\n[all:vars]\nansible_user=pi\nansible_port=2200\n\n[agent:vars]\nansible_port=2222\n', 'ini'));
    assert.deepEqual(ini.hosts.map((h) => formatted(h.address)), ['pi@pi-a:2222']);
  });

  it('Ansible hosts reached otherwise than by ssh are skipped, with why', async () => {
    const inv = await readInventory(file('[all]\nlocalhost ansible_connection=local\npi-a ansible_host=10.0.4.1\n', 'ini'));
    assert.deepEqual(inv.hosts.map((h) => h.name), ['pi-a']);
    assert.deepEqual(inv.skipped, [{ name: 'localhost', why: 'ansible_connection=local: pi-prep reaches hosts over ssh' }]);
  });

  it('an INI file with no sections at all (a plain host list)', async () => {
    const inv = await readInventory(file('10.0.2.1\n10.0.2.2 ansible_user=pi\n', 'txt'));
    assert.equal(inv.format, 'ansible-ini');
    assert.deepEqual(inv.hosts.map((h) => formatted(h.address)), ['10.0.2.1', 'pi@10.0.2.2']);
  });

  it("pi-prep's own format still reads as before", async () => {
    const inv = await readInventory(file('defaults: { user: pi }\nhosts:\n  a: { hostname: 10.0.3.1, options: { kernel: skip } }\n  b: {}\n'));
    assert.equal(inv.format, 'pi-prep');
    assert.deepEqual(inv.hosts.map((h) => [h.name, formatted(h.address), h.flags]), [['a', 'pi@10.0.3.1', { kernel: 'skip' }], ['b', 'pi@b', {}]]);
  });

  it('a bad file: one line naming the key and its line', async () => {
    assert.match(await usage('hosts:\n  a:\n    hostname: x\n    colour: red\n'), /line 4 \(hosts\.a\.colour\): host a has an unknown key "colour"/);
    assert.match(await usage(K0SCTL.replace('role: controller+worker', 'role: worker+gpu')), /line 19 \(spec\.hosts\.1\.role\): role must be one of/);
    assert.match(await usage(K0SCTL.replace('port: 2222', 'port: twenty')), /line 2\d \(spec\.hosts\.2\.ssh\.port\): "twenty" is not a port/);
    assert.match(await usage(K0SCTL.replace('      keyPath: ~/.ssh/id_ed25519\n    role: controller\n', '      keyfile: x\n    role: controller\n')), /line 12 \(spec\.hosts\.0\.ssh\.keyfile\): unknown key "keyfile"/);
    assert.match(await usage(K3S_ANSIBLE.replace('ansible_port: 2200', 'ansible_port: 22x')), /line 12 \(k3s_cluster\.children\.agent\.hosts\.192\.16\.35\.13\.ansible_port\): host 192\.16\.35\.13: ansible_port "22x" is not valid/);
    assert.match(await usage(K3S_ANSIBLE.replace('  vars:', '  varz:')), /line 15 \(k3s_cluster\.varz\): unknown key "varz" in group k3s_cluster/);
    assert.match(await usage(INI.replace('[agent:vars]', '[agent:varz]'), undefined, 'ini'), /line 9: "\[agent:varz\]" is not a section/);
    assert.match(await usage(INI.replace('pi_prep_kernel=skip', 'pi_prep_kernel'), undefined, 'ini'), /line 11: "pi_prep_kernel" in \[agent:vars\] must be KEY=VALUE/);
    assert.match(await usage('a: [\n b'), /not valid YAML \(line 2/);
    assert.match(await usage(K0SCTL, ['agent']), /--group picks groups of an Ansible inventory/);
    assert.match(await usage(K0SCTL.replace(/role: (controller\+worker|worker|single)/g, 'role: controller').replace(/  - role: controller\n    localhost/, '  - role: worker\n    localhost')), /no host to act on \(skipped: 10\.0\.0\.1: role controller/);
  });

  it('a bastion becomes a ProxyCommand with the key and known-hosts options, and nothing a shell would read', () => {
    const cmd = proxyCommand({ host: '10.0.0.1', user: 'jump', port: 2022, keyPath: '~/.ssh/bastion' }, ['IdentityFile=/k/host', 'UserKnownHostsFile=/k/known', 'Compression=yes'], 'h');
    assert.equal(cmd, "ProxyCommand=ssh -W '[%h]:%p' -o BatchMode=yes -l jump -p 2022 -o IdentityFile=~/.ssh/bastion -o UserKnownHostsFile=/k/known 10.0.0.1");
    assert.throws(() => proxyCommand({ host: '10.0.0.1', keyPath: '/k/a;rm -rf ~' }, [], 'h'), /cannot be handed to ssh safely/);
  });
});

function formatted(a: { user?: string; host: string; port?: number }): string {
  return `${a.user ? `${a.user}@` : ''}${a.host}${a.port ? `:${a.port}` : ''}`;
}
