import { readlink, lstat, open, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { posix } from 'node:path';
import { HostFsTarget } from './host-fs-target.js';

/**
 * A root filesystem in a directory (a Pi's card mounted on a workstation, or a chroot):
 * files are read and written under DIR, commands run as `chroot DIR ...` (an arm64 root runs
 * through qemu-user-static's binfmt handler). Services cannot run here: they start at next boot.
 */
export class RootTarget extends HostFsTarget {
  readonly kind = 'root' as const;
  readonly liveServices = false;
  readonly canReboot = false;
  readonly longJobs = false;
  readonly label: string;

  constructor(readonly root: string) {
    super();
    this.root = posix.resolve(root);
    this.label = `root ${this.root}`;
  }

  /**
   * Resolve a target path inside the root the way the kernel would after chroot: symlinks are
   * followed component by component and absolute link targets start again at the root, so no
   * link in the root can lead a write outside it.
   */
  async hostPath(path: string, followLast = true): Promise<string> {
    const parts = posix.normalize('/' + path).split('/').filter(Boolean);
    const resolved: string[] = [];
    let hops = 0;
    while (parts.length > 0) {
      const part = parts.shift()!;
      if (part === '.') continue;
      if (part === '..') {
        resolved.pop();
        continue;
      }
      const host = posix.join(this.root, ...resolved, part);
      const st = await lstat(host).catch(() => undefined);
      // stat and remove act on a final link itself (like lstat); reads and writes follow it.
      if (st?.isSymbolicLink() && (parts.length > 0 || followLast)) {
        if (++hops > 40) throw new Error(`too many symlinks under ${this.root} resolving ${path}`);
        const link = await readlink(host);
        if (link.startsWith('/')) resolved.length = 0;
        parts.unshift(...link.split('/').filter(Boolean));
        continue;
      }
      resolved.push(part);
    }
    return posix.join(this.root, ...resolved);
  }

  /**
   * A directory under the root, reached from the root one component at a time without following
   * any link (hostPath has resolved the links already): a link that appears there later is refused,
   * so a write can never be led outside the root.
   */
  protected override async openDir(dir: string): Promise<FileHandle> {
    const rel = posix.relative(this.root, dir);
    if (rel.startsWith('..') || posix.isAbsolute(rel)) throw new Error(`pi-prep bug: ${dir} is not under ${this.root}`);
    let cur = await open(this.root, constants.O_RDONLY | constants.O_DIRECTORY);
    for (const part of rel.split('/').filter(Boolean)) {
      try {
        const next = await open(`/proc/self/fd/${cur.fd}/${part}`, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
        await cur.close();
        cur = next;
      } catch (err) {
        await cur.close();
        throw err;
      }
    }
    return cur;
  }

  protected commandFor(argv: readonly string[]): readonly string[] {
    return ['chroot', this.root, ...argv];
  }

  protected async hostCwd(cwd: string | undefined): Promise<string | undefined> {
    // chroot starts in the new root; a cwd inside the target needs `cd` there, which commands
    // here never need: callers pass absolute paths.
    if (cwd) throw new Error('a root target runs commands from its / ; pass absolute paths instead of cwd');
    return undefined;
  }
}
