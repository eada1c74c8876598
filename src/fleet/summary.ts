import type { HostResult } from './run-host.js';

const RESULT: Record<number, string> = { 0: 'ok', 1: 'FAILED', 2: 'BAD INPUT', 3: 'REFUSED' };

/** The table printed after a fleet run: one row per host, in inventory order. */
export function renderSummary(results: HostResult[]): string {
  const rows = results.map((r) => [
    r.name,
    RESULT[r.exitCode] ?? `exit ${r.exitCode}`,
    `${r.seconds.toFixed(1)}s`,
    r.exitCode === 0 ? (r.last ?? '') : (r.error ?? ''),
  ]);
  const head = ['HOST', 'RESULT', 'TIME', 'DETAIL'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const failed = results.filter((r) => r.exitCode !== 0).length;
  return [
    '',
    line(head),
    ...rows.map(line),
    '',
    failed === 0 ? `All ${results.length} hosts succeeded.` : `${failed} of ${results.length} hosts failed.`,
    '',
  ].join('\n');
}
