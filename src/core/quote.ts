/**
 * POSIX shell quoting of one argv, the only place a command line is ever built from strings:
 * used for plans shown to people and for the remote command line of an SSH target.
 */
export function quoteArg(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_\/.,:=@%+^-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function quoteArgv(argv: readonly string[]): string {
  return argv.map(quoteArg).join(' ');
}
