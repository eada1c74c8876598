import { UsageError } from '../core/errors.js';
import { isObject, type Entry, type YamlSource } from './yaml-source.js';
import type { RawHost, Skipped } from './inventory-types.js';

type Bad = (why: string) => UsageError;
interface Var {
  value: unknown;
  bad: Bad;
}
interface Group {
  hosts: string[];
  children: string[];
  vars: Map<string, Var>;
}

/**
 * An Ansible inventory, YAML or INI, reduced to what pi-prep needs: groups (hosts, children,
 * vars) and host vars. Variables resolve as Ansible's do: `all`, then groups by depth (children
 * after parents), then the host's own.
 */
export class AnsibleInventory {
  private readonly groups = new Map<string, Group>();
  private readonly hostVars = new Map<string, { vars: Map<string, Var>; bad: Bad }>();

  group(name: string): Group {
    let g = this.groups.get(name);
    if (!g) this.groups.set(name, (g = { hosts: [], children: [], vars: new Map() }));
    return g;
  }

  /** `varBad` points an error at one of the host's vars, where the format knows its place. */
  addHost(group: string, pattern: string, vars: Entry, bad: Bad, varBad: (key: string) => Bad = () => bad): void {
    for (const name of expandRange(pattern, bad)) {
      const g = this.group(group);
      if (!g.hosts.includes(name)) g.hosts.push(name);
      let h = this.hostVars.get(name);
      if (!h) this.hostVars.set(name, (h = { vars: new Map(), bad }));
      for (const [k, v] of Object.entries(vars)) h.vars.set(k, { value: v, bad: varBad(k) });
    }
  }

  /** The hosts of these groups (and their children), in the order the file lists them. */
  select(groups: string[] | undefined, what: string): { hosts: RawHost[]; skipped: Skipped[] } {
    const wanted = new Set<string>();
    const picked = groups?.length ? groups : ['all'];
    for (const g of picked) {
      if (g !== 'all' && !this.groups.has(g)) {
        throw new UsageError(`--group ${g}: ${what} has no such group (groups: ${[...this.groups.keys()].filter((n) => n !== 'all').join(', ') || 'none'})`);
      }
      for (const h of this.members(g, new Set())) wanted.add(h);
    }
    const hosts: RawHost[] = [];
    const skipped: Skipped[] = [];
    for (const [name, h] of this.hostVars) {
      if (!wanted.has(name)) continue;
      const vars = this.resolved(name);
      const conn = vars.get('ansible_connection')?.value;
      if (conn !== undefined && !['ssh', 'smart', 'paramiko'].includes(String(conn))) {
        skipped.push({ name, why: `ansible_connection=${String(conn)}: pi-prep reaches hosts over ssh` });
        continue;
      }
      hosts.push({ name, entry: toEntry(name, vars), bad: h.bad });
    }
    return { hosts, skipped };
  }

  private members(group: string, seen: Set<string>): string[] {
    if (group === 'all') return [...this.hostVars.keys()];
    if (seen.has(group)) return [];
    seen.add(group);
    const g = this.groups.get(group);
    return g ? [...g.hosts, ...g.children.flatMap((c) => this.members(c, seen))] : [];
  }

  /** Group vars by depth (all first), then the host's own. */
  private resolved(host: string): Map<string, Var> {
    const depth = new Map<string, number>();
    const visit = (name: string, d: number, seen: Set<string>) => {
      if (seen.has(name)) return;
      depth.set(name, Math.max(depth.get(name) ?? 0, d));
      const g = this.groups.get(name);
      for (const c of g?.children ?? []) visit(c, d + 1, new Set([...seen, name]));
    };
    visit('all', 0, new Set());
    for (const n of this.groups.keys()) if (!depth.has(n)) visit(n, 1, new Set());
    const mine = [...this.groups.entries()]
      .filter(([n, g]) => n === 'all' || g.hosts.includes(host))
      .flatMap(([n]) => this.ancestorsAndSelf(n))
      .filter((n, i, a) => a.indexOf(n) === i)
      .sort((a, b) => (depth.get(a) ?? 0) - (depth.get(b) ?? 0) || a.localeCompare(b));
    const out = new Map<string, Var>();
    for (const n of ['all', ...mine.filter((n) => n !== 'all')]) for (const [k, v] of this.groups.get(n)?.vars ?? []) out.set(k, v);
    for (const [k, v] of this.hostVars.get(host)?.vars ?? []) out.set(k, v);
    return out;
  }

  private ancestorsAndSelf(name: string, seen = new Set<string>()): string[] {
    if (seen.has(name)) return [];
    seen.add(name);
    const parents = [...this.groups.entries()].filter(([, g]) => g.children.includes(name)).map(([n]) => n);
    return [name, ...parents.flatMap((p) => this.ancestorsAndSelf(p, seen))];
  }
}

