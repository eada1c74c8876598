// `npm run release-tag`: tag vVERSION on a commit that carries the built program, so that
// `npm install -g git+https://...#vVERSION` works with every npm (scripts/prepare.mjs says why a
// branch cannot). The commit is HEAD's tree plus dist/src and dist/recipes, built here from that
// tree, with the scripts that make npm prepare a git dependency removed from package.json: npm
// then installs the tagged tree as it is, like a tarball. It is a child of HEAD, on no branch;
// the work tree is not touched (built in a temporary git worktree). Push it: git push origin vVERSION.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

// The lifecycle scripts for which npm (pacote) prepares a git dependency before packing it.
const PREPARING = ['prepare', 'prepack', 'build', 'preinstall', 'install', 'postinstall'];

const repo = resolve(process.argv[2] ?? '.');
const git = (args, cwd = repo) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
const { version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const tag = `v${version}`;
if (git(['tag', '--list', tag])) {
  process.stderr.write(`release-tag: ${tag} exists already: raise the version in package.json first\n`);
  process.exit(2);
}
if (!existsSync(join(repo, 'node_modules/typescript/bin/tsc'))) {
  process.stderr.write('release-tag: no build tools in node_modules: run npm ci first\n');
  process.exit(2);
}

const tree = mkdtempSync(join(tmpdir(), 'pi-prep-release-'));
try {
  git(['worktree', 'add', '--quiet', '--detach', tree, 'HEAD']);
  symlinkSync(join(repo, 'node_modules'), join(tree, 'node_modules'));
  execFileSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: tree, stdio: 'inherit' });
  const pkg = JSON.parse(readFileSync(join(tree, 'package.json'), 'utf8'));
  for (const s of PREPARING) delete pkg.scripts?.[s];
  writeFileSync(join(tree, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
  git(['add', '--force', 'package.json', 'dist/src', 'dist/recipes'], tree);
  git(['commit', '--quiet', '--no-verify', '-m', `release ${tag}: the built program, for npm install -g from git`], tree);
  git(['tag', tag, 'HEAD'], tree);
  process.stdout.write(`tagged ${tag} (${git(['rev-parse', '--short', tag])}): push it with git push origin ${tag}\n`);
} finally {
  execFileSync('git', ['worktree', 'remove', '--force', tree], { cwd: repo, stdio: 'ignore' });
  rmSync(tree, { recursive: true, force: true });
}
