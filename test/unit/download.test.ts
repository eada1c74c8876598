import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadVerified } from '../../src/steps/download.js';
import { TestHttpServer } from '../helpers/http-server.js';

describe('verified downloads', () => {
  let server: TestHttpServer;
  let dir: string;
  const body = Buffer.alloc(4 * 1024 * 1024, 7);
  const sha256 = createHash('sha256').update(body).digest('hex');
  before(async () => {
    server = await new TestHttpServer().start();
    server.routes.set('/k0s', { body });
    dir = mkdtempSync(join(tmpdir(), 'pi-prep-dl-'));
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('parallel downloads of one file into one cache (a fleet) all succeed, and leave no temp files', async () => {
    const dest = join(dir, 'cache', sha256);
    const one = () => downloadVerified({ url: `${server.url}/k0s`, sha256, dest, what: 'k0s', flagFor404: '--k0s-version', unchanged: 'nothing was installed' });
    const paths = await Promise.all([one(), one(), one(), one()]);
    assert.deepEqual(paths, [dest, dest, dest, dest]);
    assert.equal(createHash('sha256').update(readFileSync(dest)).digest('hex'), sha256);
    assert.deepEqual(readdirSync(join(dir, 'cache')), [sha256]);
  });
});