/** Ansible's connection variables -> pi-prep's host keys; `pi_prep_FLAG` sets a flag for that host. */
function toEntry(name: string, vars: Map<string, Var>): Entry {
  const get = (...keys: string[]) => keys.map((k) => vars.get(k)).find((v) => v !== undefined);
  const host = get('ansible_host', 'ansible_ssh_host');
  const user = get('ansible_user', 'ansible_ssh_user');
  const port = get('ansible_port', 'ansible_ssh_port');
  const key = get('ansible_ssh_private_key_file', 'ansible_private_key_file');
  const sshOptions: string[] = [];
  if (key) sshOptions.push(`IdentityFile=${String(key.value)}`);
  for (const k of ['ansible_ssh_common_args', 'ansible_ssh_extra_args']) {
    const v = vars.get(k);
    if (v) sshOptions.push(...sshArgs(String(v.value), (why) => v.bad(`${k}: ${why}`)));
  }
  const options: Entry = {};
  for (const [k, v] of vars) if (k.startsWith('pi_prep_')) options[k.slice('pi_prep_'.length).replace(/_/g, '-')] = v.value;
  // A bad value is reported where that variable is written.
  const checked = (v: Var | undefined, what: string, ok: (s: string) => boolean) => {
    if (v && !ok(String(v.value))) throw v.bad(`host ${name}: ${what} "${String(v.value)}" is not valid`);
    return v === undefined ? undefined : String(v.value);
  };
  return {
    ...(host ? { hostname: checked(host, 'ansible_host', (s) => /^[A-Za-z0-9_.:[\]-]+$/.test(s)) } : {}),
    ...(user ? { user: checked(user, 'ansible_user', (s) => /^[A-Za-z0-9._][A-Za-z0-9._-]*$/.test(s)) } : {}),
    ...(port ? { port: checked(port, 'ansible_port', (s) => /^\d+$/.test(s) && Number(s) >= 1 && Number(s) <= 65535) } : {}),
    'ssh-options': sshOptions,
    options,
  };
}

/** `-o Key=Value` pairs of ansible_ssh_common_args; anything else cannot be handed on safely. */
function sshArgs(text: string, bad: Bad): string[] {
  const words = shellWords(text, bad);
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === '-o' && words[i + 1]) out.push(words[++i]!);
    else if (w.startsWith('-o') && w.length > 2) out.push(w.slice(2));
    else throw bad(`"${w}" is not supported: only -o KEY=VALUE options are handed to ssh`);
  }
  return out;
}

/** Words split as a POSIX shell would (quotes, backslashes), no expansion. */
export function shellWords(text: string, bad: Bad): string[] {
  const out: string[] = [];
  let cur: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i]!;
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      cur ??= '';
    } else if (c === '\\' && i + 1 < text.length) {
      cur = (cur ?? '') + text[++i]!;
    } else if (/\s/.test(c)) {
      if (cur !== undefined) out.push(cur);
      cur = undefined;
    } else {
      cur = (cur ?? '') + c;
    }
  }
  if (quote) throw bad(`unclosed ${quote}`);
  if (cur !== undefined) out.push(cur);
  return out;
}

/** Ansible host ranges: `pi[01:50]`, `node[1:9:2].lan`, `db-[a:c]`. */
export function expandRange(pattern: string, bad: Bad): string[] {
  const m = /^(.*?)\[([0-9a-z]+):([0-9a-z]+)(?::(\d+))?\](.*)$/.exec(pattern);
  if (!m) return [pattern];
  const [, pre, from, to, stepText, post] = m as unknown as [string, string, string, string, string | undefined, string];
  const step = Number(stepText ?? 1);
  const out: string[] = [];
  if (/^\d+$/.test(from) && /^\d+$/.test(to)) {
    const width = from.startsWith('0') ? from.length : 0;
    for (let n = Number(from); n <= Number(to); n += step) out.push(...expandRange(`${pre}${String(n).padStart(width, '0')}${post}`, bad));
  } else if (/^[a-z]$/.test(from) && /^[a-z]$/.test(to)) {
    for (let c = from.charCodeAt(0); c <= to.charCodeAt(0); c += step) out.push(...expandRange(`${pre}${String.fromCharCode(c)}${post}`, bad));
  } else {
    throw bad(`host range ${pattern} must be [N:M] or [a:z]`);
  }
  if (out.length === 0) throw bad(`host range ${pattern} is empty`);
  return out;
}

const GROUP_KEYS = ['hosts', 'children', 'vars'];

