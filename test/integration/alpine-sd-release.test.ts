import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { runCli } from '../helpers/cli.js';
import { TestHttpServer } from '../helpers/http-server.js';
import { alpineTarball, partitions } from '../helpers/card-inspect.js';

const FILE = 'alpine-rpi-3.21.2-aarch64.tar.gz';

describe('pi-prep alpine-sd --alpine-version (latest-releases.yaml on a local mirror)', () => {
  let server: TestHttpServer;
  let work: string;
  let body: Buffer;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'pi-prep-sd-rel-'));
    body = readFileSync(alpineTarball());
    const sha = createHash('sha256').update(body).digest('hex');
    server = await new TestHttpServer().start();
    const yaml = (s: string) => `---\n- title: "Raspberry Pi"\n  branch: v3.21\n  arch: aarch64\n  version: 3.21.2\n  flavor: alpine-rpi\n  file: ${FILE}\n  size: ${body.length}\n  sha256: ${s}\n- flavor: alpine-standard\n  arch: aarch64\n  version: 3.21.2\n  file: other.iso\n  sha256: ${'0'.repeat(64)}\n`;
    server.routes.set('/good/latest-stable/releases/aarch64/latest-releases.yaml', { body: yaml(sha) });
    server.routes.set(`/good/latest-stable/releases/aarch64/${FILE}`, { body });
    server.routes.set('/bad/latest-stable/releases/aarch64/latest-releases.yaml', { body: yaml('f'.repeat(64)) });
    server.routes.set(`/bad/latest-stable/releases/aarch64/${FILE}`, { body });
  });
  after(async () => {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('downloads the alpine-rpi aarch64 entry, checks its SHA-256, caches it, and writes the card', async () => {
    const cache = mkdtempSync(join(work, 'cache-'));
    const img = join(work, 'rel.img');
    const r = await runCli(['alpine-sd', img, '--no-ssh', '--alpine-version', 'latest', '--alpine-mirror', `${server.url}/good`, '--size', '600M'], { env: { XDG_CACHE_HOME: cache } });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(partitions(img).length, 2);
    assert.ok(existsSync(join(cache, 'pi-prep', 'alpine', FILE)));
    const gets = server.requests.filter((p) => p.endsWith(FILE)).length;
    const again = await runCli(['alpine-sd', img, '--no-ssh', '--alpine-version', 'latest', '--alpine-mirror', `${server.url}/good`, '--size', '600M'], { env: { XDG_CACHE_HOME: cache } });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(server.requests.filter((p) => p.endsWith(FILE)).length, gets, 'the cached copy was downloaded again');
  });

  it('a checksum mismatch stops the run (exit 1) before anything is written', async () => {
    const img = join(work, 'bad.img');
    const r = await runCli(['alpine-sd', img, '--no-ssh', '--alpine-version', 'latest', '--alpine-mirror', `${server.url}/bad`, '--size', '600M'], { env: { XDG_CACHE_HOME: mkdtempSync(join(work, 'cache-')) } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /does not match its published SHA-256/);
    assert.equal(existsSync(img), false);
  });

  it('a version the mirror does not have is bad input (exit 2)', async () => {
    const r = await runCli(['alpine-sd', join(work, 'x.img'), '--no-ssh', '--alpine-version', '3.99.0', '--alpine-mirror', `${server.url}/good`, '--dry-run']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--alpine-version/);
  });
});
