export interface CgroupInfo {
  version: 1 | 2 | undefined;
  controllers: string[];
}

/** v2 when /sys/fs/cgroup/cgroup.controllers exists; else v1 controllers from /proc/cgroups. */
export function parseCgroups(controllersV2: string | undefined, procCgroups: string | undefined): CgroupInfo {
  if (controllersV2 !== undefined) {
    return { version: 2, controllers: controllersV2.trim().split(/\s+/).filter(Boolean) };
  }
  if (procCgroups !== undefined) {
    const controllers = procCgroups
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(/\s+/))
      .filter((f) => f[3] === '1')
      .map((f) => f[0]!);
    return { version: 1, controllers };
  }
  return { version: undefined, controllers: [] };
}
