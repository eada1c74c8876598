import { rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onInterrupt } from '../core/cleanup.js';
import { UsageError } from '../core/errors.js';
import type { JumpHost } from './inventory-types.js';

/** Options of the host's own ssh that the hop to the jump host needs too (key, known hosts). */
const CARRIED = ['IdentityFile', 'IdentitiesOnly', 'IdentityAgent', 'UserKnownHostsFile', 'GlobalKnownHostsFile', 'StrictHostKeyChecking', 'ConnectTimeout'];
/** The name a bastion's pinned key is filed under (ssh's HostKeyAlias); ssh's complaint names it. */
export const PINNED_BASTION = 'pi-prep-pinned-bastion';
/** ssh runs a ProxyCommand through the shell: every word must be free of shell syntax. */
const SAFE = /^[A-Za-z0-9_./@+,:=~-]+$/;

/**
 * `ProxyCommand=ssh -W '[%h]:%p' ... BASTION`, the ssh option that reaches a host through a
 * k0sctl `ssh.bastion`. ProxyJump would not do: the ssh it starts gets none of our -o options,
 * so the bastion's keyPath and the user's known_hosts settings would be lost.
 */
export function proxyCommand(jump: JumpHost, sshOptions: string[], hostName: string, pinnedKnownHosts?: string): string {
  const words: string[] = ['-o', 'BatchMode=yes'];
  // The bastion's pinned key (a known_hosts holding only it) comes first: ssh keeps the first value.
  if (jump.hostKey && pinnedKnownHosts) {
    words.push('-o', `UserKnownHostsFile=${pinnedKnownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', `HostKeyAlias=${PINNED_BASTION}`, '-o', 'StrictHostKeyChecking=yes');
  }
  if (jump.user) words.push('-l', jump.user);
  if (jump.port) words.push('-p', String(jump.port));
  if (jump.keyPath) words.push('-o', `IdentityFile=${jump.keyPath}`);
  for (const o of sshOptions) {
    const key = /^[A-Za-z]+/.exec(o)?.[0] ?? '';
    const carried = CARRIED.find((k) => k.toLowerCase() === key.toLowerCase());
    if (!carried || (carried === 'IdentityFile' && jump.keyPath)) continue;
    words.push('-o', o.replace(/^([A-Za-z]+)\s+/, '$1='));
  }
  words.push(jump.host);
  const bad = words.find((w) => !SAFE.test(w));
  if (bad !== undefined) {
    throw new UsageError(`host ${hostName}: the bastion setting "${bad}" cannot be handed to ssh safely (spaces or shell characters): use plain paths and names`);
  }
  return `ProxyCommand=ssh -W '[%h]:%p' ${words.join(' ')}`;
}

/**
 * The bastions' pinned keys, each in a known_hosts of its own in a private directory that lives
 * as long as the fleet run (removed at the end, on Ctrl-C, and at exit).
 */
export async function pinnedBastions(jumps: (JumpHost | undefined)[]): Promise<{ files: (string | undefined)[]; remove: () => Promise<void> }> {
  if (!jumps.some((j) => j?.hostKey)) return { files: jumps.map(() => undefined), remove: async () => undefined };
  const dir = await mkdtemp(join(tmpdir(), 'pi-prep-bastion-'));
  const gone = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', gone);
  const forget = onInterrupt(gone);
  const files = await Promise.all(jumps.map(async (j, i) => {
    if (!j?.hostKey) return undefined;
    const file = join(dir, `known_hosts-${i}`);
    await writeFile(file, `${PINNED_BASTION} ${j.hostKey}\n`, { mode: 0o600 });
    return file;
  }));
  return { files, remove: async () => (forget(), process.removeListener('exit', gone), gone()) };
}
