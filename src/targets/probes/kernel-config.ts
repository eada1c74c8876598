/** `CONFIG_X=y|m|"str"|n`; `# CONFIG_X is not set` counts as n. */
export type KernelConfig = Map<string, string>;

export function parseKernelConfig(text: string): KernelConfig {
  const out: KernelConfig = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const set = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (set) {
      out.set(set[1]!, set[2]!);
      continue;
    }
    const unset = /^# CONFIG_([A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset) out.set(unset[1]!, 'n');
  }
  return out;
}

/** As k0s sysinfo: built in (y) or a module (m) passes. */
export function isEnabled(config: KernelConfig, option: string): boolean {
  const v = config.get(option.replace(/^CONFIG_/, ''));
  return v === 'y' || v === 'm';
}

/** Where k0s looks for the running kernel's config, in its order (release from uname -r). */
export function kernelConfigPaths(release: string): string[] {
  return [
    '/proc/config.gz',
    `/boot/config-${release}`,
    `/usr/lib/modules/${release}/config`,
    `/lib/modules/${release}/build/.config`,
  ];
}
