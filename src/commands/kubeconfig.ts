import { writableFileArg } from './options.js';
import { atomicWrite } from '../core/atomic-write.js';
import { ExitCode, TaskFailedError } from '../core/errors.js';
import { printJson } from '../core/json-output.js';
import { resolvedHostname, sshTargetFor } from '../targets/ssh-target.js';
import type { ControllerFlags } from './token.js';
import { readText } from '../targets/target.js';

export const ADMIN_CONF = '/var/lib/k0s/pki/admin.conf';

/**
 * `pi-prep kubeconfig --controller HOST`: the admin kubeconfig k0s writes on the controller, with
 * the API server's `localhost` replaced by the address the controller is reached at (the seed's
 * manual step). It holds the cluster-admin key: a file written here is 0600.
 */
export async function kubeconfigCommand(flags: ControllerFlags & { address?: string }): Promise<number> {
  if (flags.output) await writableFileArg(flags.output, '-o');
  const target = await sshTargetFor(flags.controller, flags.sshOption, '--controller');
  try {
    const address = flags.address ?? (await resolvedHostname(target));
    if (flags.dryRun) {
      if (flags.json) {
        printJson('kubeconfig', true, { dryRun: true, controller: target.label, address, ...(flags.output ? { file: flags.output, mode: 0o600 } : {}) });
        return ExitCode.ok;
      }
      process.stdout.write(`would read ${ADMIN_CONF} on ${target.label}, point it at ${address} and ${flags.output ? `write ${flags.output} (mode 0600)` : 'print it'}\n`);
      return ExitCode.ok;
    }
    const conf = (await readText(target, ADMIN_CONF));
    if (conf === undefined) throw new TaskFailedError(`${target.label} has no ${ADMIN_CONF}: is it a k0s controller (k0s controller / k0s install controller)?`);
    const fixed = pointAt(conf, address);
    const server = `https://${hostPart(address)}`;
    if (flags.output) await atomicWrite(flags.output, fixed, 0o600);
    if (flags.json) {
      // Without -o the kubeconfig itself is the output, as without --json.
      printJson('kubeconfig', true, { dryRun: false, controller: target.label, address, server, ...(flags.output ? { file: flags.output, mode: 0o600 } : { kubeconfig: fixed }) });
      return ExitCode.ok;
    }
    if (flags.output) {
      if (!flags.quiet) process.stderr.write(`pi-prep: wrote the admin kubeconfig for ${server} to ${flags.output} (mode 0600)\n`);
    } else {
      process.stdout.write(fixed);
    }
    return ExitCode.ok;
  } finally {
    await target.close();
  }
}

/** `server: https://localhost:6443` (or 127.0.0.1, ::1) -> the controller's address; nothing else changes. */
export function pointAt(kubeconfig: string, address: string): string {
  return kubeconfig.replace(
    /^(\s*server:\s*["']?https?:\/\/)(localhost|127\.0\.0\.1|\[::1\])(?=[:/"'\s]|$)/gm,
    (_m, prefix: string) => `${prefix}${hostPart(address)}`,
  );
}

function hostPart(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}
