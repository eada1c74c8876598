import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../core/errors.js';
import { isEnabled, type KernelConfig } from '../../targets/probes/kernel-config.js';

/** kernel-configs/ shipped with pi-prep (the package root, from dist/src/lib/kernel). */
export const FRAGMENT_DIR = fileURLToPath(new URL('../../../../kernel-configs/', import.meta.url));

/** The options pi-prep asks for, in order; later fragments override earlier ones. */
export interface Fragment {
  files: string[];
  options: Map<string, string>;
}

/** Parse `CONFIG_X=v` and `# CONFIG_X is not set` lines; anything else but comments is an error. */
export function parseFragment(text: string, name: string, into = new Map<string, string>()): Map<string, string> {
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const set = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(line);
    const unset = /^# CONFIG_([A-Za-z0-9_]+) is not set$/.exec(line);
    if (set) into.set(set[1]!, set[2]!);
    else if (unset) into.set(unset[1]!, 'n');
    else if (line && !line.startsWith('#')) throw new UsageError(`${name}:${i + 1}: not a kconfig line (CONFIG_X=y or # CONFIG_X is not set): fix the fragment`);
  });
  return into;
}

/** kernel-configs/*.config, then any --kernel-fragment files. */
export function loadFragments(extra: string[] = [], dir = FRAGMENT_DIR): Fragment {
  const shipped = readdirSync(dir).filter((f) => f.endsWith('.config')).sort().map((f) => join(dir, f));
  const files = [...shipped, ...extra];
  const options = new Map<string, string>();
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      throw new UsageError(`cannot read kernel config fragment ${f}: check the --kernel-fragment path`);
    }
    parseFragment(text, basename(f), options);
  }
  return { files, options };
}

/** Options of the fragment the running kernel lacks (y or m passes, as k0s sysinfo counts). */
export function missingOptions(frag: Fragment, running: KernelConfig): string[] {
  return [...frag.options].filter(([k, v]) => (v === 'y' || v === 'm') && !isEnabled(running, k)).map(([k]) => `CONFIG_${k}`);
}

/** scripts/config arguments that set every option of the fragment. */
export function scriptsConfigArgs(frag: Fragment, localVersion: string): string[] {
  const args: string[] = [];
  for (const [k, v] of frag.options) {
    if (v === 'y') args.push('--enable', k);
    else if (v === 'm') args.push('--module', k);
    else if (v === 'n') args.push('--disable', k);
    else if (/^".*"$/.test(v)) args.push('--set-str', k, v.slice(1, -1));
    else args.push('--set-val', k, v);
  }
  // Our own release name, so the build's modules live beside the packaged ones, never over them.
  args.push('--set-str', 'LOCALVERSION', localVersion, '--disable', 'LOCALVERSION_AUTO');
  return args;
}

/**
 * Options that did not survive olddefconfig. y asked and m got counts (a dependency that is a
 * module caps it, and k0s accepts m); m asked and y got is stronger, fine too.
 */
export function droppedOptions(frag: Fragment, merged: KernelConfig): string[] {
  const out: string[] = [];
  for (const [k, v] of frag.options) {
    const got = merged.get(k) ?? 'n';
    const ok = v === 'y' || v === 'm' ? got === 'y' || got === 'm' : got === v;
    if (!ok) out.push(k);
  }
  return out;
}
