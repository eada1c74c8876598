/**
 * Stand-ins for the Alpine tools a chroot cannot have, each doing to the files what the real tool
 * does (its upstream source named beside it) and recording its argv in STANDIN_LOG. They run in
 * the arm64 busybox root of a SimAlpinePi (alpine-pi.ts); /.sim holds the simulator's own state
 * (never part of the node: nothing pi-prep or lbu reads lives there).
 */
import { STANDIN_LOG } from '../fixture-root.js';

/** Packages installed (one name a line): what `apk info -e` answers from. */
export const APK_DB = '/lib/apk/db/sim-installed';
/** The package-owned files with their md5 and mode: what `apk audit` compares against. */
export const APK_FILES = '/lib/apk/db/sim-files';

/**
 * Record argv; then, after the command did its work, cut the power when this is the Nth recorded
 * call of the boot (PI_SIM_CUT_AT): `kill -9 0` ends the whole process group the simulator started
 * the job in, so nothing after this command happens. PI_PREP_TEST_KILL_AT kills the caller instead
 * (a pi-prep run killed with -9 after its Nth command).
 */
export function standIn(body: string): string {
  return `#!/bin/sh
{ printf '%s' "\${0##*/}"; for a in "$@"; do printf '\\t%s' "$a"; done; printf '\\n'; } >> ${STANDIN_LOG}
me=$(wc -l < ${STANDIN_LOG})
(
${body}
)
rc=$?
if [ -n "$PI_SIM_CUT_AT" ] && [ "$me" -eq "$PI_SIM_CUT_AT" ]; then : > /.sim/cut; kill -9 0; fi
# A pi-prep run killed right after this call (its parent: pi-prep runs stand-ins directly).
if [ -n "$PI_PREP_TEST_KILL_AT" ] && [ "$me" -eq "$PI_PREP_TEST_KILL_AT" ]; then kill -9 $PPID; fi
exit $rc
`;
}

/** Whether a mounted directory is read-only now, as /proc/mounts shows it. */
const IS_RO = `is_ro() { awk -v d="$1" '$2 == d { split($4, o, ","); m = o[1] } END { exit m == "ro" ? 0 : 1 }' /proc/mounts; }`;

/**
 * apk (apk-tools): `info -e` lists installed ones; `update` needs the network; `add` takes a package
 * from the boot repository, the cache (/etc/apk/cache -> the boot media) or, with the network, the
 * mirror, and keeps a copy in the cache when there is one (apk's cache dir); `cache sync` fills the
 * cache for every installed package not on the boot repository.
 */
export const APK = standIn(`
${IS_RO}
cache_put() {
	[ -L /etc/apk/cache ] || return 0
	c=$(readlink /etc/apk/cache)
	[ -d "$c" ] || return 0
	grep -qx "$1" /.sim/boot-repo && return 0
	ls "$c/$1"-*.apk >/dev/null 2>&1 || echo "sim apk $1" > "$c/$1-1.0-r0.apk"
}
case "$1" in
info) shift; [ "$1" = -e ] && shift; rc=0
	for p; do if grep -qx "$p" ${APK_DB}; then echo "$p"; else rc=1; fi; done; exit $rc ;;
update) [ -e /.sim/network-up ] || { echo "ERROR: https://dl-cdn.alpinelinux.org/alpine/v3.21/main: network error" >&2; exit 1; }
	echo "OK: 26000 distinct packages available" ;;
add) shift
	for p; do
		grep -qx "$p" ${APK_DB} && continue
		if grep -qx "$p" /.sim/boot-repo || ls /etc/apk/cache/"$p"-*.apk >/dev/null 2>&1; then :
		elif [ -e /.sim/network-up ]; then :
		else echo "ERROR: unable to select packages:" >&2; echo "  $p (no such package)" >&2; exit 1; fi
		echo "$p" >> ${APK_DB}
		grep -qx "$p" /etc/apk/world || echo "$p" >> /etc/apk/world
		cache_put "$p"
	done ;;
cache) [ "$2" = sync ] && while read -r p; do cache_put "$p"; done < ${APK_DB} ;;
del) shift; for p; do sed -i "/^$p\\$/d" /etc/apk/world ${APK_DB}; done ;;
esac`);

