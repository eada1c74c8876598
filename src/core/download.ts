import { createHash, randomBytes } from 'node:crypto';
import { PiPrepError, TaskFailedError, UsageError } from './errors.js';
import { onInterrupt } from './cleanup.js';
import { pidAlive } from './pid.js';
import { sha256File } from './hash.js';

/** A body that sends nothing for this long is given up (the whole download may take any time). */
export const IDLE_TIMEOUT_MS = 60_000;
/** No release file pi-prep downloads comes near this (k0s ~250 MB, alpine-rpi ~100 MB). */
export const MAX_DOWNLOAD_BYTES = 1024 ** 3;
/** stable.txt, sha256sums.txt, latest-releases.yaml: a few KB. */
const MAX_TEXT_BYTES = 1024 ** 2;

export interface GetOptions {
  /** The flag a 404 points at. */
  flagFor404?: string;
  idleMs?: number;
}

/** An open response whose body must keep moving: the idle timer restarts on every chunk. */
interface OpenBody {
  res: Response;
  chunks: AsyncIterable<Uint8Array>;
  /** Whether the idle timer ended it. */
  stalled(): boolean;
  close(): void;
}

async function open(url: string, what: string, o: GetOptions): Promise<OpenBody> {
  const { fetch } = await import('undici');
  const { proxyDispatcher } = await import('./proxy.js');
  const dispatcher = await proxyDispatcher();
  const idleMs = o.idleMs ?? IDLE_TIMEOUT_MS;
  const abort = new AbortController();
  let stalled = false;
  const idle = setTimeout(() => {
    stalled = true;
    abort.abort();
  }, idleMs);
  const close = () => {
    clearTimeout(idle);
    if (!abort.signal.aborted) abort.abort();
    dispatcher.destroy().catch(() => undefined);
  };
  const host = new URL(url).host;
  let res: Response;
  try {
    res = (await fetch(url, { redirect: 'follow', signal: abort.signal, dispatcher })) as unknown as Response;
  } catch (err) {
    close();
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = stalled ? `no answer for ${idleMs / 1000} s` : cause?.code ?? cause?.message ?? (err as Error).message;
    throw new TaskFailedError(`cannot reach ${host} for ${what} (${why}): check the network, the proxy variables or the mirror flag`);
  }
  if (res.status === 404) {
    close();
    throw new UsageError(`${what} not found at ${url} (HTTP 404): check ${o.flagFor404 ?? '--k0s-mirror'}`);
  }
  if (!res.ok) {
    close();
    throw new TaskFailedError(`${url} answered HTTP ${res.status} for ${what}: try again later or use another mirror`);
  }
  idle.refresh();
  const body = res.body as unknown as AsyncIterable<Uint8Array> | null;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of body ?? []) {
        idle.refresh();
        yield chunk;
      }
    } finally {
      close();
    }
  }
  return { res, chunks: chunks(), stalled: () => stalled, close };
}

/** A small text file (a version, a checksum list, a release list), its size bounded. */
export async function fetchText(url: string, what: string, o: GetOptions & { maxBytes?: number } = {}): Promise<string> {
  const max = o.maxBytes ?? MAX_TEXT_BYTES;
  const b = await open(url, what, o);
  const parts: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of b.chunks) {
      got += chunk.length;
      if (got > max) throw new TaskFailedError(`${url} sent more than ${max} bytes for ${what}: that is not ${what}; check the mirror flag`);
      parts.push(Buffer.from(chunk));
    }
  } catch (err) {
    if (err instanceof PiPrepError) throw err;
    const why = b.stalled() ? `no data for ${(o.idleMs ?? IDLE_TIMEOUT_MS) / 1000} s` : causeOf(err);
    throw new TaskFailedError(`reading ${what} from ${new URL(url).host} broke off (${why}): check the network and run again`);
  } finally {
    b.close();
  }
  return Buffer.concat(parts).toString('utf8');
}

export interface VerifiedDownload {
  url: string;
  sha256: string;
  /** Final path; a partial download lives beside it and never replaces it unverified. */
  dest: string;
  /** For messages: "k0s v1.34.1+k0s.0 (arm64)". */
  what: string;
  /** The flag a 404 points at. */
  flagFor404: string;
  /** What a failure leaves untouched, for the message: "nothing was installed". */
  unchanged: string;
  mode?: number;
  /** Called with each chunk's size (progress). */
  onBytes?: (bytes: number) => void;
  /** The size the release's own metadata gives: a larger download is refused. */
  size?: number;
  /** Without a size: the ceiling (default MAX_DOWNLOAD_BYTES). */
  maxBytes?: number;
  /** Give up when no byte came for this long (default IDLE_TIMEOUT_MS). */
  idleMs?: number;
}

