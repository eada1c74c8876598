import { AsyncLocalStorage } from 'node:async_hooks';
import { createReadStream } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../../core/errors.js';
import { addSecret } from '../../core/redact.js';

/** A validated worker join token. `raw` is a secret: it is registered for redaction on decode. */
export interface JoinToken {
  raw: string;
  server: string;
  user: string;
}

const CREATE = 'create one on the controller with `k0s token create --role worker`';

/** `--join TOKEN|@FILE|-`: the token itself, a file holding it, or stdin. */
export async function readJoinArg(arg: string, stdin: () => Promise<string> = readStdin): Promise<JoinToken> {
  let text: string;
  if (arg === '-') {
    text = await stdin();
  } else if (arg.startsWith('@')) {
    const file = arg.slice(1);
    try {
      text = await readLimited(createReadStream(file), file, 'check the path after --join @');
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`cannot read the join token file ${file}: check the path after --join @`);
    }
    if (!text.trim()) throw new UsageError(`the join token file ${file} is empty: ${CREATE}`);
  } else {
    text = arg;
  }
  return decodeJoinToken(text);
}

/**
 * A k0s join token is standard base64 of gzip of a kubeconfig whose user is kubelet-bootstrap
 * for workers (k0s pkg/token). Anything else gets a one-line error that says what to do.
 */
export function decodeJoinToken(text: string): JoinToken {
  const raw = text.replace(/\s+/g, '');
  if (!raw) throw new UsageError(`the join token is empty: ${CREATE}`);
  addSecret(raw);
  for (const part of text.split(/\s+/)) addSecret(part);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(raw)) {
    throw new UsageError(`the join token is not base64: copy the whole output of \`k0s token create --role worker\``);
  }
  let yamlText: string;
  try {
    yamlText = gunzipSync(Buffer.from(raw, 'base64')).toString('utf8');
  } catch {
    throw new UsageError(`the join token is not a k0s token (not gzip inside): ${CREATE}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(yamlText);
  } catch {
    throw new UsageError(`the join token holds no kubeconfig: ${CREATE}`);
  }
  const kc = doc as {
    clusters?: { cluster?: { server?: unknown } }[];
    users?: { name?: unknown; user?: { token?: unknown } }[];
  } | null;
  const server = kc?.clusters?.[0]?.cluster?.server;
  const user = kc?.users?.[0];
  if (typeof server !== 'string' || !user || typeof user.name !== 'string') {
    throw new UsageError(`the join token holds no kubeconfig with a server and a user: ${CREATE}`);
  }
  if (typeof user.user?.token === 'string') {
    addSecret(user.user.token);
    const secretPart = user.user.token.split('.')[1];
    if (secretPart) addSecret(secretPart);
  }
  if (user.name === 'controller-bootstrap') {
    throw new UsageError(`this is a controller token, not a worker token: ${CREATE}`);
  }
  if (user.name !== 'kubelet-bootstrap') {
    throw new UsageError(`the join token is for user "${user.name}", not kubelet-bootstrap: ${CREATE}`);
  }
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new UsageError(`the join token's server "${server}" is not a URL: ${CREATE}`);
  }
  if (/[\u0000-\u001f\u007f-\u009f]/.test(server)) throw new UsageError(`the join token's server holds control characters: ${CREATE}`);
  if (url.protocol !== 'https:') throw new UsageError(`the join token's server ${server} is not https: ${CREATE}`);
  return { raw, server, user: user.name };
}

/** What `--join -` reads instead of stdin in a fleet's host run (src/fleet/run-host.ts): each run its own. */
const stdinText = new AsyncLocalStorage<string>();
export function withStdinText<T>(text: string, fn: () => T): T {
  return stdinText.run(text, fn);
}

async function readStdin(): Promise<string> {
  const given = stdinText.getStore();
  if (given !== undefined) return given;
  if (process.stdin.isTTY) throw new UsageError('--join - reads the token from stdin: pipe it in, e.g. `pi-prep linux --join - < join.token`');
  return readLimited(process.stdin, 'stdin', 'pipe in the output of `k0s token create --role worker`');
}

/** A worker token is 1-3 KB; anything past this is not one (`yes | pi-prep --join -`). */
export const MAX_TOKEN_BYTES = 64 * 1024;

/** Read a token source, stopping (and closing it) at MAX_TOKEN_BYTES instead of filling memory. */
export async function readLimited(source: AsyncIterable<unknown> & { destroy(): void }, name: string, fix: string): Promise<string> {
  const chunks: Buffer[] = [];
  let got = 0;
  for await (const c of source) {
    const b = Buffer.from(c as Buffer);
    got += b.length;
    if (got > MAX_TOKEN_BYTES) {
      source.destroy();
      throw new UsageError(`${name} holds more than ${MAX_TOKEN_BYTES} bytes, which is not a join token: ${fix}`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Build a token (tests, examples): base64(gzip(kubeconfig)). */
export async function encodeJoinToken(opts: { server: string; user: string; token: string; caData?: string }): Promise<string> {
  const { gzipSync } = await import('node:zlib');
  const kubeconfig = [
    'apiVersion: v1',
    'clusters:',
    '- cluster:',
    `    server: ${opts.server}`,
    `    certificate-authority-data: ${opts.caData ?? Buffer.from('not a real CA').toString('base64')}`,
    '  name: k0s',
    'contexts:',
    '- context:',
    '    cluster: k0s',
    `    user: ${opts.user}`,
    '  name: k0s',
    'current-context: k0s',
    'kind: Config',
    'preferences: {}',
    'users:',
    `- name: ${opts.user}`,
    '  user:',
    `    token: ${opts.token}`,
    '',
  ].join('\n');
  return gzipSync(Buffer.from(kubeconfig)).toString('base64');
}
