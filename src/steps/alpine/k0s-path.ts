import { posix } from 'node:path';
import { done, todo, type Task } from '../../run/task.js';
import { readText } from '../../targets/target.js';

export const PROFILE = '/etc/profile.d/k0s.sh';

/** /usr/local is not saved by lbu: the binary lives on the data partition, and /etc points to it. */
export function k0sPathTask(binPath: string): Task {
  const dir = posix.dirname(binPath);
  const body = `# k0s lives on the data partition (lbu does not save /usr/local)\nexport PATH="$PATH:${dir}"\n`;
  return {
    id: 'k0s-path',
    title: `${PROFILE} puts ${dir} on PATH`,
    async check(ctx) {
      const have = (await readText(ctx.target, PROFILE));
      return have === body ? done(`${PROFILE} in place`) : todo(have === undefined ? `no ${PROFILE}` : `${PROFILE} differs`);
    },
    async apply(ctx) {
      await ctx.target.writeFile(PROFILE, body, { mode: 0o644 });
    },
  };
}
