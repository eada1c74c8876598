import { RefusedError, TaskFailedError } from '../core/errors.js';
import { lastLine } from '../core/text.js';
import type { SshAddress } from './ssh-spec.js';

/** What a remote command returned, stdout as bytes (file contents). */
export interface Raw {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
  /** Set when a bound stopped the command: what the bound was. */
  timedOut?: string;
}

/** What ssh itself (not the remote command) says when it fails with 255. */
export function sshComplaint(stderr: string): boolean {
  return /^(ssh:|Host key|No .* host key|@@@|.*Permission denied \(|mux_client|Control socket|kex_exchange)/m.test(stderr);
}

/** ssh's complaint as one line that says what to do. */
export function connectError(r: Raw, where: string, addr: SshAddress, pinned = false, options: readonly string[] = []): Error {
  const e = r.stderr;
  if (/pi-prep-pinned-bastion/.test(e)) {
    return new RefusedError(`the host key of the bastion in front of ${where} is not the one pinned for it (k0sctl's bastion hostKey): another machine, or it was reinstalled; check it, then correct the pinned key`);
  }
  // With a master connection (ControlPersist) ssh sends the ProxyCommand's stderr to /dev/null:
  // a bastion that refused, its pinned key included, shows only as a closed connection.
  if (/kex_exchange_identification|Connection closed/i.test(e) && options.some((o) => /^ProxyCommand[= ].*pi-prep-pinned-bastion/i.test(o))) {
    return new TaskFailedError(`ssh to ${where} through its bastion failed: the bastion closed the connection, or its host key is not the one pinned for it (k0sctl's bastion hostKey); check the bastion with ssh`);
  }
  if (pinned && /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed|Host key verification failed|No .* host key is known/i.test(e)) {
    return new RefusedError(`the host key of ${where} is not the one pinned for it (--host-key, k0sctl's hostKey): another machine, or it was reinstalled; check it, then correct the pinned key`);
  }
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/i.test(e)) {
    return new RefusedError(`the host key of ${where} does not match known_hosts (another machine, or it was reinstalled): check it, then remove the old entry with \`ssh-keygen -R ${addr.host}\``);
  }
  if (/host key is known|Host key verification failed|authenticity of host/i.test(e)) {
    const login = `ssh ${addr.port ? `-p ${addr.port} ` : ''}${addr.user ? `${addr.user}@` : ''}${addr.host}`;
    return new RefusedError(`the host key of ${where} is not in known_hosts: connect once with \`${login}\` to check and accept it, or pass --ssh-option StrictHostKeyChecking=accept-new`);
  }
  if (/Connection refused/i.test(e)) return new TaskFailedError(`cannot connect to ${where}: connection refused; is sshd running there and is the port right?`);
  if (/Could not resolve hostname/i.test(e)) return new TaskFailedError(`cannot resolve ${addr.host}: check the name in --host, or use its address`);
  if (/timed out/i.test(e)) return new TaskFailedError(`cannot connect to ${where}: timed out; is it switched on and on the network?`);
  if (/Permission denied/i.test(e)) return new TaskFailedError(`${where} refused the login${addr.user ? ` for ${addr.user}` : ''}: install your public key there (ssh-copy-id) or name the key with --ssh-option IdentityFile=FILE`);
  return new TaskFailedError(`ssh to ${where} failed: ${lastLine(e) || `exit ${r.exitCode}`}`);
}

/** `sudo -n true` failed (not with ssh's 255): why, and what the user can do. */
export function sudoError(r: Raw, where: string, user = 'the login user'): Error {
  if (/password is required|terminal is required|askpass/i.test(r.stderr)) {
    return new TaskFailedError(`sudo on ${where} wants a password for ${user}, which pi-prep cannot type: allow ${user} passwordless sudo (NOPASSWD) or connect as root`);
  }
  if (/not found/i.test(r.stderr)) return new TaskFailedError(`${where} has no sudo and ${user} is not root: install sudo there or connect as root`);
  return new TaskFailedError(`sudo -n on ${where} failed for ${user}: ${lastLine(r.stderr) || `exit ${r.exitCode}`}; allow passwordless sudo or connect as root`);
}

/** A file operation's script failed. */
export function fileError(r: Raw, what: string, path: string, where: string): Error {
  return new TaskFailedError(`cannot ${what} ${path} on ${where}: ${lastLine(r.stderr) || `exit ${r.exitCode}`}`);
}
