/** The seed's packages: k0s needs iptables; the GNU tools and curl are what its scripts expect. */
export const SEED_PACKAGES = ['iptables', 'coreutils', 'findutils', 'curl'] as const;
/** What the data-partition step runs: busybox has no sfdisk, and its blkid lacks -p/-O. */
export const DISK_PACKAGES = ['sfdisk', 'blkid', 'e2fsprogs'] as const;