/**
 * lbu (alpine-conf lbu.in) with apk audit --backup's rules (apk-tools database.c, app_audit.c):
 * default protected paths +etc (changed files), @etc/init.d (symlinks only), !etc/apk (all), then
 * every line of /etc/apk/protected_paths.d/*.list; the deepest matching path decides a file's mode,
 * later lines win a tie; a file is saved under + when no package owns it or it differs from the
 * package's (content or mode). lbu adds each +path of lbu.list that is a file or symlink. commit
 * remounts the media rw, removes old overlays (-d) or keeps one backup, writes
 * <hostname>.apkovl.tar.gz through a .new file, and remounts ro.
 */
export const LBU = standIn(`
LIST=/etc/apk/protected_paths.d/lbu.list
. /etc/lbu/lbu.conf
MNT=\${LBU_BACKUPDIR:-/media/$LBU_MEDIA}
HOST=$(cat /etc/hostname)
${IS_RO}
patterns() {
	printf '+ etc\\n@ etc/init.d\\n! etc/apk\\n'
	for f in /etc/apk/protected_paths.d/*.list; do
		[ -f "$f" ] || continue
		sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$f" | awk '
			/^$/ || /^#/ { next }
			/^[-+@!]/ { m = substr($0, 1, 1); p = substr($0, 2) ; }
			!/^[-+@!]/ { m = "+"; p = $0 }
			{ sub(/^\\/+/, "", p); sub(/\\/+$/, "", p); print m, p }'
	done
}
filelist() {
	cd /
	patterns > /tmp/.lbu-patterns
	# every file or symlink under a path some pattern names (not one that ignores it)
	awk '$1 != "-" { print $2 }' /tmp/.lbu-patterns | sort -u | while read -r p; do
		[ -e "$p" ] || [ -L "$p" ] || continue
		find "$p" \\( -type f -o -type l \\)
	done | sort -u > /tmp/.lbu-cands
	# one md5sum and one stat for all of them (each process costs under qemu)
	: > /tmp/.lbu-sums; : > /tmp/.lbu-modes
	files=$(while read -r f; do [ -L "$f" ] || echo "$f"; done < /tmp/.lbu-cands)
	[ -n "$files" ] && md5sum $files > /tmp/.lbu-sums && stat -c '%n %a' $files > /tmp/.lbu-modes
	while read -r f; do [ -L "$f" ] && echo "$f	L	$(readlink "$f")	777"; done < /tmp/.lbu-cands > /tmp/.lbu-now
	awk 'FILENAME == "/tmp/.lbu-modes" { m[$1] = $2; next } { printf "%s\\tF\\t%s\\t%s\\n", $2, $1, m[$2] }' /tmp/.lbu-modes /tmp/.lbu-sums >> /tmp/.lbu-now
	awk -F '\\t' '
		FILENAME == "/tmp/.lbu-patterns" { split($0, a, " "); pm[++n] = a[1]; pp[n] = a[2]; next }
		FILENAME == "${APK_FILES}" { base[$1] = $2 "\\t" $3 "\\t" $4; next }
		{
			mode = ""; best = -1
			for (i = 1; i <= n; i++) {
				p = pp[i]
				if ($1 == p || index($1, p "/") == 1) { if (length(p) >= best) { best = length(p); mode = pm[i] } }
			}
			if (mode == "" || mode == "-") next
			if (mode == "@" && $2 != "L") next
			if (mode == "+" && ($1 in base) && base[$1] == $2 "\\t" $3 "\\t" $4) next
			print $1
		}' /tmp/.lbu-patterns ${APK_FILES} /tmp/.lbu-now
	# lbu.in _gen_filelist: the include list's files and symlinks, whatever audit said
	[ -f "$LIST" ] && sed -n 's/^+//p' "$LIST" | while read -r p; do
		if [ -L "$p" ] || { [ ! -d "$p" ] && [ -e "$p" ]; }; then echo "$p"; fi
	done
}
case "$1" in
include|inc|add) shift; mkdir -p "\${LIST%/*}"
	for p; do p=$(echo "$p" | sed -E 's:^/+::'); grep -qxF "+$p" "$LIST" 2>/dev/null || echo "+$p" >> "$LIST"; done ;;
status|st)
	rm -rf /tmp/.lbu-a /tmp/.lbu-b; mkdir -p /tmp/.lbu-a /tmp/.lbu-b
	[ -f "$MNT/$HOST.apkovl.tar.gz" ] && tar -xzf "$MNT/$HOST.apkovl.tar.gz" -C /tmp/.lbu-a
	filelist | awk '!seen[$0]++' > /tmp/.lbu-list
	(cd / && tar -c --no-recursion -f - $(cat /tmp/.lbu-list)) | tar -xf - -C /tmp/.lbu-b
	(cd /tmp/.lbu-a && find . \\( -type f -o -type l \\)) | sed 's:^\\./::' | while read -r f; do [ -e "/tmp/.lbu-b/$f" ] || [ -L "/tmp/.lbu-b/$f" ] || echo "D $f"; done
	(cd /tmp/.lbu-b && find . \\( -type f -o -type l \\)) | sed 's:^\\./::' | while read -r f; do
		if [ ! -e "/tmp/.lbu-a/$f" ] && [ ! -L "/tmp/.lbu-a/$f" ]; then echo "A $f"
		elif [ -L "/tmp/.lbu-a/$f" ] || [ -L "/tmp/.lbu-b/$f" ]; then [ "$(readlink "/tmp/.lbu-a/$f")" = "$(readlink "/tmp/.lbu-b/$f")" ] || echo "U $f"
		elif ! cmp -s "/tmp/.lbu-a/$f" "/tmp/.lbu-b/$f"; then echo "U $f"; fi
	done ;;
commit|ci) shift
	[ "$1" = -d ] && DEL=1
	ro=; is_ro "$MNT" && { ro=1; /bin/mount -o remount,rw "$MNT" || exit 1; }
	out="$MNT/$HOST.apkovl.tar.gz"
	if [ -n "$DEL" ]; then rm -f "$MNT"/*.apkovl.tar.gz*
	else
		lines=$(ls -1 "$MNT"/*.apkovl.tar.gz* 2>/dev/null)
		if [ "$lines" = "$out" ]; then mv "$out" "$MNT/$HOST.$(date -u +%Y%m%d%H%M%S).tar.gz"
		elif [ -n "$lines" ]; then [ -n "$ro" ] && /bin/mount -o remount,ro "$MNT"; echo "lbu: Please use -d to replace." >&2; exit 1; fi
	fi
	filelist | awk '!seen[$0]++' > /tmp/.lbu-list
	# (Debian's busybox tar has no -T; Alpine's lbu feeds the list with -T -)
	if ! (cd / && tar -c --no-recursion -z -f "$out.new" $(cat /tmp/.lbu-list)) || ! mv "$out.new" "$out"; then
		[ -n "$ro" ] && /bin/mount -o remount,ro "$MNT"
		echo "lbu: Problems creating archive. aborting" >&2; exit 1
	fi
	sync
	[ -n "$ro" ] && /bin/mount -o remount,ro "$MNT"
	exit 0 ;;
esac`);

