import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../core/errors.js';

const PUBLIC_KEY = /^(ssh-|ecdsa-|sk-)\S+ [A-Za-z0-9+/=]+/;

/** The public key lines of a file; a private key or anything else is refused with the fix. */
export async function readPublicKeys(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) throw new UsageError(`cannot read --ssh-key ${file}: give a public key file such as ~/.ssh/id_ed25519.pub`);
  const lines = text.split('\n').map((x) => x.trim()).filter((x) => x && !x.startsWith('#'));
  if (!lines.length || lines.some((x) => !PUBLIC_KEY.test(x))) {
    throw new UsageError(`--ssh-key ${file} is not an OpenSSH public key: give the .pub file, never the private key`);
  }
  return lines;
}

/** The home of the user who ran pi-prep (under sudo, SUDO_USER's, not root's). */
async function invokingHome(): Promise<string> {
  const user = process.env.SUDO_USER;
  if (!user || user === 'root') return homedir();
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  return passwd.split('\n').map((l) => l.split(':')).find((f) => f[0] === user)?.[5] || homedir();
}

/** `ssh-add -L`: the keys an agent holds (none when there is no agent). */
function agentKeys(): Promise<string[]> {
  return new Promise((resolve) => {
    if (!process.env.SSH_AUTH_SOCK) return resolve([]);
    execFile('ssh-add', ['-L'], { timeout: 5000 }, (err, stdout) => resolve(err ? [] : stdout.split('\n').map((l) => l.trim()).filter((l) => PUBLIC_KEY.test(l))));
  });
}

/**
 * The keys a card gets when --ssh-key is not given: the invoking user's ~/.ssh/*.pub, else what
 * their agent holds. `source` says where they came from, for the user.
 */
export async function defaultPublicKeys(): Promise<{ keys: string[]; source: string }> {
  const dir = join(await invokingHome(), '.ssh');
  const pubs = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.pub')).sort();
  const keys: string[] = [];
  for (const f of pubs) keys.push(...(await readPublicKeys(join(dir, f)).catch(() => [])));
  if (keys.length) return { keys, source: pubs.map((f) => join(dir, f)).join(', ') };
  const agent = await agentKeys();
  return { keys: agent, source: agent.length ? 'the ssh agent (ssh-add -L)' : '' };
}
