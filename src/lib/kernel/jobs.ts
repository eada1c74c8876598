/**
 * make -j for a kernel build: 1.5 x cores (the Raspberry Pi documentation's figure), capped so
 * every job has about 512 MiB after 512 MiB for the system: a 2 GB Pi 4 gets -j3, a 1 GB board
 * -j1 (high -j on small boards ends in the OOM killer, raspberrypi/linux issue 876).
 */
export function buildJobs(cores: number, memBytes: number | undefined): number {
  const byCores = Math.max(1, Math.ceil(cores * 1.5));
  if (!memBytes) return Math.max(1, Math.min(byCores, cores));
  const mib = memBytes / (1024 * 1024);
  const byRam = Math.max(1, Math.floor((mib - 512) / 512));
  return Math.max(1, Math.min(byCores, byRam));
}

/** rpi-X.Y.y for a running release such as 6.6.51+rpt-rpi-v8 or 6.12.25-v8-16k+. */
export function branchFor(release: string): string | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? `rpi-${m[1]}.${m[2]}.y` : undefined;
}
