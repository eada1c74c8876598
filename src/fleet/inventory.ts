import { readFile } from 'node:fs/promises';
import { UsageError } from '../core/errors.js';
import { checkSshOption, formatAddress, parseHostSpec, type SshAddress } from '../targets/ssh-spec.js';
import { ansibleFromIni, ansibleFromYaml, looksLikeAnsibleYaml } from './inventory-ansible.js';
import { isK0sctl, k0sctlHosts } from './inventory-k0sctl.js';
import type { JumpHost, RawHost, Skipped, SshSettings } from './inventory-types.js';
import { YamlSource, isObject, type Entry } from './yaml-source.js';

export type { JumpHost, Skipped } from './inventory-types.js';

/** One machine of a fleet: how to reach it, and the flags that differ for it. */
export interface FleetHost {
  name: string;
  address: SshAddress;
  sshOptions: string[];
  /** Long flag name (no dashes) -> value; `true` is a bare flag. */
  flags: Record<string, string | true | string[]>;
  /** Reached through this host (k0sctl's ssh.bastion). */
  jump?: JumpHost;
  /** `--host-key`, `--ssh-config` for this host (k0sctl's ssh.hostKey, openSSH.configPath). */
  ssh?: SshSettings;
}

export type InventoryFormat = 'pi-prep' | 'k0sctl' | 'ansible-yaml' | 'ansible-ini';

export interface Inventory {
  format: InventoryFormat;
  hosts: FleetHost[];
  /** Hosts the file lists that pi-prep leaves alone (a k0sctl controller ...), with why. */
  skipped: Skipped[];
}

/**
 * Read an inventory in any of the formats of docs/fleet.md, detected from its contents:
 * pi-prep's own YAML (`hosts:`), a k0sctl.yaml (`apiVersion: k0sctl.k0sproject.io/...`), an
 * Ansible YAML inventory (groups of hosts/children/vars) or an Ansible INI inventory.
 * `groups` picks Ansible groups, as `ansible --limit` does.
 */
export async function readInventory(file: string, groups?: string[]): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read the inventory ${file}: check the path after --inventory`);
  }
  const parsed = YamlSource.parse(file, text);
  const yaml = parsed instanceof YamlSource ? parsed : undefined;
  const doc = yaml?.value;
  const noGroups = (format: string) => {
    if (groups?.length) throw new UsageError(`--group picks groups of an Ansible inventory; ${file} is a ${format}: drop --group`);
  };
  let format: InventoryFormat;
  let raw: { hosts: RawHost[]; skipped: Skipped[] };
  if (yaml && isObject(doc) && Object.keys(doc).every((k) => k === 'hosts' || k === 'defaults') && doc.hosts !== undefined) {
    noGroups('pi-prep inventory');
    format = 'pi-prep';
    raw = { hosts: piPrepHosts(yaml), skipped: [] };
  } else if (yaml && isK0sctl(doc)) {
    noGroups('k0sctl.yaml (pi-prep picks its worker hosts)');
    format = 'k0sctl';
    raw = k0sctlHosts(yaml);
  } else if (yaml && isObject(doc) && looksLikeAnsibleYaml(doc)) {
    format = 'ansible-yaml';
    raw = ansibleFromYaml(yaml).select(groups, file);
  } else if (looksLikeIni(text, doc)) {
    format = 'ansible-ini';
    raw = ansibleFromIni(file, text).select(groups, file);
  } else if (!yaml) {
    throw new UsageError(`the inventory ${file} is not valid YAML (${(parsed as { error: string }).error}) nor an Ansible INI inventory: see docs/fleet.md`);
  } else {
    throw new UsageError(
      `the inventory ${file} is none of the known formats: a pi-prep inventory has \`hosts:\`, a k0sctl.yaml \`apiVersion: k0sctl.k0sproject.io/v1beta1\`, an Ansible inventory groups with hosts/children/vars; see docs/fleet.md`,
    );
  }
  const hosts = raw.hosts.map((h) => {
    const host = hostFrom(h.name, h.entry, h.bad);
    return { ...host, ...(h.jump ? { jump: h.jump } : {}), ...(h.ssh ? { ssh: h.ssh } : {}) };
  });
  const seen = new Set<string>();
  for (const h of hosts) {
    if (seen.has(h.name)) throw new UsageError(`the inventory ${file}: host ${h.name} is listed twice; give each host once`);
    seen.add(h.name);
  }
  if (hosts.length === 0) {
    const why = raw.skipped.length ? ` (skipped: ${raw.skipped.map((s) => `${s.name}: ${s.why}`).join('; ')})` : '';
    throw new UsageError(`the inventory ${file} has no host to act on${groups?.length ? ` in --group ${groups.join(',')}` : ''}${why}: see docs/fleet.md`);
  }
  return { format, hosts, skipped: raw.skipped };
}

