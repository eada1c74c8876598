import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The layers point one way (docs/architecture.md): a file may import its own layer or a lower one,
 * never a higher one. Read from the sources' own import lines, so a new import back up fails here.
 */
const LAYERS = ['src/core', 'src/targets', 'src/run', 'src/lib', 'src/steps', 'recipes', 'src/commands', 'src/fleet', 'src/cli'];

const repo = normalize(join(dirname(fileURLToPath(import.meta.url)), '../../..'));

function layerOf(file: string): number {
  const rel = relative(repo, file);
  const i = LAYERS.findIndex((l) => rel === l || rel.startsWith(l + '/'));
  assert.ok(i >= 0, `${rel} is in no layer: put it in one of ${LAYERS.join(', ')}`);
  return i;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports, static and dynamic (`import('../x.js')`), type-only ones included. */
function imports(file: string, text = readFileSync(file, 'utf8')): string[] {
  const found = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
  return found.map((spec) => normalize(join(dirname(file), spec.replace(/\.js$/, '.ts'))));
}

function upward(file: string, text?: string): string[] {
  return imports(file, text).filter((dep) => layerOf(dep) > layerOf(file)).map((dep) => `${relative(repo, file)} imports ${relative(repo, dep)}`);
}

describe('layers', () => {
  const files = [...sources(join(repo, 'src')), ...sources(join(repo, 'recipes'))];

  it('every source file is in a layer, and the layers are where they are said to be', () => {
    assert.ok(files.length > 50, `found ${files.length} sources under ${repo}`);
    for (const f of files) layerOf(f);
  });

  it('no file imports from a layer above its own', () => {
    assert.deepEqual(files.flatMap((f) => upward(f)), []);
  });

  it('libraries are told apart from task builders by place: nothing in src/lib makes or runs a task', () => {
    const lib = files.filter((f) => relative(repo, f).startsWith('src/lib/'));
    assert.ok(lib.length > 20, `found ${lib.length} libraries`);
    const tasky = lib.filter((f) => /\b(Task|RunContext)\b/.test(readFileSync(f, 'utf8')));
    assert.deepEqual(tasky.map((f) => relative(repo, f)), []);
  });

  it('sees every kind of import back up: type-only, dynamic, multi-line', () => {
    const text = [
      "import type { Task } from '../run/task.js';",
      'import {',
      '  x,',
      "} from '../steps/reboot.js';",
      "const m = await import('../cli/main.js');",
      "import { redact } from './redact.js';",
    ].join('\n');
    assert.deepEqual(upward(join(repo, 'src/core/example.ts'), text), [
      'src/core/example.ts imports src/run/task.ts',
      'src/core/example.ts imports src/steps/reboot.ts',
      'src/core/example.ts imports src/cli/main.ts',
    ]);
  });
});
