import { ExitCode } from '../core/errors.js';
import { printJson } from '../core/json-output.js';
import { LocalTarget } from '../targets/local-target.js';
import { mountTable } from '../lib/disk/mountinfo.js';
import { listBlockDevices } from '../lib/disk/lsblk.js';
import { candidateDisks } from '../lib/disk/safety.js';
import { formatSize } from '../lib/disk/size.js';

/** `pi-prep disks`: every disk with the verdict alpine-sd would give it, and why. Changes nothing. */
export async function disksCommand(flags: { json?: boolean; loop?: boolean }): Promise<number> {
  const target = new LocalTarget();
  const disks = candidateDisks(await listBlockDevices(target), { allowLoop: flags.loop, extraMounts: await mountTable() });
  if (flags.json) {
    printJson('disks', true, { disks });
    return ExitCode.ok;
  }
  if (!disks.length) {
    process.stdout.write('No disks found. Insert a card (a USB reader shows up as /dev/sdX, a built-in one as /dev/mmcblkN).\n');
    return ExitCode.ok;
  }
  const rows = disks.map((d) => [d.device, formatSize(d.size), d.model, d.verdict === 'ok' ? 'ok' : 'REFUSED', d.reason]);
  const head = ['DEVICE', 'SIZE', 'MODEL', 'VERDICT', 'REASON'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(width[i]!))).join('  ');
  process.stdout.write([line(head), ...rows.map(line)].join('\n') + '\n');
  return ExitCode.ok;
}
