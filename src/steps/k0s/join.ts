import { posix } from 'node:path';
import { connect } from 'node:net';
import { TaskFailedError, UsageError } from '../../core/errors.js';
import { done, todo, type RunContext, type Task } from '../../run/task.js';
import { readText, type Target } from '../../targets/target.js';
import type { K0sArch } from '../../targets/facts.js';
import { fetchK0s, resolveK0s, type K0sArtifact, type K0sSourceOptions } from '../../lib/k0s/release.js';
import type { JoinToken } from '../../lib/k0s/token.js';

export const TOKEN_FILE = '/etc/k0s/k0stoken';
/** One `k0s status` answers in well under a second; one that takes this long is hung. */
const STATUS_TIMEOUT_MS = 30_000;
/** `k0s install` / `k0s start` (systemctl, rc-service) on a slow SD card: minutes at most. */
const COMMAND_TIMEOUT_MS = 5 * 60_000;
export const K0S_BIN = '/usr/local/bin/k0s';

export interface JoinOptions {
  token: JoinToken;
  source: K0sSourceOptions;
  /** Where the binary goes; Alpine keeps it on the data partition. */
  binPath?: string;
  /** Where the token goes (0600, in a 0700 directory); Alpine keeps it off the FAT boot media. */
  tokenFile?: string;
  /** Seconds to wait for `k0s status` after `k0s start`. */
  waitSeconds?: number;
  /** TCP-connect to the token's API server first. */
  checkServer?: boolean;
}

const serviceFiles = ['/etc/systemd/system/k0sworker.service', '/etc/init.d/k0sworker'];
/** What k0s worker writes once it has bootstrapped with the token (k0s pkg/config/cfgvars.go KubeletAuthConfigPath). */
const KUBELET_CONF = '/var/lib/k0s/kubelet.conf';

async function installedService(t: Target): Promise<string | undefined> {
  for (const f of serviceFiles) if (await t.stat(f)) return f;
  return undefined;
}

/**
 * Joined: the service is installed and k0s has bootstrapped its kubelet with the token. After
 * `k0s reset` the data dir is empty (and the service may come back from an Alpine overlay that was
 * not committed since): the node is not joined, and a new token may be written.
 */
async function joined(t: Target): Promise<boolean> {
  return (await installedService(t)) !== undefined && (await t.stat(KUBELET_CONF)) !== undefined;
}

/** Where the worker's own log is, for messages (k0s pkg/install: OpenRC logs are named after the binary). */
export function k0sLogHint(init: string): string {
  return init === 'openrc' ? '/var/log/k0s.log and /var/log/k0s.err on the node' : '`journalctl -u k0sworker` on the node';
}

/**
 * Resolve the k0s build for the target before any task runs, so a bad version or an unreachable
 * mirror is reported up front, with nothing changed.
 */
export async function resolveArtifact(opts: JoinOptions, target: Target, dryRun = false): Promise<K0sArtifact> {
  const f = await target.facts();
  if (!f.k0sArch) throw new UsageError(`k0s has no build for ${f.arch}: only amd64, arm64 and arm machines can be workers`);
  return resolveForArch(opts.source, f.k0sArch, dryRun);
}

/** As resolveArtifact, for a known architecture (a card for a Pi, written on a workstation). */
export async function resolveForArch(source: K0sSourceOptions, arch: K0sArch, dryRun: boolean): Promise<K0sArtifact> {
  try {
    return await resolveK0s(source, arch);
  } catch (err) {
    // A plan can still be shown offline; a bad version (UsageError) is still bad input.
    if (!dryRun || !(err instanceof TaskFailedError)) throw err;
    return { label: `k0s ${source.version ?? 'stable'} (${arch})`, sha256: '', unresolved: err.message };
  }
}

/** A join, the same shape in every recipe: the options (token, k0s source, paths) and the resolved build. */
export interface Join {
  opts: JoinOptions;
  k0s: K0sArtifact;
}

/** The k0s steps, named, so a recipe can place its own between them (Alpine's lbu steps). */
export interface JoinSteps {
  /** --check-server: TCP-connect to the token's API server first. */
  server?: Task;
  binary: Task;
  token: Task;
  install: Task;
  start: Task;
}

/** The k0s steps every recipe ends with, in order: server, binary, token, service, running. */
export function joinTasks(j: Join): Task[] {
  const s = joinSteps(j);
  return [...(s.server ? [s.server] : []), s.binary, s.token, s.install, s.start];
}

