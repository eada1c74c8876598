/**
 * Where k0s lives on an Alpine Pi, shared by `alpine-sd` (cards) and `alpine` (running Pis), so
 * either command finds what the other made.
 *
 * The ext4 data partition is mounted at DATA_MOUNT, and its `k0s` directory is bind-mounted at
 * /var/lib/k0s, k0s's data dir. `k0s reset` empties the data dir even when it is a mount point
 * (k0sproject/k0s pkg/cleanup/directories.go) but never looks outside it, so pi-prep's own files
 * (the binary, the join token, the first-boot state) sit beside it in DATA_MOUNT/pi-prep: a reset
 * node can join again. None of it is on the FAT boot partition, which anyone holding the card can
 * read, and none is in RAM (diskless Alpine keeps / in a tmpfs; lbu does not save /usr/local).
 */
export const DATA_LABEL = 'k0s-data';
/** Where the data partition itself is mounted (an fstab line; mkmntdirs creates the directory). */
export const DATA_MOUNT = '/media/k0s-data';
/** k0s's data dir: a bind mount of DATA_MOUNT/k0s. */
export const DATA_DIR = '/var/lib/k0s';
export const DATA_DIR_SOURCE = `${DATA_MOUNT}/k0s`;
/** pi-prep's own files on the data partition (0700): out of `k0s reset`'s reach. */
export const PI_PREP_DIR = `${DATA_MOUNT}/pi-prep`;
export const ALPINE_K0S_BIN = `${PI_PREP_DIR}/k0s`;
export const ALPINE_TOKEN_FILE = `${PI_PREP_DIR}/join.token`;

/** The two fstab lines, in mount order: localmount runs `mount -a`, which follows the file. */
export const DATA_FSTAB = [
  { spec: `LABEL=${DATA_LABEL}`, file: DATA_MOUNT, type: 'ext4', options: 'defaults,noatime', pass: '0 2' },
  { spec: DATA_DIR_SOURCE, file: DATA_DIR, type: 'none', options: 'bind', pass: '0 0' },
] as const;
export const DATA_FSTAB_LINES = DATA_FSTAB.map((e) => `${e.spec}\t${e.file}\t${e.type}\t${e.options}\t${e.pass}`);

/** The first-boot state and a redacted log on the FAT boot partition, readable from any workstation. */
export const CARD_STATE_DIR = 'pi-prep';
export const CARD_STATUS_FILE = `${CARD_STATE_DIR}/status`;
export const CARD_LOG_FILE = `${CARD_STATE_DIR}/first-boot.log`;

/** Where k0s's OpenRC service logs: named after the binary (k0sproject/k0s pkg/install/openrc_linux.go). */
export const K0S_OPENRC_LOGS = ['/var/log/k0s.log', '/var/log/k0s.err'] as const;
