import { UsageError } from '../../core/errors.js';

/** ext4's largest file (4 KiB blocks), and far beyond any SD card: above it truncate and mkfs fail. */
const MAX_BYTES = 16 * 1024 ** 4;
const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** "2G", "256M", "512MiB", "1.5G", "1048576" -> bytes (binary units, as sfdisk and truncate read them). */
export function parseSize(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`${flag} ${text} is not a size: use e.g. ${flag} 256M or ${flag} 2G`);
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toUpperCase()]!);
  if (!Number.isFinite(bytes) || bytes <= 0) throw new UsageError(`${flag} ${text} is not a positive size: use e.g. ${flag} 2G`);
  if (bytes > MAX_BYTES) throw new UsageError(`${flag} ${text} is more than 16T, the largest image or card pi-prep writes: use e.g. ${flag} 2G`);
  return bytes;
}

export function formatSize(bytes: number): string {
  for (const [u, f] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (bytes >= f) return `${(bytes / f).toFixed(bytes % f === 0 ? 0 : 1)}${u}`;
  }
  return `${bytes}B`;
}
