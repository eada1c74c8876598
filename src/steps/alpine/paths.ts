/**
 * Where k0s lives on an Alpine Pi, shared by `alpine-sd` (cards) and `alpine` (running Pis), so
 * either command finds what the other made. All of it is on the ext4 data partition: diskless
 * Alpine keeps / in RAM, lbu does not save /usr/local, and what lbu saves lands in the apkovl on the
 * FAT boot partition, which anyone can read: no place for a token.
 */
export const DATA_LABEL = 'k0s-data';
export const DATA_DIR = '/var/lib/k0s';
export const ALPINE_K0S_BIN = `${DATA_DIR}/pi-prep/k0s`;
export const ALPINE_TOKEN_FILE = `${DATA_DIR}/pi-prep/join.token`;
