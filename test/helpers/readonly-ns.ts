import { CLI, runProcess, testCacheEnv, type CliResult } from './cli.js';

/**
 * Inside a private mount namespace (unshare --mount --propagation private): every writable mount
 * of this machine remounted read-only (per mount: `remount,bind,ro`), except the paths in
 * RO_NS_KEEP, each first bound onto itself so it is a mount of its own that stays rw. Nothing
 * changes outside: the namespace's mounts are private copies and go with its last process.
 *
 * What a ro mount cannot stop is a write through a device node (a loop device, a disk): callers
 * prove those separately, by the devices' checksums before and after.
 */
const SETUP = [
  'set -e',
  'keep=" "',
  // printf, not a here-document: the list arrives in the environment, one path a line.
  'for w in $(printf "%s" "$RO_NS_KEEP"); do mount --bind "$w" "$w"; keep="$keep$w "; done',
  // Field 5 of mountinfo: the mount point (spaces as octal escapes); field 6: this mount's own options.
  'awk \'{ print $5, $6 }\' /proc/self/mountinfo | while read -r mp opts; do',
  '  case "$opts" in ro|ro,*) continue ;; esac',
  '  case "$keep" in *" $mp "*) continue ;; esac',
  '  mount -o remount,bind,ro "$(printf "%b" "$mp")"',
  'done',
  'unset RO_NS_KEEP',
  'exec "$@"',
].join('\n');

/**
 * Run argv (program first) with the whole filesystem read-only except `writable` (absolute paths
 * without spaces). The namespace is made by unshare in the child: a failure to make it is a
 * non-zero exit with mount's message on stderr, never a run with the filesystem writable.
 */
export function runReadOnly(writable: string[], argv: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<CliResult> {
  for (const w of writable) if (!w.startsWith('/') || /\s/.test(w)) throw new Error(`readonly-ns: ${w} is not an absolute path without spaces`);
  return runProcess('unshare', ['--mount', '--propagation', 'private', '/bin/sh', '-c', SETUP, 'readonly-ns', ...argv], {
    env: { ...opts.env, RO_NS_KEEP: writable.join('\n') },
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
}

/** The built CLI in the read-only namespace, with runCli's environment (XDG_CACHE_HOME unless given). */
export function runCliReadOnly(writable: string[], args: string[], opts: { env?: Record<string, string> } = {}): Promise<CliResult> {
  return runReadOnly(writable, [process.execPath, CLI, ...args], {
    env: { ...testCacheEnv(), ...opts.env },
  });
}
