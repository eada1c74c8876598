import { redact } from './redact.js';

/** The last non-empty line of a command's output: what a one-line error quotes. */
export function lastLine(text: string): string {
  return text.trim().split('\n').at(-1)?.trim() ?? '';
}

/** Call onLine with each line of a child's stdout and stderr as it arrives, redacted. */
export function streamLines(child: { stdout?: NodeJS.ReadableStream | null; stderr?: NodeJS.ReadableStream | null }, onLine: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream?.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) onLine(redact(line));
    });
    stream?.on('end', () => rest && onLine(redact(rest)));
  }
}
