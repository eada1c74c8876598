import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, alpineTarball } from '../helpers/card-inspect.js';
import { runCli } from '../helpers/cli.js';
import { TAG, joinWorkspace, type JoinWorkspace } from '../helpers/k0s-release.js';
import { piRoot } from '../helpers/rpi-fixture.js';
import { removeRoot } from '../helpers/fixture-root.js';
import { copySources } from '../helpers/source-copy.js';

const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { name: string; version: string };
// Dependencies come from the npm cache `npm ci` filled; the registry only if the cache lacks one.
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

/**
 * What a user gets from npm: the package packed from a copy of the sources (so `prepare` builds
 * dist/ there, not under the running tests), installed into a temporary global prefix, and the
 * installed `pi-prep` run from a directory that has nothing to do with the repository.
 */
describe('the npm package, packed, installed with npm install -g, run from elsewhere', () => {
  let work: string;
  let tgz: string;
  let bin: string;
  let elsewhere: string;
  let ws: JoinWorkspace;
  const roots: string[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'pi-prep-package-'));
    const src = join(work, 'src');
    copySources(src);
    symlinkSync(join(REPO, 'node_modules'), join(src, 'node_modules'));
    const name = execFileSync('npm', ['pack', '--pack-destination', work, ...NPM_FLAGS], { cwd: src }).toString().trim().split('\n').at(-1)!;
    tgz = join(work, name);
    const prefix = join(work, 'prefix');
    execFileSync('npm', ['install', '--global', '--prefix', prefix, ...NPM_FLAGS, tgz], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
    bin = join(prefix, 'bin', 'pi-prep');
    elsewhere = join(work, 'elsewhere');
    mkdirSync(elsewhere);
    ws = await joinWorkspace('package');
  });
  after(async () => {
    await ws.stop();
    roots.forEach(removeRoot);
    rmSync(work, { recursive: true, force: true });
  });

  // Asynchronous: the k0s release server answers from this process.
  const run = (args: string[]) => runCli(args, { bin, cwd: elsewhere, env: { XDG_CACHE_HOME: join(work, 'cache') } });

  it('packs the built program, the docs, the schema, the kernel configs and the licence (prepare builds dist/)', () => {
    const listing = execFileSync('tar', ['tzf', tgz]).toString().split('\n');
    for (const f of ['package/dist/src/cli/main.js', 'package/dist/recipes/rpios.js', 'package/LICENSE', 'package/README.md', 'package/docs/troubleshooting.md', 'package/docs/json.md', 'package/schema/pi-prep.schema.json']) {
      assert.ok(listing.includes(f), `${f} in the package`);
    }
    assert.ok(listing.some((f) => f.startsWith('package/kernel-configs/') && f.endsWith('.config')));
    assert.ok(!listing.some((f) => f.includes('/test/') || f.startsWith('package/src/')), 'no tests or TypeScript sources');
    assert.match(readFileSync(join(work, 'prefix/lib/node_modules/pi-prep/LICENSE'), 'utf8'), /Apache License\s+Version 2\.0/);
  });

  it('--version and --help work, and the help names docs that exist in the installed copy', async () => {
    const v = await run(['--version']);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout.trim(), pkg.version);
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    const docs = help.stdout.match(/Docs: (\S+)/)?.[1];
    assert.ok(docs && existsSync(join(docs, 'rpios.md')), `docs directory named in --help: ${help.stdout}`);
  });

  it('npx runs the packed command, and npm install -g of a built clone links a working one', async () => {
    const npx = execFileSync('npx', ['--yes', '--package', tgz, ...NPM_FLAGS, 'pi-prep', '--version'], { cwd: elsewhere }).toString();
    assert.equal(npx.trim(), pkg.version);
    const linked = join(work, 'linked');
    execFileSync('npm', ['install', '--global', '--prefix', linked, ...NPM_FLAGS, join(work, 'src')], { cwd: elsewhere, stdio: ['ignore', 'ignore', 'pipe'] });
    const r = await runCli(['--version'], { bin: join(linked, 'bin', 'pi-prep'), cwd: elsewhere });
    assert.equal(r.stdout.trim(), pkg.version, r.stderr);
  });

  it('rpios --root --dry-run finds the kernel configs the package ships', async () => {
    const root = piRoot({ board: 'pi4' });
    roots.push(root);
    const r = await run(['rpios', '--root', root, '--dry-run', '--join', `@${ws.tokenFile}`, '--k0s-mirror', ws.server.url, '--k0s-version', TAG, '--kernel-repo', '/nonexistent/linux']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /has all \d+ options of kernel-configs\/ .*: no rebuild needed/);
    assert.match(r.stdout, /install k0s v1\.34\.1\+k0s\.0 \(arm64\)/);
    assert.match(r.stdout, /Nothing was changed\./);
  });

  it('alpine-sd onto an image path --dry-run plans the card and writes nothing', async () => {
    const img = join(elsewhere, 'pi.img');
    const r = await run(['alpine-sd', img, '--no-ssh', '--dry-run', '--size', '1G', '--tarball', alpineTarball()]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /# pi-prep alpine-sd \(dry run\)/);
    assert.ok(!existsSync(img), 'a dry run creates no image');
  });
});
