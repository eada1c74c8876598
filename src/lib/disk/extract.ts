import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { posix } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { RefusedError, UsageError } from '../../core/errors.js';
import { fatKey, fatNameProblem } from './fat-names.js';
import { progressReporter } from './progress.js';

/** One regular file of the tarball, as it must appear on the card. */
export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

export interface TarballContents {
  files: ManifestFile[];
  dirs: string[];
  bytes: number;
  /** Small text files kept in memory (cmdline.txt, config.txt, usercfg.txt). */
  text: Map<string, string>;
  /**
   * The uncompressed archive exactly as read and accepted: what `tar -x` is fed on stdin, so the
   * files extracted are the ones checked here (no second gunzip, no window to swap the file).
   */
  raw: Buffer;
}

const KEEP_TEXT = new Set(['cmdline.txt', 'config.txt', 'usercfg.txt', '.alpine-release']);

/** Normalise a tar path ("./boot/x" -> "boot/x"); refuse anything that could land outside the card. */
export function safeEntryPath(raw: string, tarball: string): string {
  const refuse = (why: string) => new RefusedError(`refusing the tarball ${tarball}: entry "${raw}" ${why}; use an official alpine-rpi tarball`);
  if (raw.startsWith('/')) throw refuse('is an absolute path');
  if (raw.split('/').includes('..')) throw refuse('climbs out with ".."');
  const p = posix.normalize(raw).replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (p === '.' || p === '') return '';
  if (p.startsWith('../') || p === '..') throw refuse('climbs out with ".."');
  return p;
}

/**
 * Read an alpine-rpi tarball defensively, writing nothing. Only regular files and directories are
 * accepted: links, device nodes, FIFOs, absolute paths, "..", names FAT cannot hold and names that
 * differ only in case are refused before anything is written anywhere. Each file's SHA-256 is taken
 * as it streams, for the checks and the read-back. (The extraction itself is `tar -x` through the
 * recorded target, once this read has accepted the tarball.)
 */
export async function readTarball(tarball: string, log?: (line: string) => void): Promise<TarballContents> {
  const total = (await stat(tarball).catch(() => undefined))?.size;
  if (total === undefined) throw new UsageError(`cannot read the tarball ${tarball}: check --tarball`);
  const files: ManifestFile[] = [];
  const dirs: string[] = [];
  const text = new Map<string, string>();
  const seen = new Map<string, string>();
  let bytes = 0;
  let failure: Error | undefined;

  const claim = (p: string, kind: string) => {
    const problem = fatNameProblem(p);
    if (problem) throw new RefusedError(`refusing the tarball ${tarball}: ${problem} (entry "${p}"); use an official alpine-rpi tarball`);
    const key = fatKey(p);
    const other = seen.get(key);
    if (other !== undefined) {
      if (other === p && kind === 'dir') return false;
      throw new RefusedError(`refusing the tarball ${tarball}: "${p}" and "${other}" are the same name on FAT (case-insensitive) or repeated`);
    }
    seen.set(key, p);
    return true;
  };

  const onEntry = (entry: ReadEntry) => {
    try {
      if (failure) return entry.resume();
      const p = safeEntryPath(entry.path, tarball);
      if (entry.type === 'Directory') {
        if (p !== '' && claim(p, 'dir')) dirs.push(p);
        return entry.resume();
      }
      if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
        throw new RefusedError(`refusing the tarball ${tarball}: entry "${entry.path}" is a ${entry.type}, and only plain files and directories may go onto the card`);
      }
      if (p === '') throw new RefusedError(`refusing the tarball ${tarball}: a file entry without a name`);
      claim(p, 'file');
      for (let d = posix.dirname(p); d !== '.'; d = posix.dirname(d)) {
        const k = fatKey(d);
        if (!seen.has(k)) seen.set(k, d);
        else if (seen.get(k) !== d) throw new RefusedError(`refusing the tarball ${tarball}: "${d}" and "${seen.get(k)}" are the same name on FAT (case-insensitive)`);
      }
      const hash = createHash('sha256');
      const keep = KEEP_TEXT.has(p) && entry.size < 65536 ? [] as Buffer[] : undefined;
      let size = 0;
      entry.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
        keep?.push(chunk);
      });
      entry.on('end', () => {
        files.push({ path: p, size, sha256: hash.digest('hex') });
        bytes += size;
        if (keep) text.set(p, Buffer.concat(keep).toString('utf8'));
      });
    } catch (err) {
      failure ??= err as Error;
      entry.resume();
    }
  };

  const gzipped = await isGzip(tarball);
  const parser = new Parser({ strict: true, onReadEntry: onEntry });
  const raw: Buffer[] = [];
  const progress = progressReporter('extract', total, log);
  try {
    await new Promise<void>((resolve, reject) => {
      const input = createReadStream(tarball, { highWaterMark: 1 << 20 });
      input.on('data', (c) => progress(c.length));
      input.on('error', reject);
      const gz = gzipped ? createGunzip({ chunkSize: 1 << 20 }) : undefined;
      gz?.on('error', (err) => reject(new UsageError(`${tarball} is not a readable tarball (${err.message}): check --tarball or download it again`)));
      parser.on('error', reject);
      parser.on('warn', (code: string, message: string) => {
        if (code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ABORT' || code === 'TAR_ENTRY_INVALID') reject(new UsageError(`${tarball} is not a readable tarball (${message}): check --tarball or download it again`));
      });
      parser.on('end', resolve);
      const plain = gz ? input.pipe(gz) : input;
      plain.on('data', (c: Buffer) => raw.push(c));
      plain.pipe(parser as unknown as NodeJS.WritableStream);
    });
  } catch (err) {
    if (err instanceof UsageError || err instanceof RefusedError) throw err;
    throw new UsageError(`${tarball} is not a readable tarball (${(err as Error).message}): check --tarball or download it again`);
  }
  if (failure) throw failure;
  if (files.length === 0) throw new UsageError(`${tarball} holds no files: use an alpine-rpi tarball`);
  progress(0, true);
  return { files, dirs, bytes, text, raw: Buffer.concat(raw) };
}

async function isGzip(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(2);
    await fh.read(b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}
