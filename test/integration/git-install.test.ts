import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, alpineTarball } from '../helpers/card-inspect.js';
import { runCli } from '../helpers/cli.js';
import { copySources } from '../helpers/source-copy.js';

const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
// Dependencies from the npm cache `npm ci` filled; npm may still ask the registry for metadata.
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];
const IDENTITY = { GIT_AUTHOR_NAME: 'test', GIT_AUTHOR_EMAIL: 'test@pi-prep.invalid', GIT_COMMITTER_NAME: 'test', GIT_COMMITTER_EMAIL: 'test@pi-prep.invalid' };

/**
 * `npm install -g` from a git URL, as a user without a clone would: a repository made from the
 * sources (a fresh clone has no dist/), tagged with `npm run release-tag` as a maintainer does,
 * installed by URL into a temporary global prefix, the command run from an unrelated directory.
 */
describe('npm install -g from git', () => {
  let work: string;
  let repo: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'pi-prep-git-install-'));
    repo = join(work, 'repo');
    copySources(repo);
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, stdio: 'ignore', env: { ...process.env, ...IDENTITY } });
    git('init', '-q');
    git('add', '-A');
    git('commit', '-q', '-m', 'the sources');
    // The maintainer's clone has its build tools (npm ci); a user's install does not use them.
    symlinkSync(join(REPO, 'node_modules'), join(repo, 'node_modules'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const install = (prefix: string, ref = '') =>
    spawnSync('npm', ['install', '--global', '--prefix', prefix, ...NPM_FLAGS, `git+file://${repo}${ref}`], { cwd: work, encoding: 'utf8' });

  it('from a branch: fails at once naming the release tag to install, and leaves no dangling command', () => {
    const prefix = join(work, 'branch');
    const r = install(prefix);
    assert.notEqual(r.status, 0, 'npm 10/11 would link the install to a clone it deletes: refused');
    assert.ok(r.stderr.includes(`pi-prep: npm cannot build a global install from a git branch (npm/cli#8440, #4148): install a release tag, which carries the built program: npm install -g git+https://github.com/pi-prep/pi-prep.git#v${pkg.version}`), r.stderr);
    assert.equal(existsSync(join(prefix, 'bin', 'pi-prep')), false);
    assert.equal(lstatSync(join(prefix, 'lib', 'node_modules', 'pi-prep'), { throwIfNoEntry: false }), undefined, 'no link to a deleted clone');
  });

  it('from a release tag: installs a copy of the built program that runs from anywhere', async () => {
    const tagged = spawnSync(process.execPath, ['scripts/release-tag.mjs'], { cwd: repo, encoding: 'utf8', env: { ...process.env, ...IDENTITY } });
    assert.equal(tagged.status, 0, tagged.stderr);
    assert.match(tagged.stdout, new RegExp(`^tagged v${pkg.version.replace(/\./g, '\\.')} \\(\\w+\\): push it with git push origin v`));
    assert.equal(execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repo, encoding: 'utf8' }), '', 'the work tree is untouched');
    const prefix = join(work, 'tag');
    const r = install(prefix, `#v${pkg.version}`);
    assert.equal(r.status, 0, r.stderr);
    const installed = join(prefix, 'lib', 'node_modules', 'pi-prep');
    assert.ok(lstatSync(installed).isDirectory(), 'a real directory, not a link');
    const elsewhere = join(work, 'elsewhere');
    mkdirSync(elsewhere);
    const bin = join(prefix, 'bin', 'pi-prep');
    const v = await runCli(['--version'], { bin, cwd: elsewhere });
    assert.equal(v.stdout.trim(), pkg.version, v.stderr);
    const img = join(elsewhere, 'pi.img');
    const dry = await runCli(['alpine-sd', img, '--no-ssh', '--dry-run', '--size', '1G', '--tarball', alpineTarball()], {
      bin, cwd: elsewhere, env: { XDG_CACHE_HOME: join(work, 'cache') },
    });
    assert.equal(dry.code, 0, dry.stderr + dry.stdout);
    assert.match(dry.stdout, /# pi-prep alpine-sd \(dry run\)/);
    assert.ok(!existsSync(img), 'a dry run creates no image');
  });
});
