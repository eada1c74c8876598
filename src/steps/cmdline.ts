import { TaskFailedError } from '../core/errors.js';
import { done, todo, type Task } from '../run/task.js';
import { CGROUP_FLAGS, MAX_CMDLINE, cmdlineProblems, patchCmdline } from '../lib/cmdline.js';

/** The shared task: cmdline.txt at `path` carries the cgroup flags (backup, atomic write). */
export function cmdlineTask(path: () => Promise<string>): Task {
  return {
    id: 'cmdline',
    title: 'cgroup flags in cmdline.txt',
    async check(ctx) {
      const p = await path();
      const text = (await ctx.target.readFile(p))?.toString('latin1');
      if (text === undefined) throw new TaskFailedError(`${p} not found on ${ctx.target.label}: is the boot partition mounted?`);
      const problems = cmdlineProblems(text);
      if (problems.length === 0) return done(`${p} has ${CGROUP_FLAGS.join(' ')}`);
      const line = patchCmdline(text).split('\n')[0]!.replace(/\r$/, '');
      if (line.length > MAX_CMDLINE) {
        throw new TaskFailedError(`with the cgroup flags the kernel command line in ${p} would be ${line.length} bytes, more than the kernel's ${MAX_CMDLINE}: remove parameters you do not need, then run again`);
      }
      return todo(`${p}: ${problems.join(', ')}`);
    },
    async apply(ctx) {
      const p = await path();
      // latin1: one character per byte, so bytes that are not UTF-8 come back as they were.
      const text = (await ctx.target.readFile(p))!.toString('latin1');
      await ctx.target.writeFile(p, Buffer.from(patchCmdline(text), 'latin1'), { backup: true });
    },
  };
}
