import type { FileInfo } from './target.js';

/** The PATH remote commands run with (a non-login shell's may lack the sbin directories). */
export const REMOTE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Exit code the file scripts use for "no such file". */
export const MISSING = 3;
/** Exit code of the write script when PATH.pi-prep.bak is planted (a link or not a plain file). */
export const PLANTED = 4;

/**
 * Fixed sh scripts for file operations; paths and modes arrive as "$1".."$3", never inside the
 * script text. Writes are atomic: temp file in the same directory, sync, mv.
 */
export const SCRIPTS = {
  read: '[ -e "$1" ] || exit 3; exec cat -- "$1"',
  stat: '[ -e "$1" ] || [ -L "$1" ] || exit 3; exec stat -c "%f %s %u %g" -- "$1"',
  write: [
    'set -e',
    // Write through a symlink, as the local and root targets do (/etc/resolv.conf -> /run/...).
    'p=$1; [ -L "$p" ] && p=$(readlink -f -- "$p")',
    'd=${p%/*}; [ -n "$d" ] || d=/',
    'mkdir -p -- "$d"',
    // A planted backup (a link to elsewhere) would stand in for the real one: refuse (exit 4).
    'if [ -n "$3" ] && { [ -L "$p.pi-prep.bak" ] || { [ -e "$p.pi-prep.bak" ] && [ ! -f "$p.pi-prep.bak" ]; }; }; then exit 4; fi',
    // Temps a killed run left beside this file (one may hold a token copy): their shell is gone.
    'for f in "$d/.${p##*/}".pi-prep-*.tmp; do n=${f##*.pi-prep-}; n=${n#bak-}; n=${n%.tmp}; case $n in ""|*[!0-9]*) continue;; esac; kill -0 "$n" 2>/dev/null || rm -f -- "$f"; done',
    't="$d/.${p##*/}.pi-prep-$$.tmp"; b="$d/.${p##*/}.pi-prep-bak-$$.tmp"',
    'trap \'rm -f -- "$t" "$b"\' EXIT',
    'm=$2',
    'if [ -z "$m" ]; then if [ -e "$p" ]; then m=$(stat -L -c %a -- "$p"); else m=644; fi; fi',
    'if [ -n "$3" ] && [ -e "$p" ] && [ ! -e "$p.pi-prep.bak" ]; then cp -p -- "$p" "$b"; sync "$b" || sync; mv -f -- "$b" "$p.pi-prep.bak"; fi',
    '(umask 077; cat > "$t")',
    'chmod "$m" "$t"',
    'sync "$t" || sync',
    'mv -f -- "$t" "$p"',
    'trap - EXIT',
    'sync "$d" || true',
  ].join('\n'),
  mkdir: 'mkdir -p -- "$1" && chmod "$2" "$1"',
  chmod: 'chmod "$2" "$1"',
  remove: 'rm -rf -- "$1"',
  readDir: 'cd -- "$1" || exit 0; for f in * .*; do case $f in .|..) continue;; esac; [ -e "$f" ] || [ -L "$f" ] || continue; printf "%s\\0" "$f"; done',
  sha256: '[ -e "$1" ] || exit 3; exec sha256sum -- "$1"',
  free: 'p=$1; while [ ! -e "$p" ]; do p=${p%/*}; [ -n "$p" ] || p=/; done; exec stat -f -c "%a %S" -- "$p"',
  cwd: 'cd -- "$1" || exit 1; shift; exec "$@"',
} as const;

export type ScriptName = keyof typeof SCRIPTS;

/** `stat -c "%f %s %u %g"`: raw mode in hex, size, owner. */
export function parseStat(line: string): FileInfo {
  const [rawMode, size, uid, gid] = line.trim().split(/\s+/);
  const m = parseInt(rawMode ?? '0', 16);
  const fmt = m & 0o170000;
  const type = fmt === 0o100000 ? 'file' : fmt === 0o040000 ? 'dir' : fmt === 0o120000 ? 'symlink'
    : fmt === 0o060000 ? 'block' : fmt === 0o020000 ? 'char' : 'other';
  return { type, mode: m & 0o7777, size: Number(size), uid: Number(uid), gid: Number(gid) };
}

/** A mode as the scripts take it: four octal digits, or '' for "keep / default". */
export function modeArg(m: number | undefined): string {
  return m === undefined ? '' : m.toString(8).padStart(4, '0');
}
