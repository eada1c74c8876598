import { UsageError } from '../../core/errors.js';

/** ext4's largest file (4 KiB blocks), and far beyond any SD card: above it truncate and mkfs fail. */
const MAX_BYTES = 16 * 1024 ** 4;
const POWER: Record<string, number> = { '': 0, K: 1, M: 2, G: 3, T: 4 };

/**
 * Sizes as people write them: "8GB" is what a card's label says, 8 x 10^9 bytes (SI, as card makers
 * and disk vendors count); "8GiB" and "8G" are 8 x 2^30 (binary, as truncate and sfdisk read "8G").
 * "1048576" and "512B" are bytes. Case does not matter.
 */
export function parseSize(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])(i?)(B?)|(B?))\s*$/i.exec(text);
  if (!m || (m[3] && !m[4])) throw new UsageError(`${flag} ${text} is not a size: use e.g. ${flag} 256M, ${flag} 2GiB or ${flag} 8GB (decimal, as on a card's label)`);
  const prefix = (m[2] ?? '').toUpperCase();
  const decimal = prefix !== '' && !m[3] && m[4] !== '';
  const bytes = Math.floor(Number(m[1]) * (decimal ? 1000 : 1024) ** POWER[prefix]!);
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
