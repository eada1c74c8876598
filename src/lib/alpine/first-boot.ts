import type { OverlayEntry } from './apkovl.js';
import { ALPINE_K0S_BIN, ALPINE_TOKEN_FILE, CARD_LOG_FILE, CARD_STATE_DIR, CARD_STATUS_FILE, K0S_OPENRC_LOGS } from './paths.js';

export const FIRST_BOOT_SERVICE = 'pi-prep-first-boot';
export const FIRST_BOOT_SCRIPT = '/etc/pi-prep/first-boot.sh';
/** Boot runlevel: points lbu and the apk cache at the partition this boot came from (SD or USB). */
export const MEDIA_SERVICE = 'pi-prep-media';
/** The full log stays in RAM; a redacted copy goes to the boot partition at every state change. */
export const FIRST_BOOT_LOG = '/var/log/pi-prep-first-boot.log';

/**
 * What lbu must save beyond /etc (apk-tools database.c: `+etc`, `@etc/init.d` keeps only symlinks
 * there, `!etc/apk`; lbu.in adds each `+path` of protected_paths.d/*.list). Without these, the
 * first `lbu commit` drops the k0s service (a regular file in etc/init.d), pi-prep's own boot
 * service, and root's SSH key, and the next boot has a dangling runlevel link and no way in.
 */
export const PERSISTED_PATHS = [
  'etc/init.d/k0sworker',
  `etc/init.d/${MEDIA_SERVICE}`,
  'root/.ssh',
  'usr/local/bin/k0s',
];