/** `<dest>.<pid>-<8 hex>.part`: the writer's pid, so a later run can tell a dead run's leftover. */
const PART = /\.(\d+)-[0-9a-f]{8}\.part$/;

/** Remove the temp files of downloads whose process is gone (killed, crashed, powered off). */
export async function sweepStaleParts(dir: string): Promise<void> {
  const { readdir, rm } = await import('node:fs/promises');
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const m = PART.exec(name);
    if (m && !pidAlive(Number(m[1]))) await rm(`${dir}/${name}`, { force: true });
  }
}

/**
 * A local copy whose SHA-256 is the published one: the cached file when it matches, otherwise a
 * download to a per-process temp file beside DEST (created O_EXCL, so never through a planted
 * link) that is hashed as it streams and renamed into place only when its length and hash are
 * right. Every failure is one line that says nothing was changed, and the temp file is removed on
 * every way out, a signal included.
 */
export async function downloadVerified(d: VerifiedDownload): Promise<string> {
  const { mkdir, open: openFile, rename, rm, stat } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  const dir = dirname(d.dest);
  await mkdir(dir, { recursive: true });
  await sweepStaleParts(dir);
  if ((await stat(d.dest).catch(() => undefined)) && (await sha256File(d.dest)) === d.sha256) return d.dest;
  const cap = d.size ?? d.maxBytes ?? MAX_DOWNLOAD_BYTES;
  const b = await open(d.url, d.what, { flagFor404: d.flagFor404, idleMs: d.idleMs });
  const announced = Number(b.res.headers.get('content-length') ?? NaN);
  if (announced > cap) {
    b.close();
    const limit = d.size !== undefined ? `the ${cap} the release lists` : `the limit of ${cap}`;
    throw new TaskFailedError(`${new URL(d.url).host} announces ${announced} bytes for ${d.what}, more than ${limit}: ${d.unchanged}; check the mirror`);
  }
  // Per process: a fleet downloads the same file to the same cache in parallel.
  const tmp = `${d.dest}.${process.pid}-${randomBytes(4).toString('hex')}.part`;
  const forget = onInterrupt(() => rm(tmp, { force: true }));
  const hash = createHash('sha256');
  let got = 0;
  let kept = false;
  try {
    const fh = await openFile(tmp, 'wx', d.mode ?? 0o644);
    try {
      for await (const chunk of b.chunks) {
        got += chunk.length;
        if (got > cap) {
          throw new TaskFailedError(`${new URL(d.url).host} sent more than ${cap} bytes for ${d.what}${d.size !== undefined ? ', more than the release lists' : ''}: ${d.unchanged}; check the mirror`);
        }
        hash.update(chunk);
        d.onBytes?.(chunk.length);
        for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off)).bytesWritten;
      }
    } finally {
      await fh.close();
    }
    if (!Number.isNaN(announced) && got !== announced) {
      throw new TaskFailedError(`the download of ${d.what} ended early (${got} of ${announced} bytes): ${d.unchanged}; run again`);
    }
    const sum = hash.digest('hex');
    if (sum !== d.sha256) {
      throw new TaskFailedError(`${d.what} from ${d.url} does not match its published SHA-256 (got ${sum.slice(0, 12)}…, want ${d.sha256.slice(0, 12)}…): ${d.unchanged}; check the mirror`);
    }
    await rename(tmp, d.dest);
    kept = true;
    return d.dest;
  } catch (err) {
    throw downloadError(err, d, dir, got, b.stalled(), d.idleMs ?? IDLE_TIMEOUT_MS);
  } finally {
    b.close();
    if (!kept) await rm(tmp, { force: true });
    forget();
  }
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

/** Whatever broke a download, as the one line the user sees. */
function downloadError(err: unknown, d: VerifiedDownload, dir: string, got: number, stalled: boolean, idleMs: number): PiPrepError {
  if (err instanceof PiPrepError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new TaskFailedError(`no space left in ${dir} for ${d.what} (${got} bytes written): free space there or set XDG_CACHE_HOME to a larger disk; ${d.unchanged}`);
  }
  if (stalled) {
    return new TaskFailedError(`the download of ${d.what} stalled: no data from ${new URL(d.url).host} for ${idleMs / 1000} s after ${got} bytes: ${d.unchanged}; check the network and run again`);
  }
  if (code && /^E[A-Z]+$/.test(code) && (err as NodeJS.ErrnoException).syscall) {
    return new TaskFailedError(`cannot write ${d.what} to ${dir} (${code}): check that directory or set XDG_CACHE_HOME; ${d.unchanged}`);
  }
  return new TaskFailedError(`the download of ${d.what} broke off after ${got} bytes (${causeOf(err)}): ${d.unchanged}; run again`);
}
