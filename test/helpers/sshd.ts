import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real OpenSSH sshd on 127.0.0.1 for tests: its own host key, an authorized_keys file that
 * only holds the test key, no password login, DEBUG3 log (to grep for secrets). Clients use the
 * test key and a test known_hosts through `sshOptions()`, never ~/.ssh.
 */
export class TestSshd {
  readonly dir: string;
  port = 0;
  readonly logFile: string;
  readonly knownHosts: string;
  private proc?: ChildProcess;

  constructor(
    readonly clientKey: ClientKey,
    /** sshd_config lines appended at the end (Match blocks). */
    readonly extraConfig: string[] = [],
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'pi-prep-sshd-'));
    this.logFile = join(this.dir, 'sshd.log');
    this.knownHosts = join(this.dir, 'known_hosts');
  }

  async start(): Promise<this> {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    this.port = await freePort();
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pi-prep-test-host', '-f', join(this.dir, 'host_ed25519')]);
    // sshd reads authorized_keys as the logging-in user: let non-root test users reach it.
    chmodSync(this.dir, 0o755);
    writeFileSync(join(this.dir, 'authorized_keys'), readFileSync(this.clientKey.path + '.pub'), { mode: 0o644 });
    const config = [
      `Port ${this.port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(this.dir, 'host_ed25519')}`,
      `PidFile ${join(this.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'StrictModes no',
      'LogLevel DEBUG3',
      'MaxStartups 50',
      ...this.extraConfig,
      '',
    ].join('\n');
    writeFileSync(join(this.dir, 'sshd_config'), config);
    this.trustHostKey();
    this.proc = spawn('/usr/sbin/sshd', ['-D', '-f', join(this.dir, 'sshd_config'), '-E', this.logFile], { stdio: 'ignore' });
    await waitForPort(this.port, this.proc);
    return this;
  }

  /** known_hosts that holds this server's real key. */
  trustHostKey(): void {
    const pub = readFileSync(join(this.dir, 'host_ed25519.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    writeFileSync(this.knownHosts, `[127.0.0.1]:${this.port} ${pub}\n`);
  }

  /** known_hosts that holds some other key for this address (a reinstalled or spoofed host). */
  trustWrongKey(): void {
    const other = join(this.dir, 'other_ed25519');
    rmSync(other, { force: true });
    rmSync(other + '.pub', { force: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const pub = readFileSync(other + '.pub', 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    writeFileSync(this.knownHosts, `[127.0.0.1]:${this.port} ${pub}\n`);
  }

  /** `--ssh-option` values that make ssh use only the test key and the test known_hosts. */
  sshOptions(): string[] {
    return [
      `IdentityFile=${this.clientKey.path}`,
      'IdentitiesOnly=yes',
      'IdentityAgent=none',
      `UserKnownHostsFile=${this.knownHosts}`,
      'GlobalKnownHostsFile=/dev/null',
    ];
  }

  cliArgs(): string[] {
    return this.sshOptions().flatMap((o) => ['--ssh-option', o]);
  }

  /**
   * Freeze this sshd, listener and sessions (a peer that stops answering: power cut, cable
   * pulled): connections stay open, nothing answers. Returns the function that thaws them.
   */
  freeze(): () => void {
    const listener = this.proc?.pid;
    const parentOf = (pid: string) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]);
    const all = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
    const tree = new Set<number>([listener!]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const p of all) {
        try {
          if (!tree.has(Number(p)) && tree.has(parentOf(p))) (tree.add(Number(p)), (grew = true));
        } catch {
          // gone meanwhile
        }
      }
    }
    for (const p of tree) process.kill(p, 'SIGSTOP');
    return () => tree.forEach((p) => {
      try {
        process.kill(p, 'SIGCONT');
      } catch {
        // gone
      }
    });
  }

  host(user: string): string {
    return `${user}@127.0.0.1:${this.port}`;
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null) {
      const closed = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await closed;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ClientKey {
  path: string;
  dir: string;
}

export function makeClientKey(): ClientKey {
  const dir = mkdtempSync(join(tmpdir(), 'pi-prep-sshkey-'));
  const path = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pi-prep-test-client', '-f', path]);
  return { path, dir };
}

/**
 * A local user for SSH tests, with sudo that needs no password ('nopasswd'), sudo that asks
 * for one ('password'), or none. Its password is '*' (no password login, not "locked").
 */
export function ensureUser(name: string, sudo: 'nopasswd' | 'password' | 'none'): () => void {
  const exists = (() => {
    try {
      execFileSync('id', ['-u', name], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  if (!exists) execFileSync('useradd', ['-m', '-s', '/bin/sh', name]);
  execFileSync('usermod', ['-p', '*', name]);
  const rule = `/etc/sudoers.d/pi-prep-test-${name}`;
  if (sudo !== 'none') {
    writeFileSync(rule, `${name} ALL=(ALL:ALL) ${sudo === 'nopasswd' ? 'NOPASSWD: ' : ''}ALL\n`, { mode: 0o440 });
    chmodSync(rule, 0o440);
  }
  return () => {
    rmSync(rule, { force: true });
    if (!exists) {
      try {
        execFileSync('userdel', ['-r', name], { stdio: 'ignore' });
      } catch {
        // a user still running a process is removed on the next run's setup at the latest
      }
    }
  };
}

/**
 * sshd's ChrootDirectory wants every component of the path root-owned and not writable by others,
 * so /tmp (1777) cannot hold a chroot: roots for SSH sessions are built under this directory.
 */
export const CHROOT_BASE = '/var/lib/pi-prep-test/chroots';

/** Run `build` with TMPDIR at CHROOT_BASE, then make the root fit for sshd's chroot and a login shell. */
export function chrootable(build: () => string): string {
  mkdirSync(CHROOT_BASE, { recursive: true, mode: 0o755 });
  chmodSync('/var/lib/pi-prep-test', 0o755);
  chmodSync(CHROOT_BASE, 0o755);
  const old = process.env.TMPDIR;
  process.env.TMPDIR = CHROOT_BASE;
  let root: string;
  try {
    root = build();
  } finally {
    if (old === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = old;
  }
  chmodSync(root, 0o755);
  // root's login shell is /bin/bash on the test host; a Pi has one too: busybox sh stands in.
  if (!existsSync(join(root, 'bin/bash'))) {
    writeFileSync(join(root, 'bin/bash'), '#!/bin/sh\nexec /bin/sh "$@"\n', { mode: 0o755 });
  }
  mkdirSync(join(root, 'root'), { recursive: true, mode: 0o700 });
  if (!existsSync(join(root, 'dev/null'))) execFileSync('mknod', ['-m', '666', join(root, 'dev/null'), 'c', '1', '3']);
  return root;
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function waitForPort(port: number, proc: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`sshd exited with ${proc.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port}`);
}
