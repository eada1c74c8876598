import type { OverlayEntry } from './apkovl.js';

export const FIRST_BOOT_SERVICE = 'pi-prep-first-boot';

export interface FirstBootOptions {
  /** Where the data partition is mounted (fstab); the log and the staged files live there. */
  dataDir: string;
  /** Packages to add once the network is up (not on the card's repository). */
  packages: string[];
  /** Paths on the data partition (absolute, under dataDir) of the staged k0s and token, when joining. */
  join?: { k0s: string; tokenFile: string };
  /** Seconds to wait for a default route and a reachable repository. */
  networkTimeout?: number;
  /** The boot partition's device name (lbu's LBU_MEDIA): apk's cache lives on it. */
  media: string;
}

/**
 * The OpenRC service that finishes the card on its first boot: wait for the network, add the
 * packages k0s needs, install the worker from the copy staged on the data partition, save the
 * result with lbu, and disable itself. Everything it does is logged on the data partition, so a
 * failed first boot can be read from the card on any machine (docs/alpine-sd.md).
 */
export function firstBootScript(o: FirstBootOptions): string {
  const log = `${o.dataDir}/pi-prep/first-boot.log`;
  const wait = o.networkTimeout ?? 300;
  const join = o.join
    ? `
	step "k0s worker"
	ln -sf ${o.join.k0s} /usr/local/bin/k0s
	if [ ! -e /etc/init.d/k0sworker ]; then
		${o.join.k0s} install worker --token-file ${o.join.tokenFile} >>"$LOG" 2>&1 || fail "k0s install worker"
	fi
	rc-update add k0sworker default >>"$LOG" 2>&1
	${o.join.k0s} start >>"$LOG" 2>&1 || rc-service k0sworker start >>"$LOG" 2>&1 || fail "k0s start"`
    : '';
  return `#!/sbin/openrc-run
# Written by pi-prep alpine-sd: finishes the card on its first boot, then disables itself.
description="pi-prep first boot: packages, k0s worker, lbu commit"

depend() {
	need net localmount cgroups
	after chronyd sshd
}

LOG=${log}

step() { echo "$(date -Iseconds) $*" >>"$LOG"; einfo "$*"; }
fail() { step "FAILED: $*"; eend 1 "$* failed: see $LOG"; exit 1; }

start() {
	mkdir -p "$(dirname "$LOG")"
	step "first boot started"
	step "waiting for the network (up to ${wait}s)"
	i=0
	until ip route | grep -q '^default' && apk update >>"$LOG" 2>&1; do
		i=$((i + 5)); [ "$i" -ge ${wait} ] && fail "network"
		sleep 5
	done
	step "adding ${o.packages.join(' ')}"
	# The boot media is mounted read-only; apk keeps its cache there for the next boots.
	. /etc/lbu/lbu.conf
	mount -o remount,rw "/media/$LBU_MEDIA" 2>>"$LOG"
	apk add ${o.packages.join(' ')} >>"$LOG" 2>&1 || fail "apk add"
	apk cache sync >>"$LOG" 2>&1
	mount -o remount,ro "/media/$LBU_MEDIA" 2>>"$LOG"${join}
	step "disabling ${FIRST_BOOT_SERVICE} and saving /etc with lbu"
	rc-update del ${FIRST_BOOT_SERVICE} default >>"$LOG" 2>&1
	lbu commit >>"$LOG" 2>&1 || fail "lbu commit"
	step "first boot done"
	eend 0
}
`;
}

/** The overlay entries of the service: the init script and its place in the default runlevel. */
export function firstBootEntries(o: FirstBootOptions): OverlayEntry[] {
  return [
    { type: 'file', path: `etc/init.d/${FIRST_BOOT_SERVICE}`, data: firstBootScript(o), mode: 0o755 },
    { type: 'symlink', path: `etc/runlevels/default/${FIRST_BOOT_SERVICE}`, target: `/etc/init.d/${FIRST_BOOT_SERVICE}` },
    // lbu saves /etc only: keep the k0s link in /usr/local too, so the binary on the data partition stays on PATH.
    { type: 'file', path: 'etc/apk/protected_paths.d/pi-prep.list', data: '+usr/local/bin/k0s\n', mode: 0o644 },
    { type: 'symlink', path: 'etc/apk/cache', target: `/media/${o.media}/cache` },
  ];
}
