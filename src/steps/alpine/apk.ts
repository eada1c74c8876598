import { done, todo, type Task } from '../../run/task.js';
import { withMediaRw } from './boot-media.js';
import type { AlpineLayout } from '../../lib/alpine/layout.js';
import { DISK_PACKAGES, SEED_PACKAGES } from '../../lib/alpine/packages.js';


const APK_ADD_IDLE_MS = 30 * 60_000;

/** `apk info -e` prints the installed ones among its arguments. */
async function missing(ctx: Parameters<Task['check']>[0], pkgs: readonly string[]): Promise<string[]> {
  const res = await ctx.target.run(['apk', 'info', '-e', ...pkgs], { readOnly: true, allowFailure: true });
  const have = new Set(res.stdout.split('\n').map((l) => l.trim()).filter(Boolean));
  return pkgs.filter((p) => !have.has(p));
}

/** `apk add` of only the missing packages; the media is writable meanwhile so the apk cache fills. */
export function apkPackagesTask(l: AlpineLayout, pkgs: readonly string[] = [...SEED_PACKAGES, ...DISK_PACKAGES]): Task {
  return {
    id: 'apk-packages',
    title: `Packages ${pkgs.join(' ')}`,
    async check(ctx) {
      const m = await missing(ctx, pkgs);
      return m.length === 0 ? done('all installed') : todo(`missing: ${m.join(' ')}`);
    },
    async apply(ctx) {
      const m = await missing(ctx, pkgs);
      // apk prints one line per package, nothing while it fetches one: a large one on a slow link
      // is quiet for long, so its idle bound is longer than the default (command-bounds.ts).
      await withMediaRw(ctx, l, () => ctx.target.run(['apk', 'add', ...m], { idleTimeoutMs: APK_ADD_IDLE_MS }));
    },
  };
}
