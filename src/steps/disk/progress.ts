import { formatSize } from './size.js';

/**
 * Progress lines with bytes and an ETA, at most twice a second:
 * "extract: 45M of 105M (43%), ETA 1s".
 */
export function progressReporter(what: string, total: number | undefined, log?: (line: string) => void): (bytes: number, final?: boolean) => void {
  const start = Date.now();
  let done = 0;
  let last = 0;
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
    const rate = done / Math.max(secs, 0.001);
    const eta = rate > 0 ? Math.ceil((total - done) / rate) : 0;
    log(`${what}: ${formatSize(done)} of ${formatSize(total)} (${Math.floor((done / total) * 100)}%), ETA ${eta}s`);
  };
}