/**
 * mount: only what the simulator models. remount,ro|rw of a mounted directory flips its options
 * in /proc/mounts; for the boot media, ro first writes the directory back to the FAT partition
 * of the card (what the kernel flushes), and rw checks that nothing was written while it was ro.
 * Anything else fails loudly rather than pretend.
 */
export const MOUNT = standIn(`
${IS_RO}
if [ "$1" = -o ] && { [ "$2" = remount,ro ] || [ "$2" = remount,rw ]; } && [ $# -eq 3 ]; then
	mode=\${2#remount,}; dir=$3
	awk -v d="$dir" '$2 == d { f = 1 } END { exit !f }' /proc/mounts || { echo "mount: $dir: not mounted" >&2; exit 32; }
	if [ -f /.sim/media.conf ] && [ "$dir" = "$(sed -n 's/^DIR=//p' /.sim/media.conf)" ]; then
		if [ "$mode" = ro ]; then /.sim/bin/media-sync || exit 1; else /.sim/bin/media-check; fi
	fi
	awk -v d="$dir" -v m="$mode" '$2 == d { sub(/^(ro|rw)/, m, $4) } { print }' /proc/mounts > /tmp/.mounts && cat /tmp/.mounts > /proc/mounts
	exit 0
fi
echo "mount $*: not modelled by the simulator" >&2
exit 1`);

