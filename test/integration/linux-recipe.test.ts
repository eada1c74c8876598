import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildRoot, osRelease, removeRoot, standInCalls, STANDIN_LOG } from '../helpers/fixture-root.js';
import { runCli } from '../helpers/cli.js';
import { treeHash } from '../helpers/tree-hash.js';
import { TAG, joinWorkspace, k0sReleaseServer, kernelConfig, sampleControllerToken, type JoinWorkspace } from '../helpers/k0s-release.js';
import type { TestHttpServer } from '../helpers/http-server.js';
import { jsonData, parseEnvelope } from '../helpers/json-contract.js';

const RELEASE = '6.1.0-test';

/** A loopback port nobody listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function workerRoot(arch: 'arm64' | 'amd64', kconfig = kernelConfig()): string {
  return buildRoot({
    arch,
    init: 'systemd',
    files: {
      '/etc/os-release': osRelease('ubuntu', '24.04', 'Ubuntu 24.04 LTS', 'ID_LIKE=debian\n'),
      '/proc/sys/kernel/osrelease': `${RELEASE}\n`,
      [`/boot/config-${RELEASE}`]: kconfig,
      '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n',
      '/proc/meminfo': 'MemTotal:        3884376 kB\n',
    },
  });
}

describe('pi-prep linux --root (real chroot, k0s from a local HTTP server)', () => {
  let server: TestHttpServer;
  let work: string;
  let tokenFile: string;
  const roots: string[] = [];

  let ws: JoinWorkspace;

  before(async () => {
    ws = await joinWorkspace('linux');
    ({ server, work, tokenFile } = ws);
  });
  after(async () => {
    await ws.stop();
    roots.forEach(removeRoot);
  });

  const args = (root: string, ...more: string[]) => [
    'linux', '--root', root, '--join', `@${tokenFile}`, '--k0s-mirror', server.url, '--k0s-version', TAG, ...more,
  ];
  const env = () => ({ XDG_CACHE_HOME: mkdtempSync(join(work, 'cache-')) });

  for (const arch of ['arm64', 'amd64'] as const) {
    it(`joins an ${arch} root, and a second run changes nothing`, async () => {
      const root = workerRoot(arch);
      roots.push(root);
      server.requests.length = 0;
      const first = await runCli(args(root), { env: env() });
      assert.equal(first.code, 0, first.stderr);
      assert.ok(server.requests.includes(`/${TAG}/sha256sums.txt`), 'checksums fetched');
      assert.ok(server.requests.includes(`/${TAG}/k0s-${TAG}-${arch}`), `the ${arch} asset was downloaded`);
      assert.ok(!server.requests.some((r) => r.endsWith(arch === 'arm64' ? '-amd64' : '-arm64')), 'no other arch');
      assert.match(readFileSync(join(root, 'usr/local/bin/k0s'), 'utf8'), new RegExp(`stand-in for ${arch}`));

      const tok = statSync(join(root, 'etc/k0s/k0stoken'));
      assert.equal(tok.mode & 0o777, 0o600);
      assert.equal(statSync(join(root, 'etc/k0s')).mode & 0o777, 0o700);
      assert.equal(readFileSync(join(root, 'etc/k0s/k0stoken'), 'utf8').trim(), readFileSync(tokenFile, 'utf8').trim());

      const calls = standInCalls(root).filter((c) => c[1] !== 'status');
      assert.deepEqual(calls, [
        ['k0s', 'install', 'worker', '--token-file', '/etc/k0s/k0stoken'],
        ['k0s', 'start'],
      ]);

      const before2 = treeHash(root, [STANDIN_LOG]);
      const second = await runCli(args(root), { env: env() });
      assert.equal(second.code, 0, second.stderr);
      assert.equal(treeHash(root, [STANDIN_LOG]), before2, 'second run changed nothing');
      assert.deepEqual(standInCalls(root).filter((c) => c[1] !== 'status'), calls, 'no new install or start');
      assert.match(second.stdout, /already done, 0 changed/);
    });
  }

  it('a k0s status that never returns is cut off within --wait-timeout instead of hanging the run', async () => {
    const root = workerRoot('amd64');
    roots.push(root);
    const { k0sStandIn } = await import('../helpers/k0s-standin.js');
    const hung = join(work, 'k0s-hung-status');
    writeFileSync(hung, k0sStandIn(TAG).replace(/  status\)[\s\S]*?fi ;;\n/, '  status) exec sleep 2147483647 ;;\n'), { mode: 0o755 });
    const r = await runCli(['linux', '--root', root, '--join', `@${tokenFile}`, '--k0s-binary', hung, '--wait-timeout', '1'], { env: env() });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.deepEqual(standInCalls(root).filter((c) => c[1] !== 'status').map((c) => c[1]), ['install', 'start']);
  });

  it('dry run prints the exact plan and changes nothing', async () => {
    const root = workerRoot('arm64');
    roots.push(root);
    const before = treeHash(root);
    const res = await runCli(args(root, '--dry-run'), { env: env() });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(treeHash(root), before, 'root unchanged');
    assert.match(res.stdout, /- \[x\] Kernel and cgroups fit for a k0s worker \(done:/);
    assert.match(res.stdout, new RegExp(`copy .* to /usr/local/bin/k0s \\(mode 0755\\)`));
    assert.match(res.stdout, /write \/etc\/k0s\/k0stoken \(contents redacted, mode 0600\)/);
    assert.match(res.stdout, /run `\/usr\/local\/bin\/k0s install worker --token-file \/etc\/k0s\/k0stoken`/);
    assert.match(res.stdout, /run `\/usr\/local\/bin\/k0s start`/);
    assert.ok(!res.stdout.includes(readFileSync(tokenFile, 'utf8').trim()), 'token never printed');

    // The same plan as JSON: the envelope, file modes as octal strings.
    const json = await runCli(args(root, '--dry-run', '--json'), { env: env() });
    assert.equal(json.code, 0, json.stderr);
    const plan = jsonData<{ dryRun: boolean; tasks: { actions: { kind: string; path?: string; mode?: string }[] }[] }>(json.stdout, 'linux');
    assert.equal(plan.dryRun, true);
    const actions = plan.tasks.flatMap((t) => t.actions);
    assert.equal(actions.find((a) => a.kind === 'write' && a.path === '/etc/k0s/k0stoken')?.mode, '0600');
    assert.equal(actions.find((a) => a.kind === 'put' && a.path === '/usr/local/bin/k0s')?.mode, '0755');
    // --quiet: nothing on stdout, the exit code says it.
    const quiet = await runCli(args(root, '--dry-run', '--quiet'), { env: env() });
    assert.deepEqual([quiet.code, quiet.stdout, quiet.stderr], [0, '', '']);
    assert.equal(treeHash(root), before, 'root unchanged');
  });

  it('--check-server blocks when the API server does not answer, and passes when it does', async () => {
    const root = workerRoot('amd64');
    roots.push(root);
    const port = await closedPort();
    const { encodeJoinToken } = await import('../../src/lib/k0s/token.js');
    const f = join(work, 'port.token');
    writeFileSync(f, await encodeJoinToken({ server: `https://127.0.0.1:${port}`, user: 'kubelet-bootstrap', token: 'abcdef.0123456789abcdef' }));
    const common = ['linux', '--root', root, '--join', `@${f}`, '--k0s-mirror', server.url, '--k0s-version', TAG, '--check-server', '--dry-run'];
    const closed = await runCli(common, { env: env() });
    assert.equal(closed.code, 1);
    assert.match(closed.stdout, new RegExp(`- \\[ \\] Controller API 127\\.0\\.0\\.1:${port} reachable \\(blocked: cannot connect .*ECONNREFUSED`));
    const { createServer } = await import('node:net');
    const api = createServer((s) => s.end());
    await new Promise<void>((r) => api.listen(port, '127.0.0.1', r));
    try {
      const open = await runCli(common, { env: env() });
      assert.equal(open.code, 0, open.stdout + open.stderr);
      assert.match(open.stdout, /- \[x\] Controller API .* reachable \(done: TCP/);
    } finally {
      api.close();
    }
  });

  it('--log-file and --verbose record every action, with the token redacted', async () => {
    const root = workerRoot('arm64');
    roots.push(root);
    const logFile = join(work, 'run.log');
    const res = await runCli(args(root, '--verbose', '--log-file', logFile), { env: env() });
    assert.equal(res.code, 0, res.stderr);
    const log = readFileSync(logFile, 'utf8');
    const token = readFileSync(tokenFile, 'utf8').trim();
    assert.match(log, /run `\/usr\/local\/bin\/k0s install worker --token-file \/etc\/k0s\/k0stoken`/);
    assert.match(log, /write \/etc\/k0s\/k0stoken \(contents redacted, mode 0600\)/);
    assert.equal(statSync(logFile).mode & 0o777, 0o600);
    for (const out of [log, res.stdout, res.stderr]) assert.ok(!out.includes(token), 'token leaked');
  });

  it('--log-file naming a directory is bad input in one line (exit 2), not a raw EISDIR', async () => {
    const root = workerRoot('arm64');
    roots.push(root);
    const before = treeHash(root);
    const res = await runCli(args(root, '--log-file', work), { env: env() });
    assert.equal(res.code, 2, res.stderr);
    assert.equal(res.stderr.split('\n').at(-2), `pi-prep: --log-file ${work} is a directory: give a file path, e.g. --log-file ${join(work, 'pi-prep.log')}`);
    assert.equal(treeHash(root), before);
  });

  it('a token file and its directory left open to all are both closed again (0600 in 0700)', async () => {
    const root = workerRoot('amd64');
    roots.push(root);
    assert.equal((await runCli(args(root), { env: env() })).code, 0);
    const { chmodSync } = await import('node:fs');
    chmodSync(join(root, 'etc/k0s'), 0o777);
    chmodSync(join(root, 'etc/k0s/k0stoken'), 0o644);
    const res = await runCli(args(root), { env: env() });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(statSync(join(root, 'etc/k0s/k0stoken')).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, 'etc/k0s')).mode & 0o777, 0o700);
    chmodSync(join(root, 'etc/k0s'), 0o755); // the directory alone
    assert.equal((await runCli(args(root), { env: env() })).code, 0);
    assert.equal(statSync(join(root, 'etc/k0s')).mode & 0o777, 0o700);
  });

  it('refuses a kernel without a required option, naming it and the fix', async () => {
    const root = workerRoot('amd64', kernelConfig(['NETFILTER_XT_MATCH_COMMENT']));
    roots.push(root);
    const before = treeHash(root);
    const res = await runCli(args(root), { env: env() });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /CONFIG_NETFILTER_XT_MATCH_COMMENT/);
    assert.match(res.stderr, /fix:/);
    const reason = res.stderr.trim().split('\n').at(-1)!.replace(/^pi-prep: /, '');
    assert.equal((res.stdout + res.stderr).split(reason).length - 1, 1, `the failure is printed once:\n${res.stdout}${res.stderr}`);
    assert.equal(treeHash(root), before);

    // Under --json the same failure is an envelope on stdout, with the run's report and the same exit code.
    const json = await runCli(args(root, '--json'), { env: env() });
    assert.equal(json.code, 1);
    const doc = parseEnvelope(json.stdout, 'linux');
    assert.equal(doc.ok, false);
    assert.equal(doc.error?.message, reason);
    assert.equal(doc.error?.exitCode, 1);
    assert.equal((doc.error?.report as { tasks: { status: string }[] }).tasks[0]!.status, 'blocked');
    assert.equal(treeHash(root), before);
  });

  describe('bad input and broken downloads: one line, right exit code, nothing installed', () => {
    const cases: { name: string; code: number; pattern: RegExp; setup: (root: string) => Promise<string[]> }[] = [
      {
        name: 'corrupt download', code: 1, pattern: /does not match its published SHA-256/,
        setup: async (root) => {
          const route = server.routes.get(`/${TAG}/k0s-${TAG}-amd64`)!;
          server.routes.set(`/${TAG}/k0s-${TAG}-amd64`, { body: Buffer.from(route.body).toString().replace('stand-in', 'tampered') });
          return args(root);
        },
      },
      {
        name: 'truncated download', code: 1, pattern: /ended early|broke off/,
        setup: async (root) => {
          const route = server.routes.get(`/${TAG}/k0s-${TAG}-amd64`)!;
          server.routes.set(`/${TAG}/k0s-${TAG}-amd64`, { body: route.body, truncateTo: 100 });
          return args(root);
        },
      },
      { name: 'unknown version (404)', code: 2, pattern: /HTTP 404.*--k0s-version/, setup: async (root) => [...args(root).slice(0, -2), '--k0s-version', 'v9.9.9+k0s.0'] },
      {
        name: 'unreachable mirror', code: 1, pattern: /cannot reach 127\.0\.0\.1:\d+ .*ECONNREFUSED/,
        setup: async (root) => ['linux', '--root', root, '--join', `@${tokenFile}`, '--k0s-mirror', `http://127.0.0.1:${await closedPort()}`, '--k0s-version', TAG],
      },
      { name: 'garbage token', code: 2, pattern: /join token is not base64/, setup: async (root) => ['linux', '--root', root, '--join', 'not a token!', '--k0s-mirror', server.url] },
      {
        name: 'controller token', code: 2, pattern: /controller token, not a worker token/,
        setup: async (root) => {
          const f = join(work, 'controller.token');
          writeFileSync(f, await sampleControllerToken());
          return ['linux', '--root', root, '--join', `@${f}`, '--k0s-mirror', server.url];
        },
      },
      { name: 'missing token file', code: 2, pattern: /cannot read the join token file/, setup: async (root) => ['linux', '--root', root, '--join', '@/nonexistent/token'] },
      { name: 'empty token file', code: 2, pattern: /is empty/, setup: async (root) => { const f = join(work, 'empty'); writeFileSync(f, '\n'); return ['linux', '--root', root, '--join', `@${f}`]; } },
      { name: 'unknown flag', code: 2, pattern: /unknown option '--frobnicate'/, setup: async (root) => [...args(root), '--frobnicate'] },
      { name: 'missing --join', code: 2, pattern: /needs --join/, setup: async (root) => ['linux', '--root', root] },
      { name: 'missing --root dir', code: 2, pattern: /--root \/nonexistent is not a directory/, setup: async () => ['linux', '--root', '/nonexistent', '--join', `@${tokenFile}`] },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const { server: fresh } = await k0sReleaseServer();
        const saved = server;
        server = fresh;
        try {
          const root = workerRoot('amd64');
          roots.push(root);
          const before = treeHash(root);
          const res = await runCli(await c.setup(root), { env: env() });
          assert.equal(res.code, c.code, `${res.stderr}${res.stdout}`);
          // Progress lines (listr's ✖) may precede it; the error itself is one line, and last.
          const errLines = res.stderr.trim().split('\n').filter((l) => l.startsWith('pi-prep:') && !l.startsWith('pi-prep: joining') && !l.includes('warning:'));
          assert.equal(errLines.length, 1, res.stderr);
          assert.match(errLines[0]!, c.pattern);
          assert.equal(res.stderr.trim().split('\n').at(-1), errLines[0]);
          assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
          // With --json: the same exit code, and the error as an envelope on stdout.
          const json = await runCli([...(await c.setup(root)), '--json'], { env: env() });
          assert.equal(json.code, c.code, json.stderr);
          const doc = parseEnvelope(json.stdout, 'linux');
          assert.equal(doc.ok, false);
          assert.match(doc.error!.message, c.pattern);
          assert.equal(doc.error!.exitCode, c.code);
          assert.equal(existsSync(join(root, 'usr/local/bin/k0s')), false, 'nothing installed');
          assert.equal(treeHash(root), before, 'root unchanged');
        } finally {
          await fresh.stop();
          server = saved;
        }
      });
    }
  });
});