export function joinSteps({ opts, k0s: a }: Join): JoinSteps {
  const bin = opts.binPath ?? K0S_BIN;
  const tokenFile = opts.tokenFile ?? TOKEN_FILE;
  const tokenDir = posix.dirname(tokenFile);
  const waitSeconds = opts.waitSeconds ?? 120;
  // A hung `k0s status` (a wedged node) must not hang the run: no call outlives --wait-timeout.
  const statusMs = Math.min(STATUS_TIMEOUT_MS, waitSeconds * 1000);
  const k0s = (...args: string[]) => [bin, ...args];

  return {
    ...(opts.checkServer ? { server: serverReachable(opts.token.server) } : {}),
    binary: {
      id: 'k0s-binary',
      title: `k0s binary at ${bin}`,
      async check(ctx) {
        if (a.unresolved) return todo(`install ${a.label}; the release could not be looked up now: ${a.unresolved}`);
        const have = await ctx.target.sha256(bin);
        if (have === a.sha256) return done(`${a.label}, SHA-256 matches`);
        return todo(have ? `${bin} is another build than ${a.label}` : `install ${a.label}`);
      },
      async apply(ctx) {
        if (a.unresolved) return ctx.host(`download ${a.label} and check its SHA-256 against the release's sha256sums.txt`);
        await ctx.target.putFile(await fetchK0s(ctx.local, a, opts.source.cacheDir), bin, { mode: 0o755 });
      },
    },
    token: {
      id: 'k0s-token',
      title: `Join token in ${tokenFile} (0600)`,
      async check(ctx) {
        const have = (await readText(ctx.target, tokenFile))?.trim();
        const st = await ctx.target.stat(tokenFile);
        const dir = await ctx.target.stat(tokenDir);
        const isJoined = have !== undefined && (await joined(ctx.target));
        if (st && st.mode !== 0o600 && (have === opts.token.raw || isJoined)) return todo(`${tokenFile} is mode ${st.mode.toString(8)}: make it 0600`);
        if (dir && dir.mode !== 0o700 && (have === opts.token.raw || isJoined)) return todo(`${tokenDir} is mode ${dir.mode.toString(8)}: make it 0700`);
        if (have === opts.token.raw) return done(`token for ${opts.token.server} in place`);
        // k0s re-reads the token file while running (k0s issue 7202): never replace it after a join.
        if (isJoined) return done('node already joined: token file left as it is');
        return todo(have === undefined ? `write the token for ${opts.token.server}` : `replace the token: the node is not joined (${KUBELET_CONF} missing)`);
      },
      async apply(ctx) {
        const have = (await readText(ctx.target, tokenFile))?.trim();
        if (have !== undefined && (have === opts.token.raw || (await joined(ctx.target)))) {
          // The contents stay: only the modes were wrong, the directory's as much as the file's.
          await ctx.target.chmod(tokenDir, 0o700);
          return ctx.target.chmod(tokenFile, 0o600);
        }
        await ctx.target.mkdir(tokenDir, 0o700);
        await ctx.target.writeFile(tokenFile, opts.token.raw + '\n', { mode: 0o600, secret: true });
      },
    },
    install: {
      id: 'k0s-install',
      title: 'k0s worker service installed',
      async check(ctx) {
        const f = await installedService(ctx.target);
        return f ? done(`${f} exists`) : todo('no k0sworker service yet');
      },
      async apply(ctx) {
        await ctx.target.run(k0s('install', 'worker', '--token-file', tokenFile), { timeoutMs: COMMAND_TIMEOUT_MS });
      },
    },
    start: {
      id: 'k0s-start',
      title: 'k0s worker running',
      async check(ctx) {
        const st = await ctx.target.run(k0s('status'), { readOnly: true, allowFailure: true, timeoutMs: statusMs }).catch(() => undefined);
        if (st?.exitCode === 0) return done(statusSummary(st.stdout));
        return todo('k0s status says it is not running');
      },
      async apply(ctx) {
        // The init system's own command: `k0s start` is unreliable on OpenRC (k0s issue 4212).
        const init = (await ctx.target.facts()).init;
        await ctx.target.run(init === 'openrc' ? ['rc-service', 'k0sworker', 'start'] : k0s('start'), { timeoutMs: COMMAND_TIMEOUT_MS });
        if (ctx.dryRun || !ctx.target.liveServices) return;
        await waitRunning(ctx, k0s('status'), waitSeconds, init);
      },
    },
  };
}

function statusSummary(stdout: string): string {
  const get = (k: string) => new RegExp(`^${k}:\\s*(.+)$`, 'm').exec(stdout)?.[1]?.trim();
  const parts = [get('Version'), get('Role') && `role ${get('Role')}`, get('Process ID') && `pid ${get('Process ID')}`].filter(Boolean);
  return parts.length ? `running (${parts.join(', ')})` : 'running';
}

async function waitRunning(ctx: RunContext, argv: string[], seconds: number, init: string): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const left = Math.max(1000, deadline - Date.now());
    const st = await ctx.target.run(argv, { readOnly: true, allowFailure: true, timeoutMs: Math.min(STATUS_TIMEOUT_MS, left) });
    if (st.exitCode === 0) return ctx.log(statusSummary(st.stdout));
    if (Date.now() >= deadline) {
      throw new TaskFailedError(`k0s did not report running within ${seconds}s: see ${k0sLogHint(init)}, or raise --wait-timeout`);
    }
    ctx.log('waiting for k0s status…');
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Preflight: the API server in the token answers TCP from here. */
export function serverReachable(server: string): Task {
  const url = new URL(server);
  const port = Number(url.port || 443);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return {
    id: 'k0s-server',
    title: `Controller API ${url.host} reachable`,
    async check() {
      const err = await new Promise<string | undefined>((resolve) => {
        const sock = connect({ host, port, timeout: 5000 });
        sock.once('connect', () => (sock.destroy(), resolve(undefined)));
        sock.once('timeout', () => (sock.destroy(), resolve('timed out')));
        sock.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      return err
        ? todo(`cannot connect to ${url.host} (${err}): start the controller, open port ${port}, or drop --check-server`)
        : done(`TCP ${url.host} answers`);
    },
  };
}
