import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { buildRoot, osRelease, recordingScript, removeRoot, standInCalls, STANDIN_LOG } from '../helpers/fixture-root.js';
import { k0sStandIn } from '../helpers/k0s-standin.js';
import { FIRST_BOOT_SERVICE, firstBootScript } from '../../src/steps/alpine/first-boot.js';
import { FIRST_BOOT_PACKAGES, BOOT_MEDIA } from '../../recipes/alpine-sd.js';
import { ALPINE_K0S_BIN, ALPINE_TOKEN_FILE, DATA_DIR } from '../../src/steps/alpine/paths.js';

/**
 * OpenRC itself cannot run here: this stand-in for /sbin/openrc-run gives the service script the
 * helpers OpenRC gives it, plus shell functions standing in for what a chroot cannot have (the Pi's
 * default route, remounting its boot media). Functions win over busybox's own applets, PATH does
 * not. Every stand-in records its argv in the same log.
 */
const OPENRC_RUN = `#!/bin/sh
rec() { { printf '%s' "$1"; shift; for a in "$@"; do printf '\\t%s' "$a"; done; printf '\\n'; } >> ${STANDIN_LOG}; }
einfo() { echo " * $*"; }
eend() { return "\${1:-0}"; }
ip() { rec ip "$@"; echo "default via 192.0.2.1 dev eth0"; }
mount() { rec mount "$@"; }
script=$1; shift
. "$script"
"$@"
`;


function cardRoot(apk: string): string {
  const script = firstBootScript({
    dataDir: DATA_DIR, packages: FIRST_BOOT_PACKAGES, media: BOOT_MEDIA,
    join: { k0s: ALPINE_K0S_BIN, tokenFile: ALPINE_TOKEN_FILE },
  });
  return buildRoot({
    arch: 'arm64',
    init: 'openrc',
    files: {
      '/etc/os-release': osRelease('alpine', '3.21.3', 'Alpine Linux v3.21'),
      '/etc/lbu/lbu.conf': `LBU_MEDIA=${BOOT_MEDIA}\n`,
      [ALPINE_TOKEN_FILE]: 'not-a-real-token\n',
    },
    standIns: {
      [`/etc/init.d/${FIRST_BOOT_SERVICE}`]: script,
      '/sbin/openrc-run': OPENRC_RUN,
      '/sbin/apk': apk,
      '/sbin/lbu': recordingScript(),
      '/sbin/rc-update': recordingScript(),
      '/sbin/rc-service': recordingScript(),
      [ALPINE_K0S_BIN]: k0sStandIn(),
    },
  });
}

const start = (root: string) =>
  spawnSync('chroot', [root, `/etc/init.d/${FIRST_BOOT_SERVICE}`, 'start'], {
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' }, encoding: 'utf8',
  });

describe('the first-boot service of an alpine-sd card, run in an arm64 Alpine-like chroot', () => {
  const roots: string[] = [];
  after(() => roots.forEach(removeRoot));

  it('adds the packages, installs and starts the k0s worker from the data partition, saves with lbu, disables itself', () => {
    const root = cardRoot(recordingScript());
    roots.push(root);
    const res = start(root);
    assert.equal(res.status, 0, res.stdout + res.stderr);

    const media = `/media/${BOOT_MEDIA}`;
    assert.deepEqual(standInCalls(root), [
      ['ip', 'route'],
      ['apk', 'update'],
      ['mount', '-o', 'remount,rw', media],
      ['apk', 'add', ...FIRST_BOOT_PACKAGES],
      ['apk', 'cache', 'sync'],
      ['mount', '-o', 'remount,ro', media],
      ['k0s', 'install', 'worker', '--token-file', ALPINE_TOKEN_FILE],
      ['rc-update', 'add', 'k0sworker', 'default'],
      ['k0s', 'start'],
      ['rc-update', 'del', FIRST_BOOT_SERVICE, 'default'],
      ['lbu', 'commit'],
    ]);
    assert.equal(readlinkSync(join(root, 'usr/local/bin/k0s')), ALPINE_K0S_BIN);
    assert.ok(existsSync(join(root, 'etc/init.d/k0sworker')), 'k0s install wrote its service');
    const log = readFileSync(join(root, DATA_DIR, 'pi-prep/first-boot.log'), 'utf8');
    assert.match(log, /first boot started/);
    assert.match(log, /first boot done/);
    assert.doesNotMatch(log, /FAILED/);
  });

  it('a failing step stops there, says so in the log, and stays enabled to try again at the next boot', () => {
    const root = cardRoot(recordingScript('[ "$1" = add ] && { echo "ERROR: unable to select packages" >&2; exit 1; }; exit 0'));
    roots.push(root);
    const res = start(root);
    assert.notEqual(res.status, 0);
    const calls = standInCalls(root);
    assert.deepEqual(calls.at(-1), ['apk', 'add', ...FIRST_BOOT_PACKAGES]);
    assert.ok(!calls.some((c) => c[0] === 'k0s' || c[0] === 'lbu' || (c[0] === 'rc-update' && c[1] === 'del')), 'no join, no commit, not disabled');
    const log = readFileSync(join(root, DATA_DIR, 'pi-prep/first-boot.log'), 'utf8');
    assert.match(log, /FAILED: apk add/);
    assert.match(log, /unable to select packages/);
  });
});
