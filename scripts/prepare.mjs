// npm's `prepare` step: build dist/ (npm ci in a clone, npm pack, a project depending on pi-prep
// from git). Plain JavaScript: it runs before anything is compiled.
//
// A global install straight from a branch (`npm install -g git+https://...`) cannot work with npm
// 10 or 11: npm clones into its cache and runs `npm install` there with the outer --global, which
// installs no devDependencies (no tsc: npm/cli#8440) and links the global install to that clone,
// which npm deletes at the end (npm/cli#4148, #6984); with --install-links two npm processes
// unpack into the same directory at once (ENOTEMPTY). That inner install is the one run with
// --force in npm's cache: it is refused here at once, naming the way that works, a release tag,
// which carries the built program and no build step (scripts/release-tag.mjs).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';

const env = process.env;
const cache = env.npm_config_cache;
const inGitClone = Boolean(cache) && resolve(process.cwd()).startsWith(join(resolve(cache), '_cacache', 'tmp') + sep);

if (inGitClone && env.npm_config_global === 'true' && env.npm_config_force === 'true') {
  const { version, repository } = JSON.parse(readFileSync('package.json', 'utf8'));
  const url = String(repository?.url ?? 'git+https://github.com/pi-prep/pi-prep.git');
  process.stderr.write(
    `pi-prep: npm cannot build a global install from a git branch (npm/cli#8440, #4148): ` +
      `install a release tag, which carries the built program: npm install -g ${url}#v${version}\n`,
  );
  process.exit(1);
}

const npm = env.npm_execpath ? [process.execPath, env.npm_execpath] : ['npm'];
execFileSync(npm[0], [...npm.slice(1), 'run', 'build'], { stdio: 'inherit' });
