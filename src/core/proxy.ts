import type { Dispatcher } from 'undici';

/**
 * The dispatcher every download goes through: undici's own proxy support, which reads
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY (lower-case first, as curl does). Without a proxy variable
 * a plain Agent, so nothing changes for the common case.
 */
export async function proxyDispatcher(): Promise<Dispatcher> {
  const { Agent, EnvHttpProxyAgent } = await import('undici');
  const env = process.env;
  if (!(env.https_proxy || env.HTTPS_PROXY || env.http_proxy || env.HTTP_PROXY)) return new Agent();
  // undici 6 flags EnvHttpProxyAgent experimental with a process warning on stderr; the user asked
  // for a proxy and must not get a Node warning for it. Only that one warning is dropped.
  const emit = process.emitWarning;
  process.emitWarning = ((w: string | Error, ...rest: unknown[]) => {
    const code = (rest[0] as { code?: string } | undefined)?.code;
    if (code !== 'UNDICI-EHPA') (emit as (...a: unknown[]) => void).call(process, w, ...rest);
  }) as typeof process.emitWarning;
  try {
    return new EnvHttpProxyAgent();
  } finally {
    process.emitWarning = emit;
  }
}