/**
 * Write the boot media directory back to its FAT partition (host mtools, through the card's
 * device node at the partition's offset): new and changed files copied, removed ones deleted.
 */
export const MEDIA_SYNC = `#!/bin/sh
. /.sim/media.conf
export MTOOLS_SKIP_CHECK=1
cd "$DIR" || exit 1
find . -type f -exec md5sum {} + | awk '{ h = $1; sub(/^[0-9a-f]+  \\.\\//, ""); print $0, h }' | sort > /tmp/.media-now
rm -f /tmp/.media-failed
awk 'NR == FNR { old[$1] = $2; next } !($1 in old) || old[$1] != $2 { print $1 }' /.sim/media.manifest /tmp/.media-now | while read -r f; do
	d=\${f%/*}
	if [ "$d" != "$f" ]; then
		p=
		for c in $(echo "$d" | tr / ' '); do p="$p/$c"; mmd -D s -i "$DEV@@$OFFSET" "::$p" 2>/dev/null; done
	fi
	mcopy -o -i "$DEV@@$OFFSET" "$f" "::/$f" 2>/dev/null || : > /tmp/.media-failed
done
awk 'NR == FNR { now[$1] = 1; next } !($1 in now) { print $1 }' /tmp/.media-now /.sim/media.manifest | while read -r f; do
	mdel -i "$DEV@@$OFFSET" "::/$f" 2>/dev/null || : > /tmp/.media-failed
done
[ -e /tmp/.media-failed ] && { echo "simulator: writing $DIR back to the card failed" >&2; exit 1; }
cp /tmp/.media-now /.sim/media.manifest
`;

/** Anything that differs from the last write-back was written while the media was read-only. */
export const MEDIA_CHECK = `#!/bin/sh
. /.sim/media.conf
cd "$DIR" || exit 0
find . -type f -exec md5sum {} + | awk '{ h = $1; sub(/^[0-9a-f]+  \\.\\//, ""); print $0, h }' | sort > /tmp/.media-now
cmp -s /tmp/.media-now /.sim/media.manifest || diff /.sim/media.manifest /tmp/.media-now | sed -n 's/^[-+]\\([^-+]\\)/\\1/p' | sed "s|^|wrote to read-only $DIR: |" >> /.sim/violations
exit 0
`;

/** rc-update (OpenRC): runlevel symlinks. */
export const RC_UPDATE = standIn(`
case "$1" in
add) [ -e "/etc/init.d/$2" ] || { echo " * rc-update: service \\\`$2' does not exist" >&2; exit 1; }
	mkdir -p "/etc/runlevels/\${3:-default}"; ln -sf "/etc/init.d/$2" "/etc/runlevels/\${3:-default}/$2" ;;
del|delete) rm -f "/etc/runlevels/\${3:-default}/$2" ;;
esac`);

