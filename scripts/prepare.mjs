// `npm run prepare`: build dist/. Plain JS, because it runs before anything is compiled.
// npm installs a package from git by running `npm install` in a clone, then `prepare`. For a
// global install (`npm install -g git+https://...`) that inner install inherits --global and does
// not install the devDependencies, so tsc is missing (npm/cli#8440): install them here first.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
const run = (args, env = process.env) => execFileSync(npm[0], [...npm.slice(1), ...args], { stdio: 'inherit', env });

if (!existsSync('node_modules/typescript/bin/tsc')) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_(global|prefix|location)$/i.test(k)));
  run(['install', '--no-save', '--include=dev', '--ignore-scripts', '--no-audit', '--no-fund'], env);
}
run(['run', 'build']);
