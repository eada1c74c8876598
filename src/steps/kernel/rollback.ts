import { BACKUP_SUFFIX } from '../../core/atomic-write.js';
import { done, todo, type Task } from '../../run/task.js';
import { removeKernelBlock } from '../../lib/boot-config.js';
import { MANIFEST, readManifest } from '../../lib/kernel/manifest.js';
import { readText } from '../../targets/target.js';

const nothing = `no pi-prep kernel install recorded in ${MANIFEST}: nothing to roll back`;

/**
 * Undo a kernel install: config.txt first (from then on the firmware loads the stock kernel),
 * then every replaced boot file from its backup, byte for byte, and the added files removed.
 */
export function rollbackTasks(): Task[] {
  return [
    {
      id: 'rollback-config',
      title: 'config.txt as it was before the k0s kernel',
      async check(ctx) {
        const m = await readManifest(ctx.target);
        if (!m) return done(nothing);
        const text = (await readText(ctx.target, m.configTxt));
        const bak = await ctx.target.stat(m.configTxt + BACKUP_SUFFIX);
        if (text !== undefined && removeKernelBlock(text) === text && !bak) return done(`${m.configTxt} has no pi-prep block`);
        return todo(`restore ${m.configTxt}`);
      },
      async apply(ctx) {
        const m = (await readManifest(ctx.target))!;
        const bakPath = m.configTxt + BACKUP_SUFFIX;
        const bak = await ctx.target.readFile(bakPath);
        const unchanged = m.configTxtSha256 !== undefined && (await ctx.target.sha256(m.configTxt)) === m.configTxtSha256;
        if (bak && unchanged) {
          await ctx.target.writeFile(m.configTxt, bak, { mode: (await ctx.target.stat(bakPath))!.mode });
        } else {
          // Edited since pi-prep wrote it: keep those edits, take out only pi-prep's lines.
          const text = (await ctx.target.readFile(m.configTxt))!.toString('utf8');
          await ctx.target.writeFile(m.configTxt, removeKernelBlock(text));
          if (bak) ctx.log(`${m.configTxt} changed since pi-prep edited it: removed only pi-prep's block`);
        }
        if (bak) await ctx.target.remove(bakPath);
      },
    },
    {
      id: 'rollback-files',
      title: 'Boot files and modules of the k0s kernel rolled back',
      async check(ctx) {
        const m = await readManifest(ctx.target);
        if (!m) return done(nothing);
        return todo(`restore ${m.replaced.length} file(s) from backups, remove ${m.added.length} added file(s) and ${m.modulesDir}`);
      },
      async apply(ctx) {
        const m = (await readManifest(ctx.target))!;
        const t = ctx.target;
        for (const p of m.replaced) {
          const bakPath = p + BACKUP_SUFFIX;
          const st = await t.stat(bakPath);
          if (!st) {
            ctx.log(`no backup ${bakPath}: ${p} left as it is`);
            continue;
          }
          await t.writeFile(p, (await t.readFile(bakPath))!, { mode: st.mode });
          await t.remove(bakPath);
        }
        for (const p of m.added) await t.remove(p);
        if (m.modulesDir.startsWith('/lib/modules/') && !m.modulesDir.includes('..')) await t.remove(m.modulesDir);
        await t.remove(MANIFEST);
      },
    },
  ];
}
