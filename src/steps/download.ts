import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { TaskFailedError, UsageError } from '../core/errors.js';

/**
 * GET a URL, or fail with one line: a 404 is bad input (the flag to fix is named), anything else
 * a failure that names the host.
 */
export async function fetchOk(url: string, what: string, flagFor404 = '--k0s-mirror'): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(60_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new TaskFailedError(`cannot reach ${new URL(url).host} for ${what} (${why}): check the network or the mirror flag`);
  }
  if (res.status === 404) throw new UsageError(`${what} not found at ${url} (HTTP 404): check ${flagFor404}`);
  if (!res.ok) throw new TaskFailedError(`${url} answered HTTP ${res.status} for ${what}: try again later or use another mirror`);
  return res;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
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
}

/**
 * A local copy whose SHA-256 is the published one: the cached file when it matches, otherwise a
 * download to a per-process temp file beside DEST that is hashed as it streams and renamed into place only when its length
 * and hash are right. Every failure is one line that says nothing was changed.
 */
export async function downloadVerified(d: VerifiedDownload): Promise<string> {
  const { mkdir, rename, rm, stat } = await import('node:fs/promises');
  const { createWriteStream } = await import('node:fs');
  const { dirname } = await import('node:path');
  await mkdir(dirname(d.dest), { recursive: true });
  if ((await stat(d.dest).catch(() => undefined)) && (await sha256File(d.dest)) === d.sha256) return d.dest;
  // Per process: a fleet downloads the same file to the same cache in parallel.
  const tmp = `${d.dest}.${process.pid}-${randomBytes(4).toString('hex')}.part`;
  const res = await fetchOk(d.url, d.what, d.flagFor404);
  const expected = Number(res.headers.get('content-length') ?? NaN);
  const hash = createHash('sha256');
  let got = 0;
  const out = createWriteStream(tmp, { mode: d.mode ?? 0o644 });
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      got += chunk.length;
      d.onBytes?.(chunk.length);
      if (!out.write(chunk)) await new Promise<void>((ok) => out.once('drain', () => ok()));
    }
    await new Promise<void>((ok, ko) => out.end((err?: Error | null) => (err ? ko(err) : ok())));
  } catch (err) {
    out.destroy();
    await rm(tmp, { force: true });
    throw new TaskFailedError(`the download of ${d.what} broke off after ${got} bytes (${(err as Error).message}): ${d.unchanged}; run again`);
  }
  const sum = hash.digest('hex');
  if (!Number.isNaN(expected) && got !== expected) {
    await rm(tmp, { force: true });
    throw new TaskFailedError(`the download of ${d.what} ended early (${got} of ${expected} bytes): ${d.unchanged}; run again`);
  }
  if (sum !== d.sha256) {
    await rm(tmp, { force: true });
    throw new TaskFailedError(`${d.what} from ${d.url} does not match its published SHA-256 (got ${sum.slice(0, 12)}…, want ${d.sha256.slice(0, 12)}…): ${d.unchanged}; check the mirror`);
  }
  await rename(tmp, d.dest);
  return d.dest;
}
