import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI, runCli } from '../helpers/cli.js';
import { jsonData, parseEnvelope } from '../helpers/json-contract.js';
import { FakeKubeApi, type FakeNode } from '../helpers/fake-kube-api.js';

/**
 * `pi-prep verify` against an HTTPS API on 127.0.0.1 that answers as a cluster would (see
 * test/helpers/fake-kube-api.ts; docs/verify.md says what this does and does not prove).
 */
describe('pi-prep verify --kubeconfig (fake API server, real TLS, real probe script)', () => {
  let api: FakeKubeApi | undefined;
  afterEach(async () => {
    await api?.stop();
    api = undefined;
  });
  const start = async (nodes: FakeNode[]) => (api = await new FakeKubeApi(nodes).start());
  const verify = (a: FakeKubeApi, ...more: string[]) => runCli(['verify', '--kubeconfig', a.kubeconfig, '--poll', '0.05', ...more]);

  it('three workers, two architectures: every pod reached, the table, JSON, and the namespace removed', async () => {
    const a = await start([{ name: 'pi4-a', arch: 'arm64' }, { name: 'pi5-b', arch: 'arm64' }, { name: 'nuc-c', arch: 'amd64' }]);
    const res = await verify(a);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const lines = res.stdout.split('\n');
    assert.match(lines[0]!, /^NODE\s+ARCH\s+READY\s+POD\s+IP\s+REACHABLE$/);
    for (const [n, arch] of [['pi4-a', 'arm64'], ['pi5-b', 'arm64'], ['nuc-c', 'amd64']]) {
      assert.match(res.stdout, new RegExp(`^${n}\\s+${arch}\\s+yes\\s+pi-prep-whoami-\\S+\\s+127\\.\\d+\\.\\d+\\.\\d+\\s+yes$`, 'm'));
    }
    assert.match(res.stdout, /^Verified: 3 nodes Ready; 3 traefik\/whoami:v1\.10 pods \(amd64, arm64\) answered a test pod by IP\.$/m);
    const ns = /creating namespace (pi-prep-verify-[0-9a-f]{6})/.exec(res.stderr)?.[1];
    assert.ok(ns, res.stderr);
    assert.deepEqual(a.deleted, [ns], 'the namespace (and all in it) removed');
    assert.equal(a.namespaces.size, 0);

    const json = await verify(a, '--json');
    assert.equal(json.code, 0);
    assert.equal(json.stderr, '');
    assert.equal(parseEnvelope(json.stdout, 'verify').ok, true);
    const doc = jsonData<{ nodes: { node: string; arch: string; ready: boolean; reachable: string; answer: string; pod: string }[] }>(json.stdout, 'verify');
    assert.deepEqual(doc.nodes.map((n) => [n.node, n.arch, n.ready, n.reachable, n.answer === n.pod]), [
      ['pi4-a', 'arm64', true, 'yes', true], ['pi5-b', 'arm64', true, 'yes', true], ['nuc-c', 'amd64', true, 'yes', true],
    ]);
  });

  it('a node that never gets a pod, a pod nobody can reach, a NotReady node, a cordoned one, another pod answering: each named, exit 1, cleaned up', async () => {
    const a = await start([
      { name: 'pi4-a', arch: 'arm64' },
      { name: 'pi3-arm', arch: 'arm', pod: 'none' },
      { name: 'nuc-c', arch: 'amd64', reachable: false },
      { name: 'pi4-d', arch: 'arm64', ready: false, pod: 'none' },
      { name: 'pi4-e', arch: 'arm64', unschedulable: true, pod: 'none' },
      { name: 'pi4-f', arch: 'arm64', answersAs: 'some-other-pod' },
    ]);
    const res = await verify(a);
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /^pi4-a\s+arm64\s+yes\s+pi-prep-whoami-\S+\s+\S+\s+yes$/m);
    assert.match(res.stdout, /^pi3-arm\s+arm\s+yes\s+-\s+-\s+no pod$/m);
    assert.match(res.stdout, /^nuc-c\s+amd64\s+yes\s+pi-prep-whoami-\S+\s+\S+\s+no$/m);
    assert.match(res.stdout, /^pi4-d\s+arm64\s+NO\s+-\s+-\s+- \(not Ready\)$/m);
    assert.match(res.stdout, /^pi4-e\s+arm64\s+yes\s+-\s+-\s+- \(cordoned\)$/m);
    assert.match(res.stdout, /^problem: node pi4-d is not Ready: Ready=False \(KubeletNotReady: container runtime network not ready: NetworkReady=false\)$/m);
    assert.match(res.stdout, /^problem: node pi3-arm \(arm\) got no pi-prep-whoami pod within 180s$/m);
    assert.match(res.stdout, /^problem: pod pi-prep-whoami-\S+ on nuc-c \(\S+\) did not answer the probe$/m);
    assert.match(res.stdout, /^pi4-f\s+arm64\s+yes\s+pi-prep-whoami-\S+\s+\S+\s+wrong answer$/m);
    assert.match(res.stdout, /^problem: \S+ answered as some-other-pod, not as pi-prep-whoami-\S+$/m);
    assert.match(res.stdout, /^Not verified: 4 problems\.$/m);
    assert.equal(a.deleted.length, 1);
    assert.equal(a.namespaces.size, 0);
  });

  it("a pod that never runs (an image without the node's architecture): named with its reason after --timeout", async () => {
    const a = await start([{ name: 'pi4-a', arch: 'arm64' }, { name: 'pi2-b', arch: 'arm', pod: 'pending' }]);
    const res = await verify(a, '--timeout', '0.5');
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /^problem: DaemonSet pi-prep-whoami: 1 of 2 pods running after 0\.5s$/m);
    assert.match(res.stdout, /^problem: pod pi-prep-whoami-\S+ on pi2-b is Pending \(ErrImagePull: no match for platform in manifest\)$/m);
    assert.match(res.stdout, /^pi4-a\s+arm64\s+yes\s+\S+\s+\S+\s+yes$/m, 'the running pod was still probed');
    assert.equal(a.deleted.length, 1);
  });

  it('the API goes away mid-run: one line naming the step and the namespace left behind, exit 1', async () => {
    const a = await start([{ name: 'pi4-a', arch: 'arm64' }]);
    a.onRequest = async (method, path) => {
      if (method === 'POST' && path.endsWith('/jobs')) await a.goAway();
    };
    const res = await verify(a);
    assert.equal(res.code, 1, res.stdout + res.stderr);
    const last = res.stderr.trim().split('\n').at(-1)!;
    assert.match(last, /^pi-prep: creating Job pi-prep-probe: the API server https:\/\/127\.0\.0\.1:\d+ did not answer \(\S+\): is the controller up .*; also removing namespace (pi-prep-verify-[0-9a-f]{6}) \(remove it with `kubectl delete namespace \1`\): the API server .* did not answer/);
    assert.equal(res.stdout, '');
  });

  it('Ctrl-C while waiting for the pods: the namespace is removed, exit 130', async () => {
    const a = await start([{ name: 'pi4-a', arch: 'arm64', pod: 'pending' }]);
    const child = spawn(process.execPath, [CLI, 'verify', '--kubeconfig', a.kubeconfig, '--poll', '0.05'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let sent = false;
    // Hold the run at its first look at the pods, then interrupt it.
    a.onRequest = (method, path) => {
      if (!sent && method === 'GET' && path.endsWith('/pods')) {
        sent = true;
        child.kill('SIGINT');
      }
    };
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /SIGINT: removing namespace pi-prep-verify-[0-9a-f]{6}/);
    assert.equal(a.deleted.length, 1, 'the namespace was deleted');
    assert.equal(a.namespaces.size, 0);
  });

  it('bad input: exit 2, one line, no request made', async () => {
    const a = await start([{ name: 'pi4-a', arch: 'arm64' }]);
    for (const [args, pattern] of [
      [['--kubeconfig', '/nonexistent/admin.conf'], /--kubeconfig \/nonexistent\/admin\.conf: cannot read it/],
      [['--kubeconfig', a.kubeconfig, '--timeout', 'soon'], /--timeout soon is not a number of seconds/],
      [['--kubeconfig', a.kubeconfig, '--image', 'x; rm -rf /'], /--image x; rm -rf \/ is not an image reference/],
      [[], /required option '--kubeconfig <file>' not specified/],
    ] as const) {
      const res = await runCli(['verify', ...args]);
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, pattern);
      assert.equal(res.stderr.trim().split('\n').length, 1);
    }
    assert.deepEqual(a.requests, []);
  });
});
