import { ExitCode } from '../core/errors.js';
import { printJson } from '../core/json-output.js';
import { redact } from '../core/redact.js';
import { isPi, piReadiness, workerReadiness, type ReadinessItem } from '../lib/readiness.js';
import { targetFrom, type CommonFlags } from './options.js';
import { readText } from '../targets/target.js';

const MARK = { pass: 'pass', warn: 'warn', fail: 'FAIL' } as const;

/** `pi-prep check`: a readiness report; exit 0 unless a required item fails. Changes nothing. */
export async function checkCommand(flags: CommonFlags): Promise<number> {
  const target = await targetFrom({ ...flags, dryRun: true });
  try {
    const f = await target.facts();
    const cmdline = f.bootDir ? (await readText(target, `${f.bootDir}/cmdline.txt`)) : undefined;
    const items = [...workerReadiness(f), ...(isPi(f) ? piReadiness(f, cmdline) : [])];
    const ok = !items.some((i) => i.status === 'fail');
    const about = {
      target: target.label,
      os: f.os.prettyName,
      arch: f.arch,
      board: f.board?.model,
      kernel: f.kernelRelease,
    };
    if (flags.json) {
      printJson('check', ok, { ...about, items });
    } else if (!flags.quiet) {
      process.stdout.write(redact(renderCheck(about, items, ok)));
    }
    return ok ? ExitCode.ok : ExitCode.failed;
  } finally {
    await target.close();
  }
}

function renderCheck(about: Record<string, string | undefined>, items: ReadinessItem[], ok: boolean): string {
  const lines = [
    `${about.target}: ${about.os}, ${about.arch}${about.board ? `, ${about.board}` : ''}, kernel ${about.kernel}`,
    '',
  ];
  const width = Math.max(...items.map((i) => i.title.length));
  for (const i of items) {
    lines.push(`${MARK[i.status]}  ${i.title.padEnd(width)}  ${i.detail}${i.fix ? `  -> ${i.fix}` : ''}`);
  }
  const fails = items.filter((i) => i.status === 'fail').length;
  const warns = items.filter((i) => i.status === 'warn').length;
  lines.push('', ok ? `Ready for k0s (${warns} warning${warns === 1 ? '' : 's'}).` : `Not ready: ${fails} required check${fails === 1 ? '' : 's'} failed.`);
  return lines.join('\n') + '\n';
}
