import { TaskFailedError } from '../../core/errors.js';
import { done, todo, type Check, type RunContext, type Task } from '../../run/task.js';
import { recheckCard, type Card, type CardOptions } from '../../lib/disk/card-target.js';
import type { CardState, Finding } from '../../lib/disk/card-state.js';
import { MTOOLS_ENV, expectedPartitions, imageArgv, mcopyArgv, mkfsExt4Argv, mkfsVfatArgv, parseSfdiskDump, sfdiskArgv, zeroArgv } from '../../lib/disk/card-tools.js';
import type { ManifestFile } from '../../lib/disk/extract.js';
import { DATA_LABEL } from '../../lib/alpine/paths.js';
import { sfdiskScript, type CardLayout } from '../../lib/disk/layout.js';
import { formatSize } from '../../lib/disk/size.js';
import { fsckBoth, verifyBootFiles } from './verify.js';

/**
 * The tasks that write a card or image, each checked against the card as it is read before the
 * first write (CardState). The card is one unit: when every part is as planned, nothing is erased
 * or written; otherwise it is rewritten whole, table erased first and written last, so an
 * interrupted run never leaves a half-valid card.
 */
export interface CardWrite {
  card: Card;
  layout: CardLayout;
  /** The card as read before the first write (read once per run, memoised). */
  state: (ctx: RunContext) => Promise<CardState>;
  /** What the boot filesystem must hold: the top-level entries to copy, and every file's SHA-256. */
  boot: (ctx: RunContext) => Promise<{ sources: string[]; files: ManifestFile[] }>;
  /** The data partition's contents (a directory on this machine). */
  dataDir: string;
}

/** Done (with what was found) when the whole card is right; else what this part lacks. */
async function partCheck(ctx: RunContext, w: CardWrite, part: (s: CardState) => Finding, rewrite: string): Promise<Check> {
  const s = await w.state(ctx);
  if (s.right) return done(part(s).why);
  const f = part(s);
  return todo(f.ok ? `${f.why}, but ${rewrite}` : f.why);
}

const firstProblem = (s: CardState) => [s.table, s.boot, s.data].find((f) => !f.ok)?.why ?? '';

export function unmountTask(w: CardWrite, mounts: string[]): Task {
  return {
    id: 'unmount',
    title: `Unmount the card's own partitions (${mounts.join(', ')})`,
    async check(ctx) {
      return (await w.state(ctx)).right ? done('nothing is written to the card') : todo(`mounted at ${mounts.join(', ')}`);
    },
    async apply(ctx) {
      for (const m of mounts) await ctx.target.run(['umount', m]);
    },
  };
}

export function imageFileTask(w: CardWrite): Task {
  const c = w.card;
  return {
    id: 'image-file',
    title: `Image file ${c.path} (${formatSize(c.bytes)})`,
    async check(ctx) {
      const st = await ctx.target.stat(c.path);
      if (st?.type === 'file' && st.size >= c.bytes) return done(`${st.size} bytes`);
      return todo(st ? `grow ${c.path} to ${c.bytes} bytes` : `create ${c.path}, ${c.bytes} bytes (sparse; a new file, never through a link)`);
    },
    async apply(ctx) {
      await ctx.target.run(imageArgv(c.path, c.bytes, c.kind === 'image' && c.exists));
    },
  };
}

/** Right before the first write (minutes may have passed): the same file or device, still passing every rule. */
export function recheckTask(given: string, card: Card, opts: () => Promise<CardOptions>): Task {
  return {
    id: 'card-recheck',
    title: `${card.path} is still the ${card.kind === 'device' ? 'device' : 'file'} that was checked`,
    async check(ctx) {
      await recheckCard(ctx.target, given, card, await opts());
      return done(card.ident ? `same ${card.kind === 'device' ? 'device' : 'inode'} (${card.ident})` : 'nothing at the path yet');
    },
  };
}

export function eraseTask(w: CardWrite): Task {
  return {
    id: 'erase-table',
    title: 'Erase the old partition table first (the new one is written last)',
    async check(ctx) {
      const s = await w.state(ctx);
      return s.right ? done('the card is already as planned: nothing is erased') : todo(`${firstProblem(s)}: an interrupted run must leave no half-valid card`);
    },
    async apply(ctx) {
      await ctx.target.run(zeroArgv(w.card.path, 0));
      // A GPT keeps a backup header in the disk's last sector: erase the last MiB, to the byte.
      await ctx.target.run(zeroArgv(w.card.path, w.layout.diskBytes - 2 ** 20));
    },
  };
}

export function bootFsTask(w: CardWrite): Task {
  const l = w.layout;
  return {
    id: 'boot-fs',
    title: `Boot partition: FAT32 (${formatSize(l.boot.bytes)}, ${l.boot.fat.sectorsPerCluster * 512}-byte clusters, ${l.boot.fat.clusters} clusters) with Alpine's files`,
    check: (ctx) => partCheck(ctx, w, (s) => s.boot, 'the card is rewritten whole'),
    async apply(ctx) {
      await ctx.target.run(mkfsVfatArgv(w.card.path, l));
      await ctx.target.run(mcopyArgv(w.card.path, l, (await w.boot(ctx)).sources), { env: MTOOLS_ENV });
    },
  };
}

export function dataFsTask(w: CardWrite): Task {
  const l = w.layout;
  return {
    id: 'data-fs',
    title: `Data partition: ext4 "${DATA_LABEL}" (${formatSize(l.data.bytes)}) for /var/lib/k0s`,
    check: (ctx) => partCheck(ctx, w, (s) => s.data, 'the card is rewritten whole'),
    async apply(ctx) {
      await ctx.target.run(mkfsExt4Argv(w.card.path, l, w.dataDir));
    },
  };
}

export function verifyTask(w: CardWrite): Task {
  const { card, layout: l } = w;
  return {
    id: 'verify',
    title: 'Verify: read every boot file back (SHA-256), fsck.vfat -n, e2fsck -fn',
    async check(ctx) {
      const s = await w.state(ctx);
      return s.right ? done(`read back before any write: ${s.boot.why}; ${s.data.why}`) : todo('what was written must read back as meant');
    },
    async apply(ctx) {
      const flushed = await ctx.target.run(['sync', card.path]);
      if (card.kind === 'device') await ctx.target.run(['blockdev', '--flushbufs', card.path]);
      const { files } = await w.boot(ctx);
      // Independent reads of the same flushed card: side by side. What this run wrote reads back
      // only once it was written: a planned write (a dry run) has nothing to read back.
      await Promise.all([flushed.planned ? undefined : verifyBootFiles(card.path, l, files, ctx.log), fsckBoth(ctx, card.path, l)]);
    },
  };
}

export function tableTask(w: CardWrite): Task {
  const { card, layout: l } = w;
  return {
    id: 'partition-table',
    title: 'Partition table (MBR: p1 FAT32 LBA bootable, p2 Linux), written last',
    check: (ctx) => partCheck(ctx, w, (s) => s.table, 'it is written last, once the rest reads back'),
    async apply(ctx) {
      const written = await ctx.target.run(sfdiskArgv(card.path, card.kind === 'device'), { input: sfdiskScript(l) });
      await ctx.target.run(['sync', card.path]);
      // As in verify: the read-back needs a write that happened.
      if (written.planned) return;
      const dump = await ctx.target.run(['sfdisk', '--dump', card.path], { readOnly: true });
      if (JSON.stringify(parseSfdiskDump(dump.stdout)) !== JSON.stringify(expectedPartitions(l))) {
        throw new TaskFailedError(`the partition table on ${card.path} does not read back as written: try another card`);
      }
    },
  };
}
