import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeRoot, standInCalls } from '../helpers/fixture-root.js';
import { piRoot } from '../helpers/pi-root.js';
import { runCli } from '../helpers/cli.js';
import { parseEnvelope } from '../helpers/json-contract.js';
import { treeHash } from '../helpers/tree-hash.js';
import { TAG, joinWorkspace, type JoinWorkspace } from '../helpers/k0s-release.js';
import { TestSshd, makeClientKey, type ClientKey } from '../helpers/sshd.js';
import type { TestHttpServer } from '../helpers/http-server.js';

describe('a fleet: three Pis over SSH, one of them failing', () => {
  let key: ClientKey;
  let server: TestHttpServer;
  let work: string;
  let tokenFile: string;
  let ws: JoinWorkspace;
  let knownHosts: string;
  const pis: { name: string; root: string; sshd: TestSshd }[] = [];

  before(async () => {
    key = makeClientKey();
    ws = await joinWorkspace('fleet');
    ({ server, work, tokenFile } = ws);
    knownHosts = join(work, 'known_hosts');
  });
  after(async () => {
    for (const p of pis) await p.sshd.stop();
    pis.forEach((p) => removeRoot(p.root));
    await ws.stop();
    rmSync(key.dir, { recursive: true, force: true });
  });

  /** Three fresh Pis (pi-c broken), each behind its own sshd. */
  async function freshFleet(): Promise<void> {
    for (const p of pis.splice(0)) {
      await p.sshd.stop();
      removeRoot(p.root);
    }
    for (const name of ['pi-a', 'pi-b', 'pi-c']) {
      const root = piRoot(name === 'pi-c');
      const sshd = await new TestSshd(key, ['Match User root', `  ChrootDirectory ${root}`]).start();
      pis.push({ name, root, sshd });
    }
    writeFileSync(knownHosts, pis.map((p) => readFileSync(p.sshd.knownHosts, 'utf8')).join(''));
  }

  const sshArgs = () => [
    '--ssh-option', `IdentityFile=${key.path}`, '--ssh-option', 'IdentitiesOnly=yes', '--ssh-option', 'IdentityAgent=none',
    '--ssh-option', `UserKnownHostsFile=${knownHosts}`, '--ssh-option', 'GlobalKnownHostsFile=/dev/null',
  ];
  const joinArgs = () => ['--join', `@${tokenFile}`, '--k0s-mirror', server.url, '--k0s-version', TAG];
  const env = () => ({ XDG_CACHE_HOME: mkdtempSync(join(work, 'cache-')) });

  it('--inventory: the two good hosts finish, the summary and the exit code report the third', async () => {
    await freshFleet();
    const inventory = join(work, 'fleet.yaml');
    // Per-host ssh options: each Pi's own known_hosts file.
    writeFileSync(inventory, [
      'defaults:',
      '  user: root',
      `  ssh-options: [IdentityFile=${key.path}, IdentitiesOnly=yes, IdentityAgent=none, GlobalKnownHostsFile=/dev/null]`,
      'hosts:',
      ...pis.flatMap((p) => [
        `  ${p.name}:`,
        '    hostname: 127.0.0.1',
        `    port: ${p.sshd.port}`,
        `    ssh-options: [UserKnownHostsFile=${p.sshd.knownHosts}]`,
      ]),
      '',
    ].join('\n'));
    const before = treeHash(pis[2]!.root);
    const res = await runCli(['linux', '--inventory', inventory, '--parallel', '2', ...joinArgs()], { env: env() });
    assert.equal(res.code, 1, res.stdout + res.stderr);

    for (const p of pis.slice(0, 2)) {
      assert.deepEqual(standInCalls(p.root).filter((c) => c[1] !== 'status'), [
        ['k0s', 'install', 'worker', '--token-file', '/etc/k0s/k0stoken'],
        ['k0s', 'start'],
      ], `${p.name} joined`);
      // Each host's task list, line by line with its name in front.
      assert.match(res.stdout, new RegExp(`^${p.name} \\| .*k0s worker running`, 'm'));
    }
    assert.equal(treeHash(pis[2]!.root), before, 'the failing host was not changed');
    assert.match(res.stderr, /^pi-c \| pi-prep: .*CONFIG_NETFILTER_XT_MATCH_COMMENT/m);

    const table = res.stdout.slice(res.stdout.indexOf('HOST'));
    assert.match(table, /^HOST\s+RESULT\s+TIME\s+DETAIL$/m);
    assert.match(table, /^pi-a\s+ok\s+[\d.]+s\s+\d+ already done, \d+ changed\.$/m);
    assert.match(table, /^pi-b\s+ok\s+[\d.]+s\s+\d+ already done, \d+ changed\.$/m);
    assert.match(table, /^pi-c\s+FAILED\s+[\d.]+s\s+.*CONFIG_NETFILTER_XT_MATCH_COMMENT/m);
    assert.match(table, /1 of 3 hosts failed\./);
    assert.ok(!res.stdout.includes(readFileSync(tokenFile, 'utf8').trim()), 'no token in the output');
  });

  it('dry run across the fleet (--host repeated): every plan shown, nothing changed, JSON too', async () => {
    await freshFleet();
    const hashes = pis.map((p) => treeHash(p.root));
    const hosts = pis.flatMap((p) => ['--host', p.sshd.host('root')]);
    const res = await runCli(['linux', '--dry-run', ...hosts, ...sshArgs(), ...joinArgs()], { env: env() });
    assert.equal(res.code, 1, 'pi-c is not feasible');
    for (const p of pis.slice(0, 2)) {
      assert.match(res.stdout, new RegExp(`^${p.sshd.host('root').replace(/\./g, '\\.')}\\s+\\| .*would run`, 'm'));
    }
    assert.match(res.stdout, /1 of 3 hosts failed/);
    assert.deepEqual(pis.map((p) => treeHash(p.root)), hashes, 'nothing changed anywhere');

    const json = await runCli(['linux', '--dry-run', '--json', ...hosts, ...sshArgs(), ...joinArgs()], { env: env() });
    assert.equal(json.code, 1);
    const doc = parseEnvelope(json.stdout, 'fleet') as { ok: boolean; data: { command: string; hosts: { host: string; exitCode: number; error?: string; result?: { kind: string; ok: boolean } }[] } };
    assert.equal(doc.ok, false);
    assert.equal(doc.data.command, 'linux');
    assert.deepEqual(doc.data.hosts.map((h) => [h.exitCode, h.result?.kind, h.result?.ok]), [[0, 'linux', true], [0, 'linux', true], [1, 'linux', false]]);
    // The failing host's reason is its blocked requirement, not the last line of its JSON ("}").
    assert.match(doc.data.hosts[2]!.error ?? '', /CONFIG_NETFILTER_XT_MATCH_COMMENT/);
  });

  it('a bad inventory or --parallel is a usage error before any host is touched', async () => {
    const bad = join(work, 'bad.yaml');
    for (const [text, pattern] of [
      ['hosts: 3\n', /`hosts:` must be a list or a map/],
      ['hosts:\n  pi-a: { colour: red }\n', /unknown key "colour"/],
      ['hosts:\n  pi-a: { options: { no-such-flag: 1 } }\n', /sets "no-such-flag" for host pi-a/],
      ['hosts: [\n', /not valid YAML/],
    ] as const) {
      writeFileSync(bad, text);
      const res = await runCli(['check', '--inventory', bad]);
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, pattern);
      assert.equal(res.stderr.trim().split('\n').length, 1);
    }
    const res = await runCli(['check', '--host', 'a', '--host', 'b', '--parallel', '0']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--parallel 0 is not a whole number/);
    const json = await runCli(['check', '--host', 'a', '--host', 'b', '--parallel', '0', '--json']);
    assert.equal(json.code, 2);
    assert.match(parseEnvelope(json.stdout, 'fleet').error!.message, /--parallel 0 is not a whole number/);
  });
});
