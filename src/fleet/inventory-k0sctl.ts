import { isObject, type Entry, type YamlSource } from './yaml-source.js';
import { UsageError } from '../core/errors.js';
import { checkHostKey } from '../targets/ssh-spec.js';
import type { RawHost, Skipped, SshSettings } from './inventory-types.js';

const ROLES = ['worker', 'controller+worker', 'single', 'controller'];
const SSH_KEYS = ['address', 'user', 'port', 'keyPath', 'hostKey', 'bastion'];
const BASTION_KEYS = ['address', 'user', 'port', 'keyPath', 'hostKey'];
const OPENSSH_KEYS = ['address', 'user', 'port', 'keyPath', 'configPath', 'options', 'disableMultiplexing'];

export function isK0sctl(doc: unknown): boolean {
  return isObject(doc) && typeof doc.apiVersion === 'string' && doc.apiVersion.startsWith('k0sctl.k0sproject.io/');
}

/**
 * k0sctl.yaml (`k0sctl init` layout): spec.hosts[] with a role and a connection. pi-prep acts on
 * the hosts that run a worker (worker, controller+worker, single); the others are skipped, with why.
 */
export function k0sctlHosts(src: YamlSource): { hosts: RawHost[]; skipped: Skipped[] } {
  const doc = src.value as Entry;
  if (typeof doc.kind !== 'string' || doc.kind.toLowerCase() !== 'cluster') throw src.bad(['kind'], 'a k0sctl.yaml has `kind: Cluster`');
  const spec = doc.spec;
  if (!isObject(spec) || !Array.isArray(spec.hosts)) throw src.bad(['spec'], 'a k0sctl.yaml needs a `spec.hosts:` list');
  const hosts: RawHost[] = [];
  const skipped: Skipped[] = [];
  spec.hosts.forEach((h: unknown, i) => {
    const at = ['spec', 'hosts', i];
    if (!isObject(h)) throw src.bad(at, 'each host is a map with `role:` and `ssh:`');
    const role = h.role;
    if (typeof role !== 'string' || !ROLES.includes(role)) throw src.bad([...at, 'role'], `role must be one of ${ROLES.join(', ')}`);
    const conn = connection(src, h, at);
    const name = typeof h.hostname === 'string' ? h.hostname : conn.label;
    if (conn.skip) return void skipped.push({ name, why: conn.skip });
    if (role === 'controller') return void skipped.push({ name, why: 'role controller: no worker runs there (k0sctl installs the controller)' });
    hosts.push({ name, entry: conn.entry!, jump: conn.jump, ...(conn.ssh ? { ssh: conn.ssh } : {}), bad: (why) => src.bad(at, why) });
  });
  return { hosts, skipped };
}

interface Connection {
  label: string;
  entry?: Entry;
  jump?: RawHost['jump'];
  ssh?: SshSettings;
  skip?: string;
}

function connection(src: YamlSource, h: Entry, at: (string | number)[]): Connection {
  if (isObject(h.localhost) && h.localhost.enabled === true) {
    return { label: 'localhost', skip: 'localhost connection: run pi-prep on that machine itself, without --inventory' };
  }
  if (isObject(h.winRM)) return { label: String(h.winRM.address ?? 'winRM host'), skip: 'a Windows host (winRM): k0s workers here are Linux' };
  const kind = isObject(h.ssh) ? 'ssh' : isObject(h.openSSH) ? 'openSSH' : undefined;
  if (!kind) throw src.bad(at, 'the host needs `ssh:` (address, user, port, keyPath) or `openSSH:`');
  const c = h[kind] as Entry;
  const known = kind === 'ssh' ? SSH_KEYS : OPENSSH_KEYS;
  for (const k of Object.keys(c)) if (!known.includes(k)) throw src.bad([...at, kind, k], `unknown key "${k}" (known: ${known.join(', ')})`);
  if (typeof c.address !== 'string' || !c.address) throw src.bad([...at, kind, 'address'], 'the host needs an address');
  const ssh: SshSettings = {};
  if (c.hostKey !== undefined) {
    // k0sctl trusts exactly this key (rig's StaticKeyCallback) instead of known_hosts.
    ssh.hostKey = checked(src, [...at, kind, 'hostKey'], () => checkHostKey(String(c.hostKey), 'hostKey'));
  }
  if (c.configPath !== undefined && c.configPath !== null && c.configPath !== '') {
    // k0sctl's openSSH hands it to ssh as -F.
    if (typeof c.configPath !== 'string') throw src.bad([...at, kind, 'configPath'], 'configPath is the path of an ssh config file');
    ssh.sshConfig = c.configPath;
  }
  const port = portOf(src, c.port, [...at, kind, 'port']);
  // k0sctl's ssh connection logs in as root unless told otherwise; openSSH leaves it to ssh.
  const user = c.user === undefined ? (kind === 'ssh' ? 'root' : undefined) : String(c.user);
  const sshOptions: string[] = [];
  if (typeof c.keyPath === 'string') sshOptions.push(`IdentityFile=${c.keyPath}`);
  if (isObject(c.options)) for (const [k, v] of Object.entries(c.options)) sshOptions.push(`${k}=${String(v)}`);
  const entry: Entry = { hostname: c.address, ...(user ? { user } : {}), ...(port ? { port } : {}), 'ssh-options': sshOptions };
  let jump: RawHost['jump'];
  if (isObject(c.bastion)) {
    const b = c.bastion;
    for (const k of Object.keys(b)) if (!BASTION_KEYS.includes(k)) throw src.bad([...at, kind, 'bastion', k], `unknown key "${k}" (known: ${BASTION_KEYS.join(', ')})`);
    if (typeof b.address !== 'string' || !b.address) throw src.bad([...at, kind, 'bastion', 'address'], 'the bastion needs an address');
    const bport = portOf(src, b.port, [...at, kind, 'bastion', 'port']);
    const bkey = b.hostKey === undefined ? undefined : checked(src, [...at, kind, 'bastion', 'hostKey'], () => checkHostKey(String(b.hostKey), 'hostKey'));
    jump = { host: b.address, user: b.user === undefined ? 'root' : String(b.user), ...(bport ? { port: bport } : {}), ...(typeof b.keyPath === 'string' ? { keyPath: b.keyPath } : {}), ...(bkey ? { hostKey: bkey } : {}) };
  }
  return { label: port ? `${c.address}:${port}` : c.address, entry, jump, ...(ssh.hostKey || ssh.sshConfig ? { ssh } : {}) };
}

/** undefined for ssh's default port 22. */
function portOf(src: YamlSource, v: unknown, at: (string | number)[]): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw src.bad(at, `"${String(v)}" is not a port`);
  return n === 22 ? undefined : n;
}

/** A check's one-line error, pointing at where the value is written. */
function checked<T>(src: YamlSource, at: (string | number)[], f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw err instanceof UsageError ? src.bad(at, err.message) : err;
  }
}
