import { UsageError } from '../core/errors.js';
import type { JumpHost } from './inventory-types.js';

/** Options of the host's own ssh that the hop to the jump host needs too (key, known hosts). */
const CARRIED = ['IdentityFile', 'IdentitiesOnly', 'IdentityAgent', 'UserKnownHostsFile', 'GlobalKnownHostsFile', 'StrictHostKeyChecking', 'ConnectTimeout'];
/** ssh runs a ProxyCommand through the shell: every word must be free of shell syntax. */
const SAFE = /^[A-Za-z0-9_./@+,:=~-]+$/;

/**
 * `ProxyCommand=ssh -W '[%h]:%p' ... BASTION`, the ssh option that reaches a host through a
 * k0sctl `ssh.bastion`. ProxyJump would not do: the ssh it starts gets none of our -o options,
 * so the bastion's keyPath and the user's known_hosts settings would be lost.
 */
export function proxyCommand(jump: JumpHost, sshOptions: string[], hostName: string): string {
  const words: string[] = ['-o', 'BatchMode=yes'];
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
