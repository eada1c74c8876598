import { readlink, lstat } from 'node:fs/promises';
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