/** rc-service (OpenRC): the service script through openrc-run, as OpenRC runs it. */
export const RC_SERVICE = standIn(`
[ -x "/etc/init.d/$1" ] || { echo " * rc-service: service \\\`$1' does not exist" >&2; exit 1; }
exec /sbin/openrc-run "/etc/init.d/$1" "$2"`);

/**
 * openrc-run (OpenRC): sources the service script with OpenRC's helpers, then runs start or stop,
 * or the defaults: a supervise-daemon or command_background command is queued in /.sim/jobs for
 * the simulator to run after the runlevels (it stands for the daemon); started services are marked
 * in /run/openrc/started as OpenRC marks them.
 */
export const OPENRC_RUN = `#!/bin/sh
. /.sim/world.sh
einfo() { echo " * $*"; }
ewarn() { echo " * $*" >&2; }
eerror() { echo " * $*" >&2; }
ebegin() { echo " * $* ..."; }
eend() { return "\${1:-0}"; }
RC_SVCNAME=\${1##*/}
script=$1; action=$2
. "$script"
mkdir -p /run/openrc/started
case "$action" in
start)
	[ -e "/run/openrc/started/$RC_SVCNAME" ] && exit 0
	if command -v start >/dev/null 2>&1 && [ "$(command -v start)" = start ]; then start || exit 1
	elif [ -n "$command" ]; then
		[ -x "$command" ] || { eerror "$command does not exist"; exit 1; }
		if [ "$supervisor" = supervise-daemon ] || [ "$command_background" = true ] || [ "$command_background" = yes ]; then
			out=$(echo "$supervise_daemon_args" | sed -n 's/.*--stdout \\([^ ]*\\).*/\\1/p')
			err=$(echo "$supervise_daemon_args" | sed -n 's/.*--stderr \\([^ ]*\\).*/\\1/p')
			kind=background; [ "$supervisor" = supervise-daemon ] && kind=supervised
			printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "$RC_SVCNAME" "$command" "$command_args" "\${out:-/dev/null}" "\${err:-/dev/null}" "$kind" >> /.sim/jobs
		else eval "$command $command_args" || exit 1; fi
	fi
	ln -sf "$script" "/run/openrc/started/$RC_SVCNAME" ;;
stop)
	command -v stop >/dev/null 2>&1 && [ "$(command -v stop)" = stop ] && { stop || exit 1; }
	[ -n "$command" ] && [ -f "/run/sim-daemon/$RC_SVCNAME" ] && rm -f "/run/sim-daemon/$RC_SVCNAME"
	rm -f "/run/openrc/started/$RC_SVCNAME" ;;
status) [ -e "/run/openrc/started/$RC_SVCNAME" ] ;;
esac
`;

/**
 * k0s, for what cannot run here (a cluster), acting on the node as k0s does:
 * - install worker: refuses an existing service; writes k0s's OpenRC script (pkg/install/openrc_linux.go:
 *   supervise-daemon, command = the binary's real path, logs named after it) or a systemd unit;
 * - worker (the daemon): needs a readable token file and the data dir; marks itself running in /run/k0s;
 * - status: from that mark (the real one reads /run/k0s/status.sock);
 * - start/stop: the init system's service (kardianos/service);
 * - reset: refuses while running; uninstalls the service; empties the data dir even when it is a
 *   mount point, and nothing outside it (pkg/cleanup/directories.go); removes /run/k0s.
 */
