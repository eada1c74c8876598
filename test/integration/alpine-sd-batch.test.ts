import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { parseEnvelope } from '../helpers/json-contract.js';
import { TAG, joinWorkspace, type JoinWorkspace } from '../helpers/k0s-release.js';
import { encodeJoinToken } from '../../src/lib/k0s/token.js';
import { alpineTarball, bootFile, bootFiles, debugfs, e2fsck, fsckVfat, partitions, sha256, sh } from '../helpers/card-inspect.js';

const M = 1024 * 1024;
const BOOT = 4 * M;
const DATA = 260 * M;

describe('pi-prep alpine-sd: a finished card is left alone; one build, many cards', () => {
  let ws: JoinWorkspace;
  let tarball: string;
  let keyFile: string;
  const loops: string[] = [];
  before(async () => {
    ws = await joinWorkspace('sd-batch');
    tarball = alpineTarball();
    keyFile = join(ws.work, 'id.pub');
    writeFileSync(keyFile, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMhg0pHc9Q1bqmKq2u9lqv1t8bq5cP0E9g0k8Vt1x5oN me@laptop\n');
  });
  after(async () => {
    for (const l of loops) execFileSync('losetup', ['-d', l], { stdio: 'ignore' });
    await ws.stop();
  });

  const join_ = (tokenFile = ws.tokenFile) => ['--join', `@${tokenFile}`, '--k0s-mirror', ws.server.url, '--k0s-version', TAG];
  const card = (img: string, ...more: string[]) => ['alpine-sd', img, '--tarball', tarball, '--size', '600M', '--ssh-key', keyFile, ...more];
  const env = () => ({ XDG_CACHE_HOME: join(ws.work, 'cache') });
  const tasks = (stdout: string) => JSON.parse(stdout).data.tasks as { id: string; status: string; why: string; actions: unknown[] }[];

  it('a re-run against a finished card reports each part as already right and changes no byte; a dry run is a verify-only run', async () => {
    const img = join(ws.work, 'done.img');
    const first = await runCli(card(img, '--hostname', 'pi-a', ...join_()), { env: env() });
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const before = sha256(img);
    const again = await runCli(card(img, '--hostname', 'pi-a', ...join_(), '--json'), { env: env() });
    assert.equal(again.code, 0, again.stderr);
    const t = tasks(again.stdout);
    assert.deepEqual(t.filter((x) => x.status !== 'done').map((x) => x.id), [], 'every task is done');
    assert.deepEqual(t.flatMap((x) => x.actions), [], 'nothing was run or written');
    assert.match(t.find((x) => x.id === 'erase-table')!.why, /already as planned: nothing is erased/);
    assert.match(t.find((x) => x.id === 'boot-fs')!.why, /\d+ files read back with their SHA-256, pi-a\.apkovl\.tar\.gz as planned/);
    assert.match(t.find((x) => x.id === 'data-fs')!.why, /ext4 "k0s-data", e2fsck clean, k0s and the join token \(0600\) as planned/);
    assert.match(t.find((x) => x.id === 'partition-table')!.why, /MBR as planned/);
    assert.equal(sha256(img), before, 'the finished card was written again');
    const verify = await runCli(card(img, '--hostname', 'pi-a', ...join_(), '--dry-run'), { env: env() });
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /11 done, 0 would run\. Nothing was changed\./);
  });

  it('the identity differs (another token, another host name) or a file is damaged: not done, rewritten whole', async () => {
    const img = join(ws.work, 'done.img');
    // Another token: the card would join another way.
    const other = join(ws.work, 'other.token');
    writeFileSync(other, (await encodeJoinToken({ server: 'https://127.0.0.1:6443', user: 'kubelet-bootstrap', token: 'zzzzzz.0123456789zzzzzz' })) + '\n', { mode: 0o600 });
    const dry = await runCli(card(img, '--hostname', 'pi-a', ...join_(other), '--dry-run', '--json'), { env: env() });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(tasks(dry.stdout).find((x) => x.id === 'data-fs')!.why, /another join token/);
    assert.equal(tasks(dry.stdout).find((x) => x.id === 'erase-table')!.status, 'would-run');
    assert.ok(!dry.stdout.includes('zzzzzz'), 'the token leaked into the plan');
    const r = await runCli(card(img, '--hostname', 'pi-a', ...join_(other)), { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(debugfs(img, DATA, 'cat /pi-prep/join.token'), readFileSync(other, 'utf8'));
    // Another host name: another card.
    const renamed = await runCli(card(img, '--hostname', 'pi-b', ...join_(other), '--dry-run', '--json'), { env: env() });
    assert.match(tasks(renamed.stdout).find((x) => x.id === 'boot-fs')!.why, /another overlay, pi-a\.apkovl\.tar\.gz/);
    // One damaged boot file (a failing card, a hand edit): found by its SHA-256, the card is rewritten.
    const bad = join(ws.work, 'config.txt');
    writeFileSync(bad, 'edited by hand\n');
    execFileSync('mcopy', ['-o', '-i', `${img}@@${BOOT}`, bad, '::config.txt'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
    const fixed = await runCli(card(img, '--hostname', 'pi-a', ...join_(other), '--json'), { env: env() });
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.match(tasks(fixed.stdout).find((x) => x.id === 'boot-fs')!.why, /config\.txt differs/);
    assert.notEqual(bootFile(img, BOOT, 'config.txt').toString(), 'edited by hand\n');
  });

  it('a batch: one extraction, each image its own host name and overlay, each verified; a re-run leaves them all alone', async () => {
    const dir = mkdtempSync(join(ws.work, 'batch-'));
    const log = join(dir, 'run.log');
    const r = await runCli(card(join(dir, 'pi-{n}.img'), '--count', '3', '--hostname', 'pi-{n}', ...join_(), '--log-file', log), { env: env() });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stderr, /card 2 of 3: \S+pi-2\.img \(pi-2\)/);
    const text = readFileSync(log, 'utf8');
    assert.equal(text.match(/run `tar -x -f /g)?.length, 1, 'the tarball was extracted more than once');
    assert.equal(text.match(/write \S+join\.token \(contents redacted, mode 0600\)/g)?.length, 1, 'the data contents were made more than once');
    assert.equal(text.match(/read back \d+ files \(\d+ bytes\): every SHA-256 matches/g)?.length, 3, 'each card is verified');
    for (const n of [1, 2, 3]) {
      const img = join(dir, `pi-${n}.img`);
      assert.equal(partitions(img).length, 2);
      assert.match(fsckVfat(img, BOOT, 256 * M), /files/);
      assert.match(e2fsck(img, DATA), /k0s-data/);
      const names = [...bootFiles(img, BOOT).keys()].filter((p) => p.endsWith('.apkovl.tar.gz'));
      assert.deepEqual(names, [`pi-${n}.apkovl.tar.gz`]);
      const hostname = execFileSync('tar', ['-xzOf', '-', 'etc/hostname'], { input: bootFile(img, BOOT, names[0]!) }).toString();
      assert.equal(hostname, `pi-${n}\n`);
      assert.equal(debugfs(img, DATA, 'cat /pi-prep/join.token'), readFileSync(ws.tokenFile, 'utf8'));
    }
    const hashes = [1, 2, 3].map((n) => sha256(join(dir, `pi-${n}.img`)));
    const again = await runCli(card(join(dir, 'pi-{n}.img'), '--count', '3', '--hostname', 'pi-{n}', ...join_()), { env: env() });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.match(/11 already done, 0 changed\./g)?.length, 3, again.stdout);
    assert.deepEqual([1, 2, 3].map((n) => sha256(join(dir, `pi-${n}.img`))), hashes);
  });

  it('a card that fails fails the batch (exit 1); the card written beside it still finishes and verifies', async () => {
    const dir = mkdtempSync(join(ws.work, 'fail-'));
    // The second card's image lives on a tiny tmpfs: its boot files cannot fit (ENOSPC in mcopy).
    const small = join(dir, 'small');
    execFileSync('mkdir', [small]);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'pi-prep-test', small]);
    try {
      const [a, bad, c] = [join(dir, 'a.img'), join(small, 'bad.img'), join(dir, 'c.img')];
      const r = await runCli(['alpine-sd', a, bad, c, '--tarball', tarball, '--no-ssh', '--size', '600M', '--hostname', 'pi-{n}', '--json'], { env: env() });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^pi-prep: .*mcopy/m);
      // One envelope for the batch (not one per card): each card's outcome, in order.
      const doc = parseEnvelope(r.stdout, 'alpine-sd');
      assert.equal(doc.ok, false);
      const cards = (doc.data as { cards: { target: string; hostname: string; exitCode: number; error?: string; report?: { ok: boolean } }[] }).cards;
      assert.deepEqual(cards.map((x) => [x.target, x.hostname, x.exitCode]), [[a, 'pi-1', 0], [bad, 'pi-2', 1], [c, 'pi-3', 0]]);
      assert.match(cards[1]!.error!, /mcopy/);
      assert.equal(cards[2]!.report!.ok, true);
      assert.equal(partitions(a).length, 2, 'the first card is finished');
      assert.equal(partitions(c).length, 2, 'the card written beside the failed one is finished');
      assert.match(e2fsck(c, DATA), /k0s-data/);
      assert.deepEqual(partitions(bad), [], 'the failed card has no valid partition table');
    } finally {
      execFileSync('umount', [small]);
    }
  });

  it('two cards with one host name, the same card twice, a miscount: exit 2 before anything is written', async () => {
    const dir = mkdtempSync(join(ws.work, 'clash-'));
    const a = join(dir, 'a.img');
    const b = join(dir, 'b.img');
    const cases: [string[], RegExp][] = [
      [['alpine-sd', a, b, '--hostname', 'same'], /would name all 2 cards the same.*--hostname 'same-\{n\}'/],
      [['alpine-sd', a, b, '--hostname', 'x', '--hostname', 'X'], /two cards would both be named x/],
      [['alpine-sd', a, b, '--hostname', 'x', '--hostname', 'y', '--hostname', 'z'], /3 --hostname values for 2 card/],
      [['alpine-sd', join(dir, 'pi-{n}.img'), '--hostname', 'pi'], /holds \{n\}: add --count N/],
      [['alpine-sd', a, join(dir, '.', 'a.img'), '--hostname', 'pi-{n}'], /given twice in one batch/],
    ];
    for (const [argv, re] of cases) {
      const r = await runCli([...argv, '--tarball', tarball, '--no-ssh', '--size', '600M']);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    assert.deepEqual(readdirSync(dir), [], 'a refused batch created a file');
  });

  it('a batch onto two loop devices (--loop --yes, each named exactly)', async () => {
    const devs = [1, 2].map((n) => {
      const img = join(ws.work, `loop-${n}.img`);
      sh('truncate', ['-s', '640M', img]);
      const dev = sh('losetup', ['-f', '--show', img]).trim();
      loops.push(dev);
      return dev;
    });
    const r = await runCli(['alpine-sd', ...devs, '--no-ssh', '--loop', '--yes', '--tarball', tarball, '--hostname', 'node-{n}'], { env: env() });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    for (const [i, dev] of devs.entries()) {
      assert.deepEqual(partitions(dev).map((p) => [p.start, p.type]), [[8192, 'c'], [532480, '83']]);
      assert.ok(bootFiles(dev, BOOT).has(`node-${i + 1}.apkovl.tar.gz`));
      assert.match(e2fsck(dev, DATA), /k0s-data/);
    }
  });
});
