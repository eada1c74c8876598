import { writableFileArg } from './options.js';
import { atomicWrite } from '../core/atomic-write.js';
import { ExitCode, TaskFailedError, UsageError } from '../core/errors.js';
import { printJson } from '../core/json-output.js';
import { quoteArgv } from '../core/quote.js';
import { decodeJoinToken } from '../lib/k0s/token.js';
import { sshTargetFor } from '../targets/ssh-target.js';

export interface ControllerFlags {
  controller: string;
  sshOption?: string[];
  dryRun?: boolean;
  output?: string;
  json?: boolean;
  quiet?: boolean;
}

/** A Go duration, as `k0s token create --expiry` takes it: 1h, 30m, 1h30m, 24h. */
const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

/**
 * `pi-prep token --controller HOST`: `k0s token create --role worker` on the controller; the
 * token comes back on ssh's stdout and goes into a 0600 file here. Printed only with --print.
 */
export async function tokenCommand(flags: ControllerFlags & { expiry?: string; print?: boolean }): Promise<number> {
  const expiry = flags.expiry ?? '1h';
  if (!DURATION.test(expiry)) throw new UsageError(`--expiry ${expiry} is not a duration: use e.g. --expiry 1h or --expiry 24h`);
  if (flags.print && flags.json) throw new UsageError('--print and --json: give one (the JSON never holds the token; read it from the -o file)');
  const out = flags.output ?? 'join.token';
  await writableFileArg(out, '-o');
  const argv = ['k0s', 'token', 'create', '--role', 'worker', '--expiry', expiry];
  const target = await sshTargetFor(flags.controller, flags.sshOption, '--controller');
  if (flags.dryRun) {
    if (flags.json) {
      printJson('token', true, { dryRun: true, controller: target.label, argv, file: out, mode: 0o600 });
      return ExitCode.ok;
    }
    process.stdout.write(`would run \`${quoteArgv(argv)}\` on ${target.label} and write the token to ${out} (mode 0600)\n`);
    return ExitCode.ok;
  }
  try {
    const r = await target.run(argv, { allowFailure: true });
    if (r.exitCode !== 0) {
      const why = r.stderr.trim().split('\n').at(-1) ?? '';
      throw new TaskFailedError(`\`k0s token create\` failed on ${target.label} (exit ${r.exitCode}${why ? `: ${why}` : ''}): is it a running k0s controller?`);
    }
    // Registers the token for redaction and checks that it is a worker token.
    const token = decodeJoinToken(r.stdout);
    await atomicWrite(out, token.raw + '\n', 0o600);
    if (flags.json) {
      printJson('token', true, { dryRun: false, controller: target.label, server: token.server, expiry, file: out, mode: 0o600 });
      return ExitCode.ok;
    }
    if (!flags.quiet) process.stderr.write(`pi-prep: wrote a worker token for ${token.server} (valid ${expiry}) to ${out} (mode 0600); join with --join @${out}\n`);
    if (flags.print) process.stdout.write(token.raw + '\n');
    return ExitCode.ok;
  } finally {
    await target.close();
  }
}
