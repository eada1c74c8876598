import { ALPINE_K0S_BIN, ALPINE_TOKEN_FILE } from '../src/lib/alpine/paths.js';
import { done, todo, type Recipe, type Task } from '../src/run/task.js';
import type { Target } from '../src/targets/target.js';
import { joinSteps, type Join } from '../src/steps/k0s/join.js';
import { PREPARED_ONLY, serviceNotes } from '../src/lib/k0s/notes.js';
import { layoutProblems, type AlpineLayout } from '../src/lib/alpine/layout.js';
import { cgroupModeTask, serviceInRunlevelTask, serviceStartedTask } from '../src/steps/alpine/openrc.js';
import { apkCacheTask, mediaCmdlineTask } from '../src/steps/alpine/boot-media.js';
import { apkPackagesTask } from '../src/steps/alpine/apk.js';
import { dataMountedTask, dataPartitionTask, fstabTask, type DataPartitionState } from '../src/steps/alpine/data-partition.js';
import { PersistTracker, lbuCommitTask, lbuIncludeTask } from '../src/steps/alpine/lbu.js';
import { rebootTask, type RebootState } from '../src/steps/alpine/reboot.js';
import { workerPreflight } from '../src/steps/preflight.js';
import { k0sPathTask } from '../src/steps/alpine/k0s-path.js';


export interface AlpineOptions {
  /** A whole disk whose free space becomes the data partition (default: the boot media's disk). */
  dataDevice?: string;
  /** Reboot when needed instead of stopping. */
  reboot?: boolean;
}

/**
 * The seed's Alpine steps on a running Pi, made to survive reboots of a RAM-based (diskless) root:
 *   1. Alpine on aarch64; lbu media and boot media found
 *   2. cgroups: unified mode in rc.conf, service started and in the boot runlevel
 *   3. cgroup flags in cmdline.txt (boot media remounted rw for the edit, ro after)
 *   4. apk cache on the boot media; apk add iptables coreutils findutils curl (missing ones)
 *   5. data partition from free space, ext4 labelled k0s-data; fstab: it at /media/k0s-data, its k0s
 *      directory bound to /var/lib/k0s (k0s reset empties only that; pi-prep's files sit beside it)
 *   6. lbu commit -d; reboot; resume: both mounted
 *   7. k0s and the token on the data partition, the service saved by lbu; start it with rc-service; lbu commit -d
 */
export function alpineRecipe(target: Target, l: AlpineLayout, join: Join | undefined, opts: AlpineOptions = {}): Recipe {
  const keep = new PersistTracker();
  const data: DataPartitionState = {};
  const reboot: RebootState = { pending: false };
  // On a diskless root every change to /etc (and to lbu's include list) must be committed.
  const etc = (t: Task) => (l.diskless ? keep.wrap(t) : t);
  const diskless = (...tasks: Task[]) => (l.diskless ? tasks : []);
  const k0s = join && joinSteps({ ...join, opts: { ...join.opts, binPath: ALPINE_K0S_BIN, tokenFile: ALPINE_TOKEN_FILE } });
  // k0s on the data partition, the token beside it, the service saved by lbu and started OpenRC's way.
  const worker = k0s ? [
    k0s.binary,
    etc(k0sPathTask(ALPINE_K0S_BIN)),
    k0s.token, // on the data partition: lbu would put it in the apkovl on the FAT boot media
    ...diskless(etc(lbuIncludeTask('/etc/init.d/k0sworker', 'lbu keeps only symlinks in /etc/init.d'))),
    etc(k0s.install),
    etc(serviceInRunlevelTask('k0sworker', 'default')),
    k0s.start,
  ] : [];

  return {
    name: 'alpine',
    title: 'k0s worker on Alpine Linux (Raspberry Pi)',
    tasks: [
      alpinePreflight(l),
      ...(k0s?.server ? [k0s.server] : []),
      etc(cgroupModeTask()),
      serviceStartedTask('cgroups'),
      etc(serviceInRunlevelTask('cgroups', 'boot')),
      mediaCmdlineTask(l),
      ...diskless(etc(apkCacheTask(l))),
      etc(apkPackagesTask(l)),
      dataPartitionTask(l, data, opts.dataDevice),
      etc(fstabTask()),
      ...diskless(lbuCommitTask('lbu-commit-before-reboot', keep, 'before the reboot')),
      rebootTask(data, reboot, opts.reboot),
      dataMountedTask(),
      workerPreflight(() => reboot.pending),
      ...worker,
      ...diskless(lbuCommitTask('lbu-commit', keep, join ? 'token and service' : 'after the reboot')),
    ],
    notes: join ? serviceNotes(target) : [PREPARED_ONLY, ...(l.diskless ? [K0SCTL_DISKLESS] : [])],
  };
}

/** k0sctl installs k0s to /usr/local/bin and its service without lbu: on a diskless root both are gone at the next boot. */
const K0SCTL_DISKLESS = 'This Alpine is diskless: what `k0sctl apply` installs (/usr/local/bin/k0s, /etc/init.d/k0sworker) is in RAM until saved: run `lbu include /usr/local/bin/k0s /etc/init.d/k0sworker && lbu commit -d` after it, or let pi-prep join (--join), which keeps k0s on the data partition.';

function alpinePreflight(l: AlpineLayout): Task {
  return {
    id: 'alpine',
    title: 'Alpine Linux on aarch64, boot media found',
    async check() {
      const problems = layoutProblems(l);
      if (problems.length) return todo(problems.join('; '));
      const media = `${l.mediaMount!.device} at ${l.mediaDir} (${l.mediaMount!.options.includes('ro') ? 'ro' : 'rw'})`;
      return done(`Alpine ${l.versionId} ${l.arch}, ${l.diskless ? `diskless, LBU_MEDIA=${l.lbuMedia ?? '-'}, ` : 'installed to disk, '}${media}`);
    },
  };
}