export interface FirstBootOptions {
  /** Packages to add once the network is up (not on the card's repository). */
  packages: string[];
  /** Join k0s with the binary and token staged on the data partition. */
  join: boolean;
  /** Seconds since the epoch when the card was written: a clock behind it is not set yet. */
  notBefore: number;
  /** Longest wait between two tries, in seconds. */
  maxDelay?: number;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The first-boot job: runs in the background (the boot does not wait for it) and retries each step
 * with backoff until it succeeds, since a Pi's network, clock and controller come up late. Each
 * step checks before it acts, so a power cut anywhere leaves a card whose next boot finishes the job
 * (k0s is installed only when its service is missing). Its state and a redacted log are written to
 * the boot partition at every change: `pi-prep check --card` reads them on any workstation.
 */
export function firstBootScript(o: FirstBootOptions): string {
  const maxDelay = o.maxDelay ?? 300;
  const join = o.join
    ? `
# 4. the data partition (localmount) holds k0s and the token
until [ -x "$K0S" ] && [ -s "$TOKEN" ]; do
	retry failed "no k0s or join token under /media/k0s-data: is the k0s-data partition mounted? (see /etc/fstab, dmesg)"
done

# 5. the controller answers (k0s would retry too, but silently)
server=$(base64 -d < "$TOKEN" 2>/dev/null | gunzip 2>/dev/null | sed -n 's/^ *server: *//p' | head -n 1)
hostport=\${server#*://}; hostport=\${hostport%%/*}
port=\${hostport##*:}; host=\${hostport%:*}; host=\${host#[}; host=\${host%]}
[ "$port" = "$hostport" ] && port=443
until nc -w 5 "$host" "$port" </dev/null >>"$LOG" 2>&1; do
	retry waiting-controller "the controller $server does not answer"
done

# 6. the worker, the init system's way (k0s start is unreliable on OpenRC: k0s issue 4212)
ln -sf "$K0S" /usr/local/bin/k0s
until [ -e /etc/init.d/k0sworker ] || "$K0S" install worker --token-file "$TOKEN" >>"$LOG" 2>&1; do
	retry failed "k0s install worker failed"
done
until rc-update add k0sworker default >>"$LOG" 2>&1 && rc-service k0sworker start >>"$LOG" 2>&1; do
	retry failed "the k0sworker service did not start (see ${K0S_OPENRC_LOGS.join(' and ')})"
done`
    : '';
  return `#!/bin/sh
# pi-prep first boot, written by pi-prep alpine-sd. Finishes the card, then disables itself.
TOKEN=${q(ALPINE_TOKEN_FILE)}
K0S=${q(ALPINE_K0S_BIN)}
PACKAGES=${q(o.packages.join(' '))}
NOT_BEFORE=${o.notBefore}
LOG=${FIRST_BOOT_LOG}
attempt=0
delay=5

. /etc/lbu/lbu.conf
MEDIA=/media/$LBU_MEDIA

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >>"$LOG"; }

# The token never reaches the boot partition, not even inside a tool's error message.
redact() {
	if [ -s "$TOKEN" ]; then
		awk -v t="$(cat "$TOKEN")" '{ while (t != "" && (i = index($0, t)) > 0) $0 = substr($0, 1, i - 1) "<redacted>" substr($0, i + length(t)); print }'
	else
		cat
	fi
}

# state NAME DETAIL: what the node is doing, on the boot partition (remounted rw for the write).
state() {
	log "state=$1: $2"
	mount -o remount,rw "$MEDIA" || return 0
	mkdir -p "$MEDIA/${CARD_STATE_DIR}"
	printf 'state=%s\\ndetail=%s\\nattempt=%s\\nhostname=%s\\nupdated=%s\\n' "$1" "$2" "$attempt" "$(hostname)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$MEDIA/${CARD_STATUS_FILE}.new" &&
		mv "$MEDIA/${CARD_STATUS_FILE}.new" "$MEDIA/${CARD_STATUS_FILE}"
	tail -n 200 "$LOG" | redact >"$MEDIA/${CARD_LOG_FILE}"
	sync
	mount -o remount,ro "$MEDIA"
}

# retry STATE DETAIL: say why, wait (5 s, doubling, at most ${maxDelay} s), try again.
retry() {
	attempt=$((attempt + 1))
	state "$1" "$2; try $attempt, next in \${delay}s"
	sleep "$delay"
	delay=$((delay * 2))
	[ "$delay" -gt ${maxDelay} ] && delay=${maxDelay}
}

state starting "first boot of $(hostname)"

# 1. the network: a default route and a package mirror that answers
until ip route | grep -q '^default' && apk update >>"$LOG" 2>&1; do
	retry waiting-network "no default route, or the package mirror does not answer"
done

# 2. the clock: a Pi has no RTC, and TLS to the controller fails while it is behind
until [ "$(date +%s)" -ge "$NOT_BEFORE" ]; do
	retry waiting-clock "the clock ($(date -u +%Y-%m-%dT%H:%M:%SZ)) is behind the card's writing time"
done

# 3. packages, with the boot media writable so apk's cache there serves the next boots
until mount -o remount,rw "$MEDIA" && apk add $PACKAGES >>"$LOG" 2>&1; do
	mount -o remount,ro "$MEDIA"
	retry waiting-packages "apk add $PACKAGES failed"
done
apk cache sync >>"$LOG" 2>&1
mount -o remount,ro "$MEDIA"
${join}

# 7. done: off the default runlevel, and everything saved for the next boots
until rc-update del ${FIRST_BOOT_SERVICE} default >>"$LOG" 2>&1 || [ ! -e /etc/runlevels/default/${FIRST_BOOT_SERVICE} ]; do
	retry failed "rc-update del ${FIRST_BOOT_SERVICE} failed"
done
state saving "saving the node's configuration with lbu commit"
until lbu commit -d >>"$LOG" 2>&1; do
	retry failed "lbu commit failed"
done
state ${o.join ? 'joined' : 'ready'} "${o.join ? 'the k0s worker runs; it stays running across reboots' : 'Alpine is ready for k0s (no --join given)'}"
`;
}

/** The OpenRC service: starts the job in the background so the boot goes on (sshd comes up). */
export function firstBootService(): string {
  return `#!/sbin/openrc-run
description="pi-prep first boot: packages, k0s worker, lbu commit"
command=${FIRST_BOOT_SCRIPT}
command_background=true
pidfile=/run/${FIRST_BOOT_SERVICE}.pid

depend() {
	need localmount cgroups ${MEDIA_SERVICE}
	after net sshd chronyd
}
`;
}

/**
 * Each boot: the partition holding the apkovl is where this system booted from (initramfs-init
 * takes the first *.apkovl.tar.gz that nlplug-findfs finds and the media stays at /media/DEV).
 * lbu's LBU_MEDIA and the apk cache link follow it, so a card moved to a USB adapter (sda1) or an
 * SSD still saves to itself.
 */
export function mediaService(): string {
  return `#!/sbin/openrc-run
description="pi-prep: lbu and the apk cache on the partition this system booted from"

depend() {
	need localmount
	before ${FIRST_BOOT_SERVICE} k0sworker
}

# The first boot ended (power may have gone between its last save and its last word): say so on the card.
finished() {
	status="$1/${CARD_STATUS_FILE}"
	[ -f "$status" ] && [ ! -e /etc/runlevels/default/${FIRST_BOOT_SERVICE} ] || return 0
	grep -qE '^state=(joined|ready)$' "$status" && return 0
	st=ready; [ -e /etc/init.d/k0sworker ] && st=joined
	mount -o remount,rw "$1" || return 0
	printf 'state=%s\ndetail=%s\nhostname=%s\nupdated=%s\n' "$st" "the first boot finished (seen at a later boot)" "$(hostname)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$status"
	mount -o remount,ro "$1"
}

start() {
	ebegin "Finding the boot media"
	for ovl in /media/*/*.apkovl.tar.gz; do
		[ -e "$ovl" ] || continue
		dir=\${ovl%/*}
		dev=\${dir##*/}
		. /etc/lbu/lbu.conf
		if [ "$LBU_MEDIA" != "$dev" ]; then
			sed -i "s|^LBU_MEDIA=.*|LBU_MEDIA=$dev|" /etc/lbu/lbu.conf
			grep -q '^LBU_MEDIA=' /etc/lbu/lbu.conf || echo "LBU_MEDIA=$dev" >>/etc/lbu/lbu.conf
		fi
		[ "$(readlink /etc/apk/cache)" = "$dir/cache" ] || ln -sfn "$dir/cache" /etc/apk/cache
		sed -i "s|^/media/[^/]*/apks$|$dir/apks|" /etc/apk/repositories
		finished "$dir"
		eend 0
		return 0
	done
	eend 1 "no apkovl on any /media partition"
}
`;
}

/** The overlay entries: both services, their runlevels, and what lbu must keep beyond /etc. */
export function firstBootEntries(o: FirstBootOptions): OverlayEntry[] {
  return [
    { type: 'dir', path: 'etc/pi-prep', mode: 0o755 },
    { type: 'file', path: FIRST_BOOT_SCRIPT.slice(1), data: firstBootScript(o), mode: 0o755 },
    { type: 'file', path: `etc/init.d/${FIRST_BOOT_SERVICE}`, data: firstBootService(), mode: 0o755 },
    { type: 'symlink', path: `etc/runlevels/default/${FIRST_BOOT_SERVICE}`, target: `/etc/init.d/${FIRST_BOOT_SERVICE}` },
    { type: 'file', path: `etc/init.d/${MEDIA_SERVICE}`, data: mediaService(), mode: 0o755 },
    { type: 'symlink', path: `etc/runlevels/boot/${MEDIA_SERVICE}`, target: `/etc/init.d/${MEDIA_SERVICE}` },
    { type: 'file', path: 'etc/apk/protected_paths.d/pi-prep.list', data: PERSISTED_PATHS.map((p) => `+${p}\n`).join(''), mode: 0o644 },
  ];
}
