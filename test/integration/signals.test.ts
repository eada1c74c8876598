import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from '../helpers/until.js';
import { CLI } from '../helpers/cli.js';
import { TestHttpServer } from '../helpers/http-server.js';
import { alpineTarball } from '../helpers/card-inspect.js';
import { parseEnvelope } from '../helpers/json-contract.js';

const FILE = 'alpine-rpi-3.21.2-aarch64.tar.gz';

describe('signals end a run with the conventional code, one line and the cleanup of a failure', () => {
  let server: TestHttpServer;
  let work: string;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'pi-prep-signals-'));
    const body = readFileSync(alpineTarball());
    const sha = createHash('sha256').update(body).digest('hex');
    server = await new TestHttpServer().start();
    const yaml = `---\n- branch: v3.21\n  arch: aarch64\n  version: 3.21.2\n  flavor: alpine-rpi\n  file: ${FILE}\n  size: ${body.length}\n  sha256: ${sha}\n`;
    server.routes.set('/m/latest-stable/releases/aarch64/latest-releases.yaml', { body: yaml });
    // The tarball's first 64 KiB, then nothing: the run is held mid-download, its .part on disk.
    server.routes.set(`/m/latest-stable/releases/aarch64/${FILE}`, { body, stallAfter: 64 * 1024 });
  });
  after(async () => {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  });

  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) for (const json of [false, true]) {
    it(`${sig} during alpine-sd's download${json ? ' with --json' : ''}: exit ${code}, one line${json ? ', the error envelope on stdout' : ''}, no .part, no scratch directory, no image`, async () => {
      const dir = mkdtempSync(join(work, `${sig}-`));
      const [cache, tmp] = [join(dir, 'cache'), join(dir, 'tmp')];
      mkdirSync(tmp);
      const img = join(dir, 'card.img');
      const child = spawn(process.execPath, [CLI, 'alpine-sd', img, '--no-ssh', '--hostname', 'pi-t', '--alpine-version', 'latest', '--alpine-mirror', `${server.url}/m`, '--size', '600M', ...(json ? ['--json'] : [])], {
        env: { ...process.env, XDG_CACHE_HOME: cache, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let [stdout, stderr] = ['', ''];
      child.stderr.on('data', (d) => (stderr += d));
      child.stdout.on('data', (d) => (stdout += d));
      const exited = new Promise<number | null>((r) => child.on('close', (c, s) => r(c ?? (s ? -1 : null))));
      const alpineCache = join(cache, 'pi-prep', 'alpine');
      const parts = () => (existsSync(alpineCache) ? readdirSync(alpineCache).filter((n) => n.endsWith('.part')) : []);
      // The download comes first: the scratch directory is made after it (through the recorded
      // target), so none may exist or be left behind.
      await until(() => parts().length > 0, exited);
      child.kill(sig);
      assert.equal(await exited, code, stderr);
      const line = `stopped by ${sig}: temporary files removed; run the same command again to finish`;
      assert.equal(stderr, `pi-prep: ${line}\n`);
      if (json) assert.deepEqual(parseEnvelope(stdout, 'alpine-sd').error, { message: line, exitCode: code });
      else assert.equal(stdout.includes('{'), false, 'no JSON without --json');
      assert.deepEqual(parts(), []);
      assert.deepEqual(readdirSync(tmp), []);
      assert.equal(existsSync(img), false);
    });
  }
});
