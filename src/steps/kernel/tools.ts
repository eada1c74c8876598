import { posix } from 'node:path';
import { done, todo, type Task } from '../../run/task.js';
import type { Target } from '../../targets/target.js';
import type { Builder } from './builder.js';

export const BUILD_DEPS = ['git', 'bc', 'bison', 'flex', 'libssl-dev', 'make', 'gcc'];

/** The Pi builds its own kernel: apt-get installs what is missing. */
export function nodeToolsTask(): Task {
  return {
    id: 'kernel-tools',
    title: 'Kernel check (kernel-configs/) and build tools',
    async check(ctx) {
      const r = await ctx.target.run(['dpkg-query', '-W', '-f=${Package} ${Status}\\n', ...BUILD_DEPS], { readOnly: true, allowFailure: true });
      const ok = new Set(r.stdout.split('\n').filter((l) => l.endsWith('install ok installed')).map((l) => l.split(' ')[0]));
      const missing = BUILD_DEPS.filter((p) => !ok.has(p));
      return missing.length ? todo(`install ${missing.join(' ')}`) : done(`${BUILD_DEPS.join(' ')} installed`);
    },
    async apply(ctx) {
      await ctx.target.run(['apt-get', 'install', '-y', '--no-install-recommends', ...BUILD_DEPS], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
    },
  };
}

/** On a workstation pi-prep does not install packages: it names them (a preflight, no apply). */
export function hereToolsTask(b: Builder): Task {
  const tools = ['git', 'make', 'bc', 'bison', 'flex', 'perl', b.cross ? 'aarch64-linux-gnu-gcc' : 'gcc'];
  return {
    id: 'kernel-tools',
    title: 'Kernel check (kernel-configs/) and build tools on this machine',
    async check(ctx) {
      const missing: string[] = [];
      for (const t of tools) if (!(await onPath(ctx.local, t))) missing.push(t);
      if (!(await ctx.local.stat('/usr/include/openssl/opensslv.h'))) missing.push('openssl headers');
      if (missing.length === 0) return done(`${tools.join(' ')} found${b.cross ? ' (cross-compiling for arm64)' : ''}`);
      return todo(`missing ${missing.join(', ')}: install them, e.g. \`sudo apt-get install git make bc bison flex libssl-dev${b.cross ? ' gcc-aarch64-linux-gnu' : ' gcc'}\``);
    },
  };
}

async function onPath(local: Target, cmd: string): Promise<boolean> {
  for (const d of (process.env.PATH ?? '').split(':')) {
    const st = d ? await local.stat(posix.join(d, cmd)) : undefined;
    // Compilers on PATH are mostly links to versioned names (aarch64-linux-gnu-gcc -> ...-gcc-12).
    if (st && (st.type === 'symlink' || (st.type === 'file' && (st.mode & 0o111) !== 0))) return true;
  }
  return false;
}
