import { stat } from 'node:fs/promises';
import { ExitCode, UsageError } from '../core/errors.js';
import { printJson } from '../core/json-output.js';
import { redact } from '../core/redact.js';
import { FINISHED_STATES, fatPartitionOffset, readCardStatus, type CardStatus } from '../lib/alpine/card-status.js';

/**
 * `pi-prep check --card TARGET`: what an alpine-sd card's first boot said, read from its boot
 * partition on any machine (a card in a reader, or an image file). Read-only. Exit 0 when the node
 * finished (joined, or ready without a join), 1 when it did not (yet), 2 when TARGET is no card.
 */
export async function cardStatusCommand(target: string, flags: { json?: boolean; quiet?: boolean }): Promise<number> {
  const st = await stat(target).catch(() => undefined);
  if (!st || !(st.isFile() || st.isBlockDevice())) throw new UsageError(`--card ${target}: no such image file or block device: give the card (e.g. /dev/sdX) or the image`);
  const offset = await fatPartitionOffset(target).catch(() => undefined);
  if (offset === undefined) throw new UsageError(`--card ${target} has no FAT boot partition: give a card written by pi-prep alpine-sd`);
  let s: CardStatus;
  try {
    s = await readCardStatus(target, offset);
  } catch (err) {
    throw new UsageError(`--card ${target}: the boot partition cannot be read (${(err as Error).message}): give a card written by pi-prep alpine-sd`);
  }
  const ok = s.state !== undefined && FINISHED_STATES.has(s.state);
  if (flags.json) printJson('check', ok, { card: target, ...s });
  else if (!flags.quiet) process.stdout.write(redact(renderCardStatus(target, s)));
  return ok ? ExitCode.ok : ExitCode.failed;
}

export function renderCardStatus(target: string, s: CardStatus): string {
  const lines = [`${target}: ${s.hostname ? `card for ${s.hostname}` : 'Alpine card'} (boot partition at byte ${s.bootOffset})`];
  if (!s.state) {
    lines.push('state: not booted yet (no pi-prep/status on the boot partition): boot the Pi from it, then look again');
  } else {
    lines.push(`state: ${s.state}${s.attempt ? ` (try ${s.attempt})` : ''}${s.updated ? `, at ${s.updated}` : ''}`);
    if (s.detail) lines.push(`detail: ${s.detail}`);
    if (!FINISHED_STATES.has(s.state)) lines.push(`next: ${hint(s.state)}`);
  }
  if (s.log.length) lines.push('', `last lines of pi-prep/first-boot.log (the token is never written there):`, ...s.log.map((l) => `  ${l}`));
  return lines.join('\n') + '\n';
}

/** What to look at for each state the first boot can stop in. */
function hint(state: string): string {
  switch (state) {
    case 'waiting-network': return 'check the cable or the Wi-Fi settings (--wifi-ssid), and that a DHCP server answers; the Pi keeps trying';
    case 'waiting-clock': return 'the Pi has no clock battery: it needs NTP (chronyd) to reach a time server; the Pi keeps trying';
    case 'waiting-packages': return 'the package mirror did not answer or lacks a package: see the log; the Pi keeps trying';
    case 'waiting-controller': return 'start the controller, or open port 6443 to it from the Pi; the Pi keeps trying';
    case 'failed': return 'see the log below; on the Pi, /var/log/k0s.log and /var/log/k0s.err hold the worker\'s own log';
    default: return 'the first boot is still running: look again in a minute';
  }
}
