import { HostFsTarget } from './host-fs-target.js';

/** This machine: pi-prep runs on the Pi itself. */
export class LocalTarget extends HostFsTarget {
  readonly kind = 'local' as const;
  readonly label = 'this machine';
  readonly liveServices = true;

  async hostPath(path: string, _followLast = true): Promise<string> {
    return path;
  }

  protected commandFor(argv: readonly string[]): readonly string[] {
    return argv;
  }

  protected async hostCwd(cwd: string | undefined): Promise<string | undefined> {
    return cwd;
  }
}
