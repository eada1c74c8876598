import { cmdlineTask } from '../cmdline.js';
import { done, todo, type RunContext, type Task } from '../../run/task.js';
import type { AlpineLayout } from '../../lib/alpine/layout.js';

/**
 * Diskless Alpine mounts its boot media read-only. Open it for `fn`, and put it back read-only
 * after, even when `fn` fails, so the card is never left writable by a run.
 */
export async function withMediaRw<T>(ctx: RunContext, l: AlpineLayout, fn: () => Promise<T>): Promise<T> {
  if (!l.diskless || !l.mediaDir) return fn();
  await ctx.target.run(['mount', '-o', 'remount,rw', l.mediaDir]);
  try {
    return await fn();
  } finally {
    await ctx.target.run(['mount', '-o', 'remount,ro', l.mediaDir]);
  }
}

/** The shared cmdline step, on the boot media, inside a read-write window. */
export function mediaCmdlineTask(l: AlpineLayout): Task {
  const base = cmdlineTask(async () => `${l.mediaDir}/cmdline.txt`);
  return {
    ...base,
    title: l.diskless ? `${base.title} (${l.mediaDir} remounted rw for the edit)` : base.title,
    apply: (ctx) => withMediaRw(ctx, l, () => base.apply!(ctx)),
  };
}

export const APK_CACHE_LINK = '/etc/apk/cache';

/**
 * Diskless Alpine reinstalls /etc/apk/world at every boot, offline, from the boot media: packages
 * that are not on the card (iptables, coreutils, findutils, curl) need an apk cache there, which
 * `apk add` then fills. This is what `setup-apkcache` does.
 */
export function apkCacheTask(l: AlpineLayout): Task {
  const dir = `${l.mediaDir}/cache`;
  return {
    id: 'apk-cache',
    title: `apk cache on the boot media (${dir}), so added packages come back after a reboot`,
    async check(ctx) {
      const st = await ctx.target.stat(APK_CACHE_LINK);
      if (st) return done(`${APK_CACHE_LINK} exists (${st.type})`);
      return todo(`no ${APK_CACHE_LINK}: packages added now would be gone after a reboot`);
    },
    async apply(ctx) {
      await withMediaRw(ctx, l, async () => {
        if (!(await ctx.target.stat(dir))) await ctx.target.mkdir(dir, 0o755);
      });
      await ctx.target.run(['ln', '-s', dir, APK_CACHE_LINK]);
    },
  };
}