/** An Ansible YAML inventory: top-level groups, each a map of hosts, children and vars. */
export function looksLikeAnsibleYaml(doc: unknown): boolean {
  // Every top-level value a group; one group with a known key is enough (a typo is then reported at its line).
  const groups = isObject(doc) ? Object.values(doc) : [];
  return groups.every((g) => g === null || isObject(g)) && groups.some((g) => isObject(g) && Object.keys(g).some((k) => GROUP_KEYS.includes(k)));
}

export function ansibleFromYaml(src: YamlSource): AnsibleInventory {
  const inv = new AnsibleInventory();
  inv.group('all');
  const walk = (name: string, g: unknown, path: (string | number)[]) => {
    const group = inv.group(name);
    if (g === null || g === undefined) return;
    if (!isObject(g)) throw src.bad(path, `group ${name} must be a map of hosts, children and vars`);
    for (const k of Object.keys(g)) if (!GROUP_KEYS.includes(k)) throw src.bad([...path, k], `unknown key "${k}" in group ${name} (known: ${GROUP_KEYS.join(', ')})`);
    if (g.vars != null) {
      if (!isObject(g.vars)) throw src.bad([...path, 'vars'], 'vars must be a map');
      for (const [k, v] of Object.entries(g.vars)) group.vars.set(k, { value: v, bad: (why) => src.bad([...path, 'vars', k], why) });
    }
    if (g.hosts != null) {
      if (!isObject(g.hosts)) throw src.bad([...path, 'hosts'], 'hosts must be a map of host names (each with its vars, or empty)');
      for (const [h, vars] of Object.entries(g.hosts)) {
        if (vars != null && !isObject(vars)) throw src.bad([...path, 'hosts', h], `host ${h} must be a map of vars, or empty`);
        inv.addHost(name, h, (vars ?? {}) as Entry, (why) => src.bad([...path, 'hosts', h], why), (k) => (why) => src.bad([...path, 'hosts', h, k], why));
      }
    }
    if (g.children != null) {
      if (!isObject(g.children)) throw src.bad([...path, 'children'], 'children must be a map of groups');
      for (const [c, cg] of Object.entries(g.children)) {
        if (!group.children.includes(c)) group.children.push(c);
        walk(c, cg, [...path, 'children', c]);
      }
    }
  };
  for (const [name, g] of Object.entries(src.value as Entry)) {
    walk(name, g, [name]);
    if (name !== 'all' && !inv.group('all').children.includes(name)) inv.group('all').children.push(name);
  }
  return inv;
}

/** An Ansible INI inventory: `[group]` host lines with key=value, `[group:vars]`, `[group:children]`. */
export function ansibleFromIni(file: string, text: string): AnsibleInventory {
  const inv = new AnsibleInventory();
  inv.group('all');
  let section = 'ungrouped';
  let kind: 'hosts' | 'vars' | 'children' = 'hosts';
  text.split(/\r?\n/).forEach((raw, i) => {
    const bad: Bad = (why) => new UsageError(`the inventory ${file}, line ${i + 1}: ${why}; see docs/fleet.md for the formats`);
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) return;
    const head = /^\[([^\]:\s]+)(?::(vars|children))?\]$/.exec(line);
    if (head) {
      section = head[1]!;
      kind = (head[2] as 'vars' | 'children' | undefined) ?? 'hosts';
      inv.group(section);
      if (section !== 'all' && !inv.group('all').children.includes(section)) inv.group('all').children.push(section);
      return;
    }
    if (line.startsWith('[')) throw bad(`"${line}" is not a section: use [group], [group:vars] or [group:children]`);
    if (kind === 'children') {
      if (!/^[A-Za-z0-9_.-]+$/.test(line)) throw bad(`"${line}" is not a group name`);
      const g = inv.group(section);
      if (!g.children.includes(line)) g.children.push(line);
      inv.group(line);
      return;
    }
    if (kind === 'vars') {
      const eq = line.indexOf('=');
      if (eq <= 0) throw bad(`"${line}" in [${section}:vars] must be KEY=VALUE`);
      const key = line.slice(0, eq).trim();
      inv.group(section).vars.set(key, { value: unquote(line.slice(eq + 1).trim()), bad: (why) => bad(`${key}: ${why}`) });
      return;
    }
    // A host line: NAME [KEY=VALUE ...], quotes as in a shell, `#` to the end is a comment.
    const words = shellWords(line.replace(/\s+#.*$/, ''), bad);
    const [name, ...pairs] = words;
    const vars: Entry = {};
    for (const p of pairs) {
      const eq = p.indexOf('=');
      if (eq <= 0) throw bad(`"${p}" after host ${name} must be KEY=VALUE`);
      vars[p.slice(0, eq)] = p.slice(eq + 1);
    }
    inv.addHost(section, name!, vars, bad);
  });
  return inv;
}

function unquote(v: string): string {
  const m = /^(["'])(.*)\1$/.exec(v);
  return m ? m[2]! : v;
}
