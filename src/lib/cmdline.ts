/** The seed's flags. cgroup_enable=memory is the one that matters on current kernels (facts.md). */
export const CGROUP_FLAGS = ['cgroup_enable=cpuset', 'cgroup_enable=memory', 'cgroup_memory=1'] as const;
const DISABLE_MEMORY = 'cgroup_disable=memory';
/** arm64 COMMAND_LINE_SIZE is 2048 with the final NUL: the kernel cuts what goes past it. */
export const MAX_CMDLINE = 2047;

/**
 * Add the cgroup flags to a cmdline.txt, drop cgroup_disable=memory, and keep every other
 * parameter byte for byte and in order. The firmware reads one line: the file's first line is
 * edited, anything after it is kept as it was. Flags go before a `--` (what follows it is init's).
 */
export function patchCmdline(text: string): string {
  const nl = text.indexOf('\n');
  const line = (nl === -1 ? text : text.slice(0, nl)).replace(/\r$/, '');
  const rest = nl === -1 ? '' : text.slice(nl);
  // Split keeping the separators, so untouched parameters and spacing stay as they were.
  let parts = split(line);
  parts = dropToken(parts, DISABLE_MEMORY);
  const dashes = parts.indexOf('--');
  // Only parameters before `--` are the kernel's; a flag after it is init's and does not count.
  const present = new Set(dashes === -1 ? parts : parts.slice(0, dashes));
  const missing = CGROUP_FLAGS.filter((f) => !present.has(f));
  if (missing.length === 0) return joinLine(parts) + rest;
  const head = dashes === -1 ? parts : parts.slice(0, dashes);
  const tail = dashes === -1 ? [] : parts.slice(dashes);
  const trimmedHead = trimEndSpace(head);
  const added = [...(trimmedHead.length ? [...trimmedHead, ' '] : []), missing.join(' ')];
  const out = tail.length ? [...added, ' ', ...tail] : added;
  return joinLine(out) + rest;
}

/** What is still wrong with a cmdline, for check and plans. */
export function cmdlineProblems(text: string): string[] {
  const all = split(text.split('\n')[0] ?? '').filter((p) => !/^\s+$/.test(p));
  const dashes = all.indexOf('--');
  const params = new Set(dashes === -1 ? all : all.slice(0, dashes));
  const problems = CGROUP_FLAGS.filter((f) => !params.has(f)).map((f) => `${f} missing`);
  if (all.includes(DISABLE_MEMORY)) problems.push(`${DISABLE_MEMORY} present`);
  return problems;
}

/**
 * Parameters and the whitespace between them, as the kernel splits them: a double-quoted stretch
 * (`foo="a -- b"`) belongs to its parameter, spaces and `--` included.
 */
function split(line: string): string[] {
  return line.match(/\s+|(?:"[^"]*"?|[^\s"]+)+/g) ?? [];
}

function dropToken(parts: string[], token: string): string[] {
  const out: string[] = [];
  for (const p of parts) {
    if (p === token) {
      if (out.length && /^\s+$/.test(out[out.length - 1]!)) out.pop();
      continue;
    }
    if (/^\s+$/.test(p) && out.length === 0) continue;
    out.push(p);
  }
  return out;
}

function trimEndSpace(parts: string[]): string[] {
  const out = [...parts];
  while (out.length && /^\s+$/.test(out[out.length - 1]!)) out.pop();
  return out;
}

function joinLine(parts: string[]): string {
  return parts.join('');
}
