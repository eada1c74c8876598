/** Independent readers for alpine-sd tests: the raw tools, never pi-prep's own code. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const MT = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

/** The cached ~100 MB Alpine-like tarball (built once, under /var/cache/pi-prep-test/). */
export function alpineTarball(): string {
  return execFileSync('bash', [join(REPO, 'scripts/make-alpine-tarball.sh')]).toString().trim();
}

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { input, env: MT, maxBuffer: 1 << 28 }).toString();
}

export function hashTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

/** Every file of the tarball, extracted by GNU tar. */
export function tarballFiles(tarball: string): Map<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'pi-prep-t-'));
  try {
    sh('tar', ['-xzf', tarball, '-C', dir]);
    return hashTree(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every file of the boot filesystem at `offset`, copied out by mtools. */
export function bootFiles(dev: string, offset: number): Map<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'pi-prep-b-'));
  try {
    sh('mcopy', ['-s', '-Q', '-i', `${dev}@@${offset}`, '::/', dir + '/']);
    return hashTree(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function bootFile(dev: string, offset: number, name: string): Buffer {
  return execFileSync('mcopy', ['-i', `${dev}@@${offset}`, `::${name}`, '-'], { env: MT, maxBuffer: 1 << 26 });
}

/** `sfdisk --dump` partitions: start/size in sectors, type, bootable. */
export function partitions(dev: string): { start: number; size: number; type: string; bootable: boolean }[] {
  let text: string;
  try {
    text = execFileSync('sfdisk', ['--dump', dev], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (err) {
    // No table at all: sfdisk says so and exits 1; that is "no partitions", anything else is a failure.
    if (/does not contain a recognized partition table/.test(String((err as { stderr?: Buffer }).stderr))) return [];
    throw err;
  }
  return text.split('\n').flatMap((line) => {
    const m = /start=\s*(\d+), size=\s*(\d+), type=(\w+)(.*)/.exec(line);
    return m ? [{ start: Number(m[1]), size: Number(m[2]), type: m[3]!, bootable: /bootable/.test(m[4]!) }] : [];
  });
}

export function fsckVfat(dev: string, offset: number, size: number): string {
  const loop = sh('losetup', ['-r', '-f', '--show', '-o', String(offset), '--sizelimit', String(size), dev]).trim();
  try {
    return sh('fsck.vfat', ['-n', loop]);
  } finally {
    sh('losetup', ['-d', loop]);
  }
}

export function e2fsck(dev: string, offset: number): string {
  return sh('e2fsck', ['-fn', `${dev}?offset=${offset}`]);
}

/** debugfs request on the data filesystem (read-only). */
export function debugfs(dev: string, offset: number, request: string): string {
  return execFileSync('debugfs', ['-R', request, `${dev}?offset=${offset}`], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 28 }).toString();
}

/** `tar -tvzf --numeric-owner` of an archive: path -> "mode uid/gid [-> target]". */
export function tarListing(archive: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  const text = execFileSync('tar', ['-tvzf', '-', '--numeric-owner'], { input: archive }).toString();
  for (const line of text.trim().split('\n')) {
    const m = /^(\S+)\s+(\d+)\/(\d+)\s+\d+\s+\S+\s+\S+\s+(.+?)(?: -> (.+))?$/.exec(line);
    if (m) out.set(m[4]!.replace(/\/$/, ''), `${m[1]} ${m[2]}/${m[3]}${m[5] ? ` -> ${m[5]}` : ''}`);
  }
  return out;
}

export function sha256(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}
