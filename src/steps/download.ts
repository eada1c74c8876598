import { createHash } from 'node:crypto';
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