export function simK0s(version: string): string {
  return standIn(`
self=$(readlink -f "$0")
# The worker process is up: it wrote its status and its supervisor has not stopped it.
running() { [ -f /run/k0s/status ] && [ -e /run/sim-daemon/k0sworker ]; }
service_file() { if [ -x /sbin/openrc ]; then echo /etc/init.d/k0sworker; else echo /etc/systemd/system/k0sworker.service; fi; }
case "$1" in
version) echo "${version}" ;;
install)
	[ "$2" = worker ] || { echo "sim k0s: only workers" >&2; exit 1; }
	shift 2
	f=$(service_file)
	[ -e "$f" ] && { echo "Error: failed to install k0s service: Init already exists: $f" >&2; exit 1; }
	args="'worker'"; for a; do args="$args '$a'"; done
	if [ -x /sbin/openrc ]; then
		mkdir -p /etc/init.d
		printf '#!/sbin/openrc-run\\nsupervisor=supervise-daemon\\ndescription="k0s - Zero Friction Kubernetes"\\ncommand=%s\\ncommand_args="%s "\\nname=$(basename $(readlink -f $command))\\nsupervise_daemon_args="--stdout /var/log/\${name}.log --stderr /var/log/\${name}.err"\\nretry="SIGTERM/90/SIGKILL/5"\\n\\ndepend() {\\n\\tneed cgroups\\n\\tneed net\\n\\tuse dns\\n\\tafter firewall\\n}\\n' "$self" "$args" > "$f"
		chmod 755 "$f"
	else
		mkdir -p /etc/systemd/system
		printf '[Unit]\\nDescription=k0s - Zero Friction Kubernetes\\n\\n[Service]\\nExecStart=%s %s\\n\\n[Install]\\nWantedBy=multi-user.target\\n' "$self" "$(echo "$args" | tr -d "'")" > "$f"
		mkdir -p /etc/systemd/system/multi-user.target.wants
		ln -sf "$f" /etc/systemd/system/multi-user.target.wants/k0sworker.service
	fi ;;
worker)
	shift; tf=
	while [ $# -gt 0 ]; do [ "$1" = --token-file ] && tf=$2; shift; done
	mkdir -p /var/lib/k0s
	if [ ! -f /var/lib/k0s/kubelet.conf ]; then
		[ -n "$tf" ] && [ -s "$tf" ] || { echo "failed to read token file $tf" >&2; exit 1; }
		[ ! -e /.sim/controller-down ] || { echo "failed to bootstrap kubelet client configuration: controller unreachable" >&2; exit 1; }
		sum=$(md5sum < "$tf" | cut -c1-32)
		if [ -f /.sim/accepted-tokens ] && ! grep -qx "$sum" /.sim/accepted-tokens; then echo "failed to bootstrap kubelet client configuration: Unauthorized" >&2; exit 1; fi
		echo "bootstrapped with token $sum" > /var/lib/k0s/kubelet.conf
	fi
	mkdir -p /run/k0s
	echo running > /run/k0s/status
	echo "time=\\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\\" level=info msg=\\"k0s worker started\\"" ;;
status)
	running || { echo 'Error: cannot connect to /run/k0s/status.sock' >&2; exit 1; }
	printf 'Version: ${version}\\nProcess ID: 4242\\nRole: worker\\nWorkloads: true\\n' ;;
start) if [ -x /sbin/openrc ]; then rc-service k0sworker start; else systemctl start k0sworker.service; fi ;;
stop) if [ -x /sbin/openrc ]; then rc-service k0sworker stop; else systemctl stop k0sworker.service; fi
	rm -f /run/k0s/status ;;
reset)
	running && { echo 'Error: k0s is still running, please stop k0s before reset' >&2; exit 1; }
	f=$(service_file)
	if [ -e "$f" ]; then
		if [ -x /sbin/openrc ]; then rc-update del k0sworker default >/dev/null 2>&1; else rm -f /etc/systemd/system/multi-user.target.wants/k0sworker.service; fi
		rm -f "$f"
	fi
	if awk '$2 == "/var/lib/k0s" { f = 1 } END { exit !f }' /proc/mounts; then
		find /var/lib/k0s -mindepth 1 -maxdepth 1 -exec rm -rf {} +
	else rm -rf /var/lib/k0s; fi
	rm -rf /run/k0s ;;
*) echo "sim k0s: $1 not modelled" >&2; exit 1 ;;
esac`);
}
