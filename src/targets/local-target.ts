import { downloadVerified, type VerifiedDownload } from '../core/download.js';
import { HostFsTarget } from './host-fs-target.js';

/** This machine: pi-prep runs on the Pi itself. */
export class LocalTarget extends HostFsTarget {
  readonly kind = 'local' as const;
  readonly label = 'this machine';
  readonly liveServices = true;
  readonly canReboot = true;
  readonly longJobs = true;

  async hostPath(path: string, _followLast = true): Promise<string> {
    return path;
  }

  protected commandFor(argv: readonly string[]): readonly string[] {
    return argv;
  }

  download(d: VerifiedDownload): Promise<string> {
    return downloadVerified(d);
  }

  protected async hostCwd(cwd: string | undefined): Promise<string | undefined> {
    return cwd;
  }
}
