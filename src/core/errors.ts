import { lastLine } from './text.js';

/** Exit codes, documented in docs/exit-codes.md. The only place they are defined. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  refused: 3,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error meant for the user: one line, with what to do next. Never shown with a stack. */
export class PiPrepError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.failed,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad flags, files or tokens: nothing was changed (exit 2). */
export class UsageError extends PiPrepError {
  constructor(message: string) {
    super(message, ExitCode.usage);
  }
}

/** The safety model said no (exit 3). */
export class RefusedError extends PiPrepError {
  constructor(message: string) {
    super(message, ExitCode.refused);
  }
}

/** A task or command failed (exit 1). */
export class TaskFailedError extends PiPrepError {
  constructor(message: string) {
    super(message, ExitCode.failed);
  }
}

/** A command run on a target exited non-zero. */
export class CommandError extends PiPrepError {
  constructor(
    readonly argv: readonly string[],
    readonly result: { exitCode: number; stdout: string; stderr: string; timedOut?: string },
  ) {
    const detail = lastLine(result.stderr) || lastLine(result.stdout);
    super(
      result.timedOut
        ? `\`${argv.join(' ')}\` ${result.timedOut}: check that the machine and its network answer, then run again`
        : `\`${argv.join(' ')}\` exited ${result.exitCode}${detail ? `: ${detail}` : ''}`,
      ExitCode.failed,
    );
  }
}

export function exitCodeFor(err: unknown): ExitCodeValue {
  return err instanceof PiPrepError ? err.exitCode : ExitCode.failed;
}

/** One line for the terminal: never a stack trace. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
