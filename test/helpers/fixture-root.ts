import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';

export const ARM64_BUSYBOX = process.env.PI_PREP_ARM64_BUSYBOX ?? '/var/cache/pi-prep-test/arm64/bin/busybox';
export const AMD64_BUSYBOX = '/bin/busybox';
/** Where stand-ins append what they were asked: one line per call, argv joined by tabs. */
export const STANDIN_LOG = '/var/log/pi-prep-standins.log';

export interface RootSpec {
  arch: 'arm64' | 'amd64';
  /** Paths inside the root -> contents. */
  files?: Record<string, string | Buffer>;
  /** Commands replaced by recording stand-ins (absolute paths inside the root). */
  standIns?: Record<string, string>;
  init?: 'systemd' | 'openrc';
}

/**
 * A real root filesystem built from Debian's busybox-static for the arch; commands run in it
 * through chroot (and qemu-user-static for arm64). Fails loudly when the host is not set up.
 */
export function buildRoot(spec: RootSpec): string {
  const busybox = spec.arch === 'arm64' ? ARM64_BUSYBOX : AMD64_BUSYBOX;
  if (!existsSync(busybox)) throw new Error(`${busybox} missing: run scripts/setup-test-host.sh as root`);
  const root = mkdtempSync(join(tmpdir(), `pi-prep-root-${spec.arch}-`));
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'usr/local/bin', 'etc', 'tmp', 'var/log', 'run', 'proc', 'sys', 'dev']) {
    mkdirSync(join(root, d), { recursive: true });
  }
  copyFileSync(busybox, join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  execFileSync('chroot', [root, '/bin/busybox', '--install', '-s'], { stdio: 'ignore' });
  chmodSync(join(root, 'tmp'), 0o1777);
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n');
  if (spec.init === 'openrc') {
    writeFile(root, '/sbin/openrc', '#!/bin/sh\nexit 0\n', 0o755);
  } else if (spec.init === 'systemd') {
    writeFile(root, '/lib/systemd/systemd', '#!/bin/sh\nexit 0\n', 0o755);
  }
  for (const [p, body] of Object.entries(spec.files ?? {})) writeFile(root, p, body);
  for (const [p, body] of Object.entries(spec.standIns ?? {})) writeFile(root, p, body, 0o755);
  return root;
}

export function writeFile(root: string, path: string, body: string | Buffer, mode?: number): void {
  const p = join(root, path);
  mkdirSync(dirname(p), { recursive: true });
  rmSync(p, { force: true }); // replaces busybox applet links too
  writeFileSync(p, body);
  if (mode !== undefined) chmodSync(p, mode);
}

/** A stand-in that records its argv; `body` (sh) runs after, with "$@" intact. */
export function recordingScript(body = 'exit 0'): string {
  return [
    '#!/bin/sh',
    `{ printf '%s' "\${0##*/}"; for a in "$@"; do printf '\\t%s' "$a"; done; printf '\\n'; } >> ${STANDIN_LOG}`,
    body,
    '',
  ].join('\n');
}

/** Each recorded call as argv (name first). */
export function standInCalls(root: string): string[][] {
  const p = join(root, STANDIN_LOG);
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
}

export function removeRoot(root: string): void {
  rmSync(root, { recursive: true, force: true });
}

/** Standard fixture files of a Linux system. */
export function osRelease(id: string, versionId: string, pretty: string, extra = ''): string {
  return `PRETTY_NAME="${pretty}"\nNAME="${pretty}"\nID=${id}\nVERSION_ID="${versionId}"\n${extra}`;
}