/** INI: it does not parse as a YAML map, and its first line that says anything is a [section] or a host. */
function looksLikeIni(text: string, doc: unknown): boolean {
  if (isObject(doc) || Array.isArray(doc)) return /^\s*\[[^\]]+\]\s*$/m.test(text) && !isObject(doc);
  const first = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l && !l.startsWith('#') && !l.startsWith(';'));
  return first !== undefined && (/^\[[^\]]+\]$/.test(first) || /^[A-Za-z0-9_.[\]:-]+(\s+\S+=\S*)*$/.test(first));
}

/**
 * pi-prep's own inventory (docs/fleet.md):
 *
 *   defaults: { user: pi, ssh-options: [...], options: { k0s-version: v1.34.1+k0s.0 } }
 *   hosts:
 *     pi4-a: { hostname: 192.168.1.21 }
 *     pi5-b: { hostname: pi5.lan, user: admin, port: 2222, options: { kernel: skip } }
 *
 * `hosts` may also be a list of names or of entries with `name:`.
 */
function piPrepHosts(src: YamlSource): RawHost[] {
  const doc = src.value as Entry;
  const defaults = doc.defaults ?? {};
  if (!isObject(defaults)) throw src.bad(['defaults'], '`defaults:` must be a map');
  let entries: [string, Entry, (string | number)[]][];
  if (Array.isArray(doc.hosts)) {
    entries = doc.hosts.map((h: unknown, i) => {
      if (typeof h === 'string') return [h, {}, ['hosts', i]];
      if (isObject(h) && typeof h.name === 'string') return [h.name, h, ['hosts', i]];
      throw src.bad(['hosts', i], `host ${i + 1} has no name`);
    });
  } else if (isObject(doc.hosts)) {
    entries = Object.entries(doc.hosts).map(([name, h]) => {
      if (h !== null && h !== undefined && !isObject(h)) throw src.bad(['hosts', name], `host ${name} must be a map (hostname, user, port, options)`);
      return [name, (h ?? {}) as Entry, ['hosts', name]];
    });
  } else {
    throw src.bad(['hosts'], '`hosts:` must be a list or a map');
  }
  if (entries.length === 0) throw src.bad(['hosts'], 'it lists no hosts');
  return entries.map(([name, h, at]) => {
    const list = (v: unknown, where: (string | number)[]) => asList(v, (why) => src.bad(where, why));
    const sshOptions = [...list(defaults['ssh-options'], ['defaults', 'ssh-options']), ...list(h['ssh-options'], [...at, 'ssh-options'])];
    const unknown = Object.keys(h).find((k) => !HOST_KEYS.includes(k));
    if (unknown) throw src.bad([...at, unknown], `host ${name} has an unknown key "${unknown}" (known: hostname, user, port, ssh-options, options)`);
    return { name, entry: { ...defaults, ...h, 'ssh-options': sshOptions, options: { ...asMap(defaults.options), ...asMap(h.options) } }, bad: (why: string) => src.bad(at, why) };
  });
}

const HOST_KEYS = ['name', 'hostname', 'user', 'port', 'ssh-options', 'options'];

/** A `--host` given on the command line, as a fleet member. */
export function hostFromFlag(spec: string): FleetHost {
  return { name: spec, address: parseHostSpec(spec), sshOptions: [], flags: {} };
}

function hostFrom(name: string, e: Entry, bad: (why: string) => UsageError): FleetHost {
  for (const key of Object.keys(e)) {
    if (!HOST_KEYS.includes(key)) throw bad(`host ${name} has an unknown key "${key}" (known: hostname, user, port, ssh-options, options)`);
  }
  const checked = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw err instanceof UsageError ? bad(err.message) : err;
    }
  };
  const hostname = e.hostname === undefined ? name : String(e.hostname);
  const base = checked(() => parseHostSpec(hostname, `host ${name}: hostname`));
  const user = e.user === undefined ? base.user : String(e.user);
  const port = e.port === undefined ? base.port : String(e.port);
  const address = checked(() => parseHostSpec(`${user ? `${user}@` : ''}${formatAddress({ host: base.host })}${port ? `:${port}` : ''}`, `host ${name}:`));
  const sshOptions = asList(e['ssh-options'], bad).map((o) => checked(() => checkSshOption(o)));
  const flags: FleetHost['flags'] = {};
  for (const [k, v] of Object.entries(asMap(e.options))) {
    if (v === false || v === null) continue;
    flags[k] = v === true ? true : Array.isArray(v) ? v.map(String) : String(v);
  }
  return { name, address, sshOptions, flags };
}

function asMap(v: unknown): Entry {
  return isObject(v) ? v : {};
}

function asList(v: unknown, bad: (why: string) => UsageError): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw bad('ssh-options must be a list of KEY=VALUE strings');
}
