import type { UsageError } from '../core/errors.js';
import type { Entry } from './yaml-source.js';

/** A jump host ssh goes through to reach the host (k0sctl's `ssh.bastion`). */
export interface JumpHost {
  host: string;
  user?: string;
  port?: number;
  keyPath?: string;
  /** The bastion's pinned key, `TYPE BASE64` (k0sctl's bastion.hostKey). */
  hostKey?: string;
}

/** How a host's ssh is set up beyond -o options (k0sctl's ssh.hostKey, openSSH.configPath). */
export interface SshSettings {
  /** The only host key accepted: `TYPE BASE64`. */
  hostKey?: string;
  /** ssh -F FILE. */
  sshConfig?: string;
}

/** A host as a format reader found it: pi-prep's own keys (hostname, user, port, ssh-options, options). */
export interface RawHost {
  name: string;
  entry: Entry;
  jump?: JumpHost;
  ssh?: SshSettings;
  /** An error pointing at where the host is written. */
  bad: (why: string) => UsageError;
}

/** A host the inventory lists that pi-prep leaves alone, and why. */
export interface Skipped {
  name: string;
  why: string;
}
