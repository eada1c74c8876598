import { access, constants } from 'node:fs/promises';
import { homedir } from 'node:os';
import { UsageError } from '../core/errors.js';

/** Where an SSH target is: `[USER@]HOST[:PORT]`, IPv6 as `[ADDR]:PORT`. */
export interface SshAddress {
  user?: string;
  host: string;
  port?: number;
}

const USER = /^[A-Za-z0-9._][A-Za-z0-9._-]*$/;
const HOST = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

export function parseHostSpec(spec: string, flag = '--host'): SshAddress {
  const bad = (why: string) => new UsageError(`${flag} ${spec}: ${why}; use [USER@]HOST[:PORT], e.g. ${flag} pi@pi4.local`);
  let rest = spec.trim();
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!USER.test(user)) throw bad(`"${user}" is not a user name`);
  }
  let host = rest;
  let port: string | undefined;
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(rest);
  if (v6) {
    host = v6[1]!;
    port = v6[2];
  } else if (rest.includes(':')) {
    [host, port] = rest.split(':', 2) as [string, string];
    if (rest.split(':').length > 2) throw bad('write an IPv6 address in brackets');
  }
  if (!v6 && !HOST.test(host)) throw bad(host ? `"${host}" is not a host name` : 'the host is missing');
  let portNum: number | undefined;
  if (port !== undefined) {
    portNum = Number(port);
    if (!/^\d+$/.test(port) || portNum < 1 || portNum > 65535) throw bad(`"${port}" is not a port`);
  }
  return { ...(user ? { user } : {}), host, ...(portNum ? { port: portNum } : {}) };
}

export function formatAddress(a: SshAddress): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `${a.user ? `${a.user}@` : ''}${host}${a.port ? `:${a.port}` : ''}`;
}

/** `--ssh-option KEY=VALUE` is handed to ssh as `-o KEY=VALUE`: reject what ssh would read as a flag. */
export function checkSshOption(opt: string): string {
  if (!/^[A-Za-z][A-Za-z0-9]*[= ]\S/.test(opt) || /[\n\r]/.test(opt)) {
    throw new UsageError(`--ssh-option ${opt}: expected KEY=VALUE as in ssh_config, e.g. --ssh-option IdentityFile=~/.ssh/pi`);
  }
  return opt;
}

/** A host's public key as known_hosts and k0sctl's `hostKey` write it: `TYPE BASE64` (a trailing comment is dropped). */
export function checkHostKey(key: string, flag = '--host-key'): string {
  const [type, data] = key.trim().split(/\s+/);
  if (!type || !data || !/^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+$/.test(type) || !/^[A-Za-z0-9+/]+={0,2}$/.test(data)) {
    throw new UsageError(`${flag} ${key}: expected the host's public key as TYPE BASE64, e.g. the line \`ssh-keyscan -t ed25519 HOST\` prints without the host name`);
  }
  return `${type} ${data}`;
}

/** `--ssh-config FILE` (ssh -F): a readable file; `~/` is the user's home, as k0sctl's configPath is written. */
export async function checkSshConfig(file: string, flag = '--ssh-config'): Promise<string> {
  const path = file.startsWith('~/') ? `${homedir()}/${file.slice(2)}` : file;
  if (!(await access(path, constants.R_OK).then(() => true, () => false))) throw new UsageError(`${flag} ${file}: cannot read that ssh config file; check the path`);
  return path;
}
