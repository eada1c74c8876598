import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

const COMMANDS = ['check', 'linux', 'rpios', 'alpine', 'alpine-sd', 'disks', 'token', 'kubeconfig', 'completion'];

describe('help and shell habits', () => {
  it('every command\'s --help ends with examples and a docs page that exists; no internal words', async () => {
    const top = await runCli(['--help']);
    assert.equal(top.code, 0);
    const dir = top.stdout.match(/^Docs: (\S+)/m)?.[1];
    assert.ok(dir && existsSync(join(dir, 'json.md')), top.stdout);
    for (const c of COMMANDS) {
      const r = await runCli([c, '--help']);
      assert.equal(r.code, 0, r.stderr);
      const [, examples, page] = r.stdout.match(/\nExamples:\n((?: {2}pi-prep .*\n| {2}sudo pi-prep .*\n){2,3})\nDocs: (\S+) \(online: https:\/\/\S+\)\n$/) ?? [];
      assert.ok(examples && page, `${c} --help ends with 2-3 examples and the docs:\n${r.stdout}`);
      assert.ok(existsSync(page!), `${c}: ${page} exists`);
      assert.doesNotMatch(r.stdout, /\bseed\b/i, `${c} --help speaks of "the seed"`);
    }
    assert.doesNotMatch(top.stdout, /\bseed\b/i);
  });

  it('completion bash completes commands, flags and choices when bash asks', async () => {
    const r = await runCli(['completion', 'bash']);
    assert.equal(r.code, 0, r.stderr);
    const dir = mkdtempSync(join(tmpdir(), 'pi-prep-completion-'));
    try {
      const script = join(dir, 'pi-prep.bash');
      writeFileSync(script, r.stdout);
      // What bash does on TAB: set COMP_WORDS/COMP_CWORD, call the function, read COMPREPLY.
      const complete = (...words: string[]) =>
        execFileSync('bash', ['-c', `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _pi_prep; printf '%s\\n' "\${COMPREPLY[@]}"`, script, 'pi-prep', ...words])
          .toString().trim().split('\n').filter(Boolean);
      assert.deepEqual(complete('al'), ['alpine', 'alpine-sd']);
      assert.deepEqual(complete('rpios', '--kernel', ''), ['auto', 'rebuild', 'skip']);
      assert.ok(complete('alpine-sd', '--ss').includes('--ssh-key'));
      assert.deepEqual(complete('completion', ''), ['bash', 'zsh', 'fish']);
      assert.deepEqual(complete('check', '--root', ''), [], 'a path: left to bash');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    for (const shell of ['zsh', 'fish']) {
      const s = await runCli(['completion', shell]);
      assert.equal(s.code, 0, s.stderr);
      for (const c of COMMANDS) assert.ok(s.stdout.includes(c), `${shell} completes ${c}`);
    }
    const bad = await runCli(['completion', 'tcsh']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /'tcsh' is invalid for argument 'shell'. Allowed choices are bash, zsh, fish/);
  });
});
