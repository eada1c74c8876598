import { formatSize } from './size.js';

/**
 * Progress lines with bytes and an ETA, at most twice a second:
 * "extract: 45M of 105M (43%), ETA 1s".
 */
export function progressReporter(what: string, total: number | undefined, log?: (line: string) => void): (bytes: number, final?: boolean) => void {
  const start = Date.now();
  let done = 0;
  // The first line comes half a second in, not at the first chunk: a rate measured over a few
  // milliseconds gives an absurd ETA.
  let last = start;
  return (bytes, final = false) => {
    done += bytes;
    if (!log) return;
    const now = Date.now();
    if (!final && now - last < 500) return;
    last = now;
    const secs = (now - start) / 1000;
    if (final || !total) {
      log(`${what}: ${formatSize(done)} in ${secs.toFixed(1)}s`);
      return;
    }
    // An ETA only once a second of transfer says something about the rate.
    const eta = secs >= 1 && done > 0 ? `, ETA ${Math.ceil((Math.max(total - done, 0) * secs) / done)}s` : '';
    log(`${what}: ${formatSize(done)} of ${formatSize(total)} (${Math.floor((done / total) * 100)}%)${eta}`);
  };
}
