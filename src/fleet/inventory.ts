import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../core/errors.js';
import { checkSshOption, formatAddress, parseHostSpec, type SshAddress } from '../targets/ssh-spec.js';

/** One machine of a fleet: how to reach it, and the flags that differ for it. */
export interface FleetHost {
  name: string;
  address: SshAddress;
  sshOptions: string[];
  /** Long flag name (no dashes) -> value; `true` is a bare flag. */
  flags: Record<string, string | true | string[]>;
}

type Entry = Record<string, unknown>;

/**
 * The inventory file (docs/fleet.md):
 *
 *   defaults: { user: pi, ssh-options: [...], options: { k0s-version: v1.34.1+k0s.0 } }
 *   hosts:
 *     pi4-a: { hostname: 192.168.1.21 }
 *     pi5-b: { hostname: pi5.lan, user: admin, port: 2222, options: { kernel: skip } }
 *
 * `hosts` may also be a list of names or of entries with `name:`.
 */
export async function readInventory(file: string): Promise<FleetHost[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read the inventory ${file}: check the path after --inventory`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new UsageError(`the inventory ${file} is not valid YAML (${(err as Error).message.split('\n')[0]}): see docs/fleet.md`);
  }
  const bad = (why: string) => new UsageError(`the inventory ${file}: ${why}; see docs/fleet.md for the format`);
  if (!isObject(doc) || doc.hosts === undefined) throw bad('it needs a `hosts:` list or map');
  const defaults = doc.defaults === undefined ? {} : doc.defaults;
  if (!isObject(defaults)) throw bad('`defaults:` must be a map');
  let entries: [string, Entry][];
  if (Array.isArray(doc.hosts)) {
    entries = doc.hosts.map((h, i) => {
      if (typeof h === 'string') return [h, {}];
      if (isObject(h) && typeof h.name === 'string') return [h.name, h];
      throw bad(`host ${i + 1} has no name`);
    });
  } else if (isObject(doc.hosts)) {
    entries = Object.entries(doc.hosts).map(([name, h]) => {
      if (h !== null && h !== undefined && !isObject(h)) throw bad(`host ${name} must be a map (hostname, user, port, options)`);
      return [name, (h ?? {}) as Entry];
    });
  } else {
    throw bad('`hosts:` must be a list or a map');
  }
  if (entries.length === 0) throw bad('it lists no hosts');
  const seen = new Set<string>();
  return entries.map(([name, h]) => {
    if (seen.has(name)) throw bad(`host ${name} is listed twice`);
    seen.add(name);
    const sshOptions = [...asList(defaults['ssh-options'], 'defaults: ssh-options', bad), ...asList(h['ssh-options'], `host ${name}: ssh-options`, bad)];
    return hostFrom(name, { ...defaults, ...h, 'ssh-options': sshOptions, options: { ...asMap(defaults.options), ...asMap(h.options) } }, bad);
  });
}

/** A `--host` given on the command line, as a fleet member. */
export function hostFromFlag(spec: string): FleetHost {
  return { name: spec, address: parseHostSpec(spec), sshOptions: [], flags: {} };
}

function hostFrom(name: string, e: Entry, bad: (why: string) => UsageError): FleetHost {
  for (const key of Object.keys(e)) {
    if (!['name', 'hostname', 'user', 'port', 'ssh-options', 'options'].includes(key)) {
      throw bad(`host ${name} has an unknown key "${key}" (known: hostname, user, port, ssh-options, options)`);
    }
  }
  const hostname = e.hostname === undefined ? name : String(e.hostname);
  const base = parseHostSpec(hostname, `host ${name}: hostname`);
  const user = e.user === undefined ? base.user : String(e.user);
  const port = e.port === undefined ? base.port : String(e.port);
  const address = parseHostSpec(`${user ? `${user}@` : ''}${formatAddress({ host: base.host })}${port ? `:${port}` : ''}`, `host ${name}:`);
  const sshOptions = asList(e['ssh-options'], `host ${name}: ssh-options`, bad).map(checkSshOption);
  const flags: FleetHost['flags'] = {};
  for (const [k, v] of Object.entries(asMap(e.options))) {
    if (v === false || v === null) continue;
    flags[k] = v === true ? true : Array.isArray(v) ? v.map(String) : String(v);
  }
  return { name, address, sshOptions, flags };
}

function isObject(v: unknown): v is Entry {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asMap(v: unknown): Entry {
  return isObject(v) ? v : {};
}

function asList(v: unknown, what: string, bad: (why: string) => UsageError): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw bad(`${what} must be a list of KEY=VALUE strings`);
}
