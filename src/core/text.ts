import { redact } from './redact.js';

/** The last non-empty line of a command's output: what a one-line error quotes. */
export function lastLine(text: string): string {
  return text.trim().split('\n').at(-1)?.trim() ?? '';
}

/** Text in, whole lines out; end() flushes an unterminated last line. */
export function lineSplitter(each: (line: string) => void): { push(text: string): void; end(): void } {
  let rest = '';
  return {
    push: (text) => {
      const parts = (rest + text).split('\n');
      rest = parts.pop() ?? '';
      parts.forEach(each);
    },
    end: () => {
      if (rest) each(rest);
      rest = '';
    },
  };
}

/** Call onLine with each line of a child's stdout and stderr as it arrives, redacted. */
export function streamLines(child: { stdout?: NodeJS.ReadableStream | null; stderr?: NodeJS.ReadableStream | null }, onLine: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    const split = lineSplitter((line) => onLine(redact(line)));
    stream?.on('data', (chunk: Buffer) => split.push(chunk.toString('utf8')));
    stream?.on('end', () => split.end());
  }
}
