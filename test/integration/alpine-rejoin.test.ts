import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { TAG, sampleWorkerToken } from '../helpers/k0s-release.js';
import type { TestHttpServer } from '../helpers/http-server.js';
import { encodeJoinToken } from '../../src/lib/k0s/token.js';
import { SimAlpinePi } from '../helpers/pi-sim/alpine-pi.js';
import { setupAlpineCard } from '../helpers/pi-sim/alpine-card.js';
import { simK0sRelease } from '../helpers/pi-sim/release.js';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

describe('pi-prep alpine on a running diskless Alpine (boot simulator): reboots, k0s reset, a new token', () => {
  let server: TestHttpServer;
  let work: string;
  let pi: SimAlpinePi;

  before(async () => {
    server = await simK0sRelease();
    work = mkdtempSync(join(tmpdir(), 'pi-prep-rejoin-'));
  });
  after(async () => {
    pi?.destroy();
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const run = (tokenFile: string) => runCli(['alpine', '--root', pi.root, '--join', `@${tokenFile}`, '--k0s-mirror', server.url, '--k0s-version', TAG]);
  const kubeletConf = () => pi.chroot(['/bin/cat', '/var/lib/k0s/kubelet.conf']).stdout;

  it('joins across the reboot it needs, stays a worker over reboots, and joins again with a new token after k0s reset', async () => {
    const token1 = (await sampleWorkerToken()) + '\n';
    const token2 = (await encodeJoinToken({ server: 'https://127.0.0.1:6443', user: 'kubelet-bootstrap', token: 'zyxwvu.9876543210fedcba' })) + '\n';
    const t1 = join(work, 'one.token');
    const t2 = join(work, 'two.token');
    writeFileSync(t1, token1, { mode: 0o600 });
    writeFileSync(t2, token2, { mode: 0o600 });

    pi = new SimAlpinePi({ image: setupAlpineCard(work) });
    assert.deepEqual(pi.boot().errors, [], 'the setup-alpine card boots');

    const first = await run(t1);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    assert.match(first.stdout, /boot the Pi from it, then run the same command again/);
    const b2 = pi.reboot();
    assert.deepEqual(b2.errors, [], 'boot after the preparation');
    assert.match(readFileSync(join(pi.root, 'proc/mounts'), 'utf8'), /^\/dev\/mmcblk0p2 \/media\/k0s-data ext4 .*\n\/dev\/mmcblk0p2 \/var\/lib\/k0s ext4 /m);

    const second = await run(t1);
    assert.equal(second.code, 0, second.stderr + second.stdout);
    assert.ok(pi.calls().some((c) => c.join(' ') === 'rc-service k0sworker start'), 'started the OpenRC way');
    assert.ok(!pi.calls().some((c) => c[0] === 'k0s' && c[1] === 'start'), 'not with k0s start (k0s issue 4212)');
    pi.runJobs();
    assert.ok(pi.workerRunning(), 'the worker runs');
    for (let i = 0; i < 2; i++) {
      const b = pi.reboot();
      assert.deepEqual(b.errors, [], `boot ${b.n}`);
      assert.deepEqual(b.missingPackages, [], `boot ${b.n}: the packages come back from the cache on the card`);
      assert.ok(pi.workerRunning(), `boot ${b.n}: the worker runs`);
    }
    assert.match(kubeletConf(), new RegExp(md5(token1)));

    // k0s reset (stopped first, as k0s requires), then a reboot without lbu commit: the overlay
    // still brings the service back, and the controller no longer accepts the first token.
    assert.equal(pi.chroot(['/sbin/rc-service', 'k0sworker', 'stop']).status, 0);
    const reset = pi.chroot(['/media/k0s-data/pi-prep/k0s', 'reset']);
    assert.equal(reset.status, 0, reset.stderr);
    assert.equal(kubeletConf(), '', 'reset emptied the data dir');
    assert.ok(existsSync(join(pi.root, 'media/k0s-data/pi-prep/k0s')) && existsSync(join(pi.root, 'media/k0s-data/pi-prep/join.token')), 'binary and token survive the reset');
    pi.acceptedTokens = [md5(token2)];
    const b = pi.reboot();
    assert.ok(!pi.workerRunning(), 'the old token is refused');
    assert.match(b.errors.join('\n'), /k0sworker/);

    const again = await run(t2);
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.equal(readFileSync(join(pi.root, 'media/k0s-data/pi-prep/join.token'), 'utf8'), token2);
    assert.equal(statSync(join(pi.root, 'media/k0s-data/pi-prep/join.token')).mode & 0o777, 0o600);
    pi.runJobs();
    assert.ok(pi.workerRunning(), 'joined again');
    assert.match(kubeletConf(), new RegExp(md5(token2)));
    const last = pi.reboot();
    assert.deepEqual(last.errors, []);
    assert.ok(pi.workerRunning(), 'and stays a worker');
    assert.ok(!(first.stdout + second.stdout + again.stdout).includes(token2.trim()) && !(first.stdout + second.stdout).includes(token1.trim()), 'no token in the output');
  });
});
