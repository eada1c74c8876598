import { done, todo, type Task } from '../../run/task.js';
import { readText } from '../../targets/target.js';

/** What `lbu include` writes: one `+path` line per included path (alpine-conf lbu.in). */
export const LBU_LIST = '/etc/apk/protected_paths.d/lbu.list';

/**
 * Whether an earlier task of this run changed what lbu saves. Real runs also see it in
 * `lbu status`; dry runs, which change nothing, only here, so their plan shows the commit.
 */
export class PersistTracker {
  changed = false;
  /** Saved paths an earlier task (re)writes with the content lbu already has (e.g. on a fresh mount). */
  rewritten = new Set<string>();

  /** The same task; its apply marks the run as having changed persisted files. */
  wrap(task: Task): Task {
    const apply = task.apply;
    if (!apply) return task;
    return {
      ...task,
      apply: async (ctx) => {
        await apply(ctx);
        this.changed = true;
      },
    };
  }
}

/** lbu saves symlinks only under /etc/init.d (apk's `@etc/init.d` rule): service files need an include. */
export function lbuIncludeTask(path: string, why: string): Task {
  const entry = `+${path.replace(/^\/+/, '')}`;
  return {
    id: `lbu-include-${path.replace(/^\/+/, '').replace(/[^A-Za-z0-9]+/g, '-')}`,
    title: `${path} saved by lbu (${why})`,
    async check(ctx) {
      const list = (await readText(ctx.target, LBU_LIST)) ?? '';
      return list.split('\n').includes(entry) ? done(`${LBU_LIST} has ${entry}`) : todo(`${path} is not in lbu's include list`);
    },
    async apply(ctx) {
      await ctx.target.run(['lbu', 'include', path]);
    },
  };
}

/** `lbu commit -d` when anything lbu saves changed: the overlay on the boot media is the only copy. */
export function lbuCommitTask(id: string, tracker: PersistTracker, when: string): Task {
  return {
    id,
    title: `Changes saved to the boot media with lbu commit (${when})`,
    async check(ctx) {
      // A real run sees its own changes in lbu status; a dry run changed nothing, so it asks the tracker.
      if (ctx.dryRun && tracker.changed) return todo('this run changes files lbu saves');
      const st = await ctx.target.run(['lbu', 'status'], { readOnly: true, allowFailure: true });
      if (st.exitCode !== 0) return todo(`lbu status failed (${st.stderr.trim().split('\n').at(-1) ?? ''}): commit to be safe`);
      // In a dry run, what an earlier task would have written back does not show yet: leave it out.
      const changed = st.stdout.split('\n').filter((l) => l.trim() && !(ctx.dryRun && tracker.rewritten.has(l.trim().slice(2))));
      if (changed.length === 0) return done('lbu status: nothing to commit');
      return todo(`lbu status: ${changed.length} uncommitted (${changed.slice(0, 3).join(', ')}${changed.length > 3 ? ', …' : ''})`);
    },
    async apply(ctx) {
      await ctx.target.run(['lbu', 'commit', '-d']);
      tracker.changed = false;
    },
  };
}
