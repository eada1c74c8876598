import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { removeRoot, standInCalls } from '../helpers/fixture-root.js';
import { piRoot } from '../helpers/pi-root.js';
import { runCli } from '../helpers/cli.js';
import { TAG, joinWorkspace, type JoinWorkspace } from '../helpers/k0s-release.js';
import { TestSshd, makeClientKey, type ClientKey } from '../helpers/sshd.js';
import { FakeKubeApi } from '../helpers/fake-kube-api.js';

/**
 * `--kubeconfig`: after the join over SSH (a Pi root behind a real sshd, k0s a stand-in), the
 * node named after the machine's hostname must become Ready in the API (an HTTPS API on 127.0.0.1).
 */
describe('linux --kubeconfig: the join waits for the node to be Ready', () => {
  let key: ClientKey;
  let ws: JoinWorkspace;
  let root: string;
  let sshd: TestSshd;
  let api: FakeKubeApi;
  // The chroot shares this machine's UTS namespace: `hostname` there answers this.
  const node = hostname().toLowerCase();

  before(async () => {
    key = makeClientKey();
    ws = await joinWorkspace('ready');
    root = piRoot(false);
    sshd = await new TestSshd(key, ['Match User root', `  ChrootDirectory ${root}`]).start();
    api = await new FakeKubeApi([]).start();
  });
  after(async () => {
    await sshd.stop();
    await api.stop();
    removeRoot(root);
    await ws.stop();
    rmSync(key.dir, { recursive: true, force: true });
  });

  const run = (...more: string[]) =>
    runCli(['linux', '--host', sshd.host('root'), ...sshd.cliArgs(), '--join', `@${ws.tokenFile}`, '--k0s-mirror', ws.server.url, '--k0s-version', TAG, '--kubeconfig', api.kubeconfig, '--verbose', ...more], {
      env: { XDG_CACHE_HOME: mkdtempSync(join(ws.work, 'cache-')) },
    });

  it('the node registers late, is NotReady, then Ready: the run waits and says so', async () => {
    // Deterministic: each look at the node changes the world for the next one.
    let looks = 0;
    api.onRequest = (method, path) => {
      if (method !== 'GET' || path !== `/api/v1/nodes/${node}`) return;
      looks++;
      if (looks === 3) api.nodes.push({ name: node, arch: 'arm64', ready: false }); // after check + one wait: registered
      if (looks === 4) api.nodes[0]!.ready = true;
    };
    const res = await run();
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.deepEqual(standInCalls(root).filter((c) => c[1] !== 'status'), [['k0s', 'install', 'worker', '--token-file', '/etc/k0s/k0stoken'], ['k0s', 'start']]);
    assert.match(res.stdout, new RegExp(`waiting for node ${node}: has not registered with the API server yet`));
    assert.match(res.stdout + res.stderr, new RegExp(`waiting for node ${node}: conditions: Ready=False \\(KubeletNotReady`));
    assert.match(res.stdout, /\[x\] Node Ready in the cluster/);
    assert.equal(looks, 4);
  });

  it('a second run finds the node Ready and changes nothing', async () => {
    api.onRequest = undefined;
    const res = await run();
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`Node Ready in the cluster \\(done: node ${node} is Ready\\)`));
  });

  it('a node not Ready in --ready-timeout: a failed task naming its conditions', async () => {
    api.nodes[0]!.ready = false;
    const res = await run('--ready-timeout', '0.3');
    assert.equal(res.code, 1, res.stdout + res.stderr);
    const last = res.stderr.trim().split('\n').at(-1)!;
    assert.match(last, new RegExp(`^pi-prep: node ${node} was not Ready within 0\\.3s: conditions: Ready=False \\(KubeletNotReady: container runtime network not ready: NetworkReady=false\\); see \`kubectl describe node ${node}\`, or raise --ready-timeout`));
  });

  it('--kubeconfig without a join, or on a root directory: exit 2 before anything runs', async () => {
    const a = await runCli(['linux', '--host', sshd.host('root'), ...sshd.cliArgs(), '--prepare-only', '--kubeconfig', api.kubeconfig]);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /--kubeconfig waits for the node after a join: add --join, or drop --kubeconfig/);
    const b = await runCli(['linux', '--root', root, '--join', `@${ws.tokenFile}`, '--kubeconfig', api.kubeconfig]);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /only runs k0s once it boots: drop --kubeconfig/);
  });
});
