import type { KernelConfig } from '../../targets/probes/kernel-config.js';

/**
 * Why olddefconfig dropped an option: Kconfig keeps a symbol only when its `depends on` lines
 * and the `if` blocks around its definition hold. We read those from the tree's own Kconfig
 * files and follow the first false dependency down to the one that is off by itself.
 */
export type Deps = (sym: string) => Promise<string[] | undefined>;

const val = (c: KernelConfig, s: string): number => {
  const v = c.get(s);
  return v === 'y' ? 2 : v === 'm' ? 1 : 0;
};

/** Evaluate a Kconfig expression (&&, ||, !, =, !=, parentheses) as a tristate 0/1/2. */
export function evalExpr(expr: string, c: KernelConfig): number {
  const toks = expr.match(/"[^"]*"|&&|\|\||!=|[()!=]|[A-Za-z0-9_]+/g) ?? [];
  let i = 0;
  const atom = (): number | string => {
    const t = toks[i++];
    if (t === '(') {
      const v = or();
      i++; // ')'
      return v;
    }
    if (t === '!') return 2 - num(atom());
    if (t === undefined) return 2;
    if (t.startsWith('"')) return t.slice(1, -1);
    return t;
  };
  const num = (a: number | string): number => (typeof a === 'number' ? a : a === 'y' ? 2 : a === 'm' ? 1 : a === 'n' ? 0 : val(c, a));
  const text = (a: number | string): string => (typeof a === 'number' ? ['n', 'm', 'y'][a]! : /^[ymn]$/.test(a) ? a : c.get(a) ?? 'n');
  const cmp = (): number => {
    const a = atom();
    if (toks[i] === '=' || toks[i] === '!=') {
      const op = toks[i++];
      const b = atom();
      return (text(a) === text(b)) === (op === '=') ? 2 : 0;
    }
    return num(a);
  };
  const and = (): number => {
    let v = cmp();
    while (toks[i] === '&&') (i++, (v = Math.min(v, cmp())));
    return v;
  };
  const or = (): number => {
    let v = and();
    while (toks[i] === '||') (i++, (v = Math.max(v, and())));
    return v;
  };
  return or();
}

export function symbolsOf(expr: string): string[] {
  return (expr.replace(/"[^"]*"/g, '').match(/[A-Za-z0-9_]+/g) ?? []).filter((s) => !/^[ymn]$/.test(s));
}

/** "CFS_BANDWIDTH depends on FAIR_GROUP_SCHED (n), which depends on CGROUP_SCHED (n)". */
export async function explainDropped(sym: string, c: KernelConfig, deps: Deps): Promise<string> {
  const chain: string[] = [];
  const seen = new Set([sym]);
  let cur = sym;
  for (let depth = 0; depth < 8; depth++) {
    const exprs = await deps(cur);
    if (exprs === undefined) {
      if (cur === sym) return `CONFIG_${sym} does not exist in this kernel tree`;
      break;
    }
    const failed = exprs.find((e) => evalExpr(e, c) === 0);
    if (!failed) break;
    const off = symbolsOf(failed).find((s) => !seen.has(s) && val(c, s) === 0);
    if (!off) {
      chain.push(`\`${failed}\``);
      break;
    }
    chain.push(`CONFIG_${off} (${c.get(off) ?? 'n'})`);
    seen.add(off);
    cur = off;
  }
  if (chain.length === 0) return `CONFIG_${sym} is decided elsewhere (a choice, or a select by another option)`;
  return `CONFIG_${sym} depends on ${chain.join(', which depends on ')}`;
}

/**
 * The dependency expressions of a symbol from Kconfig source: `depends on` lines of every
 * definition, `if` blocks and menus around it. `files` maps path -> text of candidate files.
 */
export function depsFromKconfig(sym: string, files: Map<string, string>): string[] | undefined {
  let found = false;
  const out: string[] = [];
  const defRe = new RegExp(`^\\s*(menu)?config\\s+${sym}\\s*$`);
  for (const text of files.values()) {
    const lines = text.split('\n');
    const stack: { kind: 'if' | 'menu'; deps: string[] }[] = [];
    for (let n = 0; n < lines.length; n++) {
      const l = lines[n]!.replace(/#.*$/, '');
      const t = l.trim();
      if (t === 'help' || t === '---help---') {
        // Help text is prose ("if you say Y here"): skip it, it ends where the indentation does.
        const indent = indentOf(lines[n]!);
        while (n + 1 < lines.length && (lines[n + 1]!.trim() === '' || indentOf(lines[n + 1]!) > indent)) n++;
        continue;
      }
      if (/^if\s/.test(t)) stack.push({ kind: 'if', deps: [t.slice(3).trim()] });
      else if (t === 'endif') popTo(stack, 'if');
      else if (/^menu\s/.test(t)) {
        const deps: string[] = [];
        for (let k = n + 1; k < lines.length && /^\s+\S|^\s*$/.test(lines[k]!); k++) {
          const d = /^\s+depends on\s+(.+)$/.exec(lines[k]!.replace(/#.*$/, ''));
          if (d) deps.push(d[1]!.trim());
        }
        stack.push({ kind: 'menu', deps });
      } else if (t === 'endmenu') popTo(stack, 'menu');
      else if (defRe.test(l)) {
        found = true;
        const enclosing = stack.flatMap((s) => s.deps);
        for (let k = n + 1; k < lines.length && (/^\s+\S/.test(lines[k]!) || lines[k]!.trim() === ''); k++) {
          const d = /^\s+depends on\s+(.+)$/.exec(lines[k]!.replace(/#.*$/, ''));
          if (d) out.push(d[1]!.trim());
          if (/^\s*(help|---help---)\s*$/.test(lines[k]!)) break;
        }
        out.push(...enclosing); // its own `depends on` first: the nearest reason reads best
      }
    }
  }
  return found ? out : undefined;
}

function indentOf(line: string): number {
  let n = 0;
  for (const ch of line) {
    if (ch === ' ') n++;
    else if (ch === '\t') n = (Math.floor(n / 8) + 1) * 8;
    else break;
  }
  return n;
}

function popTo(stack: { kind: string }[], kind: string): void {
  for (let i = stack.length - 1; i >= 0; i--) {
    if (stack[i]!.kind === kind) {
      stack.splice(i);
      return;
    }
  }
}
