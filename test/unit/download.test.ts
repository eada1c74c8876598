import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadVerified, type VerifiedDownload } from '../../src/core/download.js';
import { PiPrepError, TaskFailedError, UsageError } from '../../src/core/errors.js';
import { TestHttpServer } from '../helpers/http-server.js';
import { TestHttpProxy } from '../helpers/http-proxy.js';

/** The error a download threw: one line, of the expected class, never anything else. */
async function failure(p: Promise<unknown>, kind: typeof PiPrepError, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: Error) => {
    assert.ok(err instanceof kind, `${err.name}: ${err.message}`);
    assert.ok(!err.message.includes('\n'), err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('verified downloads', () => {
  let server: TestHttpServer;
  let dir: string;
  const body = Buffer.alloc(4 * 1024 * 1024, 7);
  const sha256 = createHash('sha256').update(body).digest('hex');
  before(async () => {
    server = await new TestHttpServer().start();
    server.routes.set('/k0s', { body });
    server.routes.set('/truncated', { body, truncateTo: 1024 * 1024 });
    server.routes.set('/endless', { body: Buffer.alloc(64 * 1024, 1), endless: true });
    server.routes.set('/stalled', { body, stallAfter: 64 * 1024 });
    dir = mkdtempSync(join(tmpdir(), 'pi-prep-dl-'));
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const spec = (path: string, dest: string, more: Partial<VerifiedDownload> = {}): VerifiedDownload => ({
    url: `${server.url}${path}`, sha256, dest, what: 'k0s', flagFor404: '--k0s-version', unchanged: 'nothing was installed', ...more,
  });

  it('parallel downloads of one file into one cache (a fleet) all succeed, and leave no temp files', async () => {
    const dest = join(dir, 'cache', sha256);
    const one = () => downloadVerified(spec('/k0s', dest));
    const paths = await Promise.all([one(), one(), one(), one()]);
    assert.deepEqual(paths, [dest, dest, dest, dest]);
    assert.equal(createHash('sha256').update(readFileSync(dest)).digest('hex'), sha256);
    assert.deepEqual(readdirSync(join(dir, 'cache')), [sha256]);
  });

  it('every fault (truncated, endless, stalled body, 404), 20 times each, ends in one line and leaves nothing', async () => {
    const cache = join(dir, 'faults');
    const dest = join(cache, sha256);
    for (let i = 0; i < 20; i++) {
      await failure(downloadVerified(spec('/truncated', dest)), TaskFailedError, /^the download of k0s broke off after \d+ bytes .*: nothing was installed; run again$/);
      await failure(downloadVerified(spec('/endless', dest, { maxBytes: 1024 * 1024 })), TaskFailedError, /sent more than 1048576 bytes for k0s/);
      // The stall is forever; only where it is noticed (headers or body) depends on the load.
      await failure(downloadVerified(spec('/stalled', dest, { idleMs: 200 })), TaskFailedError, /^(the download of k0s stalled: no data from 127\.0\.0\.1:\d+ for 0\.2 s after \d+ bytes: nothing was installed; check the network and run again|cannot reach 127\.0\.0\.1:\d+ for k0s \(no answer for 0\.2 s\).*)$/);
      await failure(downloadVerified(spec('/missing', dest)), UsageError, /not found .*HTTP 404.*--k0s-version/);
      assert.deepEqual(readdirSync(cache), [], `round ${i}`);
    }
  });

  it('a server announcing more than the release lists is refused before a byte is written', async () => {
    const cache = join(dir, 'announced');
    await failure(downloadVerified(spec('/k0s', join(cache, sha256), { size: 1000 })), TaskFailedError, /announces 4194304 bytes for k0s, more than the 1000 the release lists/);
    assert.deepEqual(readdirSync(cache), []);
  });

  it('a full disk is one line naming the directory, and the temp file is gone', async () => {
    const mnt = mkdtempSync(join(tmpdir(), 'pi-prep-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'pi-prep-test', mnt]);
    try {
      const cache = join(mnt, 'cache');
      await failure(downloadVerified(spec('/k0s', join(cache, sha256))), TaskFailedError, new RegExp(`^no space left in ${cache} for k0s \\(\\d+ bytes written\\): free space there or set XDG_CACHE_HOME to a larger disk; nothing was installed$`));
      assert.deepEqual(readdirSync(cache), []);
    } finally {
      execFileSync('umount', [mnt]);
      rmSync(mnt, { recursive: true });
    }
  });

  it('sweeps the temp files of runs that died, and leaves those of live runs', async () => {
    const cache = join(dir, 'stale');
    mkdirSync(cache);
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    const dead = `${sha256}.${pidMax + 1}-0badf00d.part`;
    const live = `${sha256}.${process.pid}-0badf00d.part`;
    writeFileSync(join(cache, dead), 'half');
    writeFileSync(join(cache, live), 'half');
    await downloadVerified(spec('/k0s', join(cache, sha256)));
    assert.deepEqual(readdirSync(cache).sort(), [sha256, live].sort());
  });

  describe('through a proxy', () => {
    let proxy: TestHttpProxy;
    const saved = { ...process.env };
    before(async () => {
      proxy = await new TestHttpProxy().start();
    });
    after(async () => {
      process.env = saved;
      await proxy.stop();
    });
    for (const name of ['HTTP_PROXY', 'http_proxy']) {
      it(`${name} routes the download through the proxy, which sees it`, async () => {
        process.env = { ...saved, [name]: proxy.url };
        delete process.env.NO_PROXY;
        delete process.env.no_proxy;
        proxy.tunnels.length = 0;
        const dest = join(dir, `proxied-${name}`, sha256);
        assert.equal(await downloadVerified(spec('/k0s', dest)), dest);
        assert.deepEqual(proxy.tunnels, [new URL(server.url).host]);
      });
    }
    for (const name of ['NO_PROXY', 'no_proxy']) {
      it(`${name} naming the host bypasses the proxy`, async () => {
        process.env = { ...saved, HTTP_PROXY: proxy.url, [name]: '127.0.0.1' };
        proxy.tunnels.length = 0;
        const dest = join(dir, `direct-${name}`, sha256);
        assert.equal(await downloadVerified(spec('/k0s', dest)), dest);
        assert.deepEqual(proxy.tunnels, []);
      });
    }
  });
});
