import { quoteArgv } from '../core/quote.js';
import { redact } from '../core/redact.js';
import type { Action } from './task.js';
import type { RunReport, TaskReport } from './report.js';

const mode = (m: number | undefined) => (m === undefined ? '' : `, mode ${m.toString(8).padStart(4, '0')}`);

export function describeAction(a: Action): string {
  return a.here && a.kind !== 'host' ? `on this machine: ${describe(a)}` : describe(a);
}

function describe(a: Action): string {
  switch (a.kind) {
    case 'run':
      return `run \`${quoteArgv(a.argv)}\`${a.input ? ' (with input on stdin)' : ''}`;
    case 'write': {
      const what = a.secret ? 'contents redacted' : `${a.bytes} bytes`;
      return `write ${a.path} (${what}${mode(a.mode)}${a.backup ? ', backup kept' : ''})`;
    }
    case 'put':
      return `copy ${a.from} to ${a.path}${mode(a.mode) ? ` (${mode(a.mode).slice(2)})` : ''}${a.backup ? ' (backup kept)' : ''}`;
    case 'mkdir':
      return `create directory ${a.path}${mode(a.mode)}`;
    case 'chmod':
      return `chmod ${a.mode.toString(8).padStart(4, '0')} ${a.path}`;
    case 'remove':
      return `remove ${a.path}`;
    case 'download':
      return `download ${a.url} to ${a.path} (SHA-256 ${a.sha256.slice(0, 12)}…)`;
    case 'host':
      return `on this machine: ${a.text}`;
  }
}

function checkbox(t: TaskReport): string {
  switch (t.status) {
    case 'done':
      return `- [x] ${t.title} (done: ${t.why})`;
    case 'applied':
      return `- [x] ${t.title} (changed)`;
    case 'blocked':
      return `- [ ] ${t.title} (blocked: ${t.why})`;
    case 'failed':
      return `- [ ] ${t.title} (failed: ${t.error ?? t.why})`;
    case 'not-reached':
      return `- [ ] ${t.title} (not reached)`;
    case 'would-run':
      return `- [ ] ${t.title} (${t.why})`;
  }
}

/** The markdown checklist: what is done, and exactly what would run or ran. */
export function renderMarkdown(r: RunReport): string {
  const lines = [`# pi-prep ${r.recipe}${r.dryRun ? ' (dry run)' : ''} on ${r.target}`, ''];
  for (const t of r.tasks) {
    lines.push(checkbox(t));
    for (const a of t.actions) {
      lines.push(`  - ${describeAction(a)}`);
      if (a.kind === 'write' && a.diff) for (const d of a.diff) lines.push(`    ${d}`);
    }
  }
  if (r.notes.length > 0) {
    lines.push('', 'Notes:');
    for (const n of r.notes) lines.push(`- ${n}`);
  }
  lines.push('', summaryLine(r));
  return redact(lines.join('\n')) + '\n';
}

export function summaryLine(r: RunReport): string {
  const count = (s: TaskReport['status']) => r.tasks.filter((t) => t.status === s).length;
  if (r.dryRun) {
    const blocked = count('blocked');
    return blocked > 0
      ? `Not feasible: ${blocked} requirement${blocked === 1 ? "" : "s"} blocked. Fix ${blocked === 1 ? "it" : "them"}, then run again.`
      : `${count('done')} done, ${count('would-run')} would run. Nothing was changed.`;
  }
  const base = `${count('done')} already done, ${count('applied')} changed`;
  if (r.stoppedFor) return `${base}. ${r.stoppedFor}`;
  if (!r.ok) return `${base}, ${count('failed') + count('blocked')} failed.`;
  return `${base}.`;
}
