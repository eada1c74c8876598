import { UsageError } from '../../core/errors.js';

/** FAT32 needs at least 65525 clusters; below that every tool reads the volume as FAT16. */
export const FAT32_MIN_CLUSTERS = 65525;
export const FAT32_MAX_CLUSTERS = 0x0ffffff5;
const SECTOR = 512;
const RESERVED = 32;
const FATS = 2;

export interface Fat32Geometry {
  sectorsPerCluster: number;
  clusters: number;
  fatSectors: number;
  reservedSectors: number;
}

/**
 * The clusters a FAT32 volume of `sectors` gets with `spc` sectors per cluster, the way
 * mkfs.fat computes it: each FAT must map every cluster (plus two reserved entries).
 */
export function fat32Geometry(sectors: number, spc: number): Fat32Geometry {
  let clusters = Math.floor((sectors - RESERVED) / spc);
  let fatSectors = 0;
  for (let i = 0; i < 8; i++) {
    fatSectors = Math.ceil(((clusters + 2) * 4) / SECTOR);
    const next = Math.floor((sectors - RESERVED - FATS * fatSectors) / spc);
    if (next === clusters) break;
    clusters = next;
  }
  return { sectorsPerCluster: spc, clusters, fatSectors, reservedSectors: RESERVED };
}

/**
 * Cluster size for a FAT32 boot partition: 4 KiB when that still gives a valid FAT32 (with a
 * margin, so no tool's rounding can tip it to FAT16), smaller for small partitions (a 256 MiB
 * partition needs 2 KiB), larger only when 4 KiB would overflow the FAT.
 */
export function chooseFat32Geometry(bytes: number): Fat32Geometry {
  const sectors = Math.floor(bytes / SECTOR);
  const margin = FAT32_MIN_CLUSTERS + 16;
  for (const spc of [8, 4, 2, 1]) {
    const g = fat32Geometry(sectors, spc);
    if (g.clusters >= margin) {
      if (g.clusters < FAT32_MAX_CLUSTERS) return g;
      break;
    }
  }
  for (const spc of [16, 32, 64]) {
    const g = fat32Geometry(sectors, spc);
    if (g.clusters >= margin && g.clusters < FAT32_MAX_CLUSTERS) return g;
  }
  throw new UsageError(`--boot-size ${Math.round(bytes / 2 ** 20)}M cannot hold a valid FAT32 (it needs at least ${FAT32_MIN_CLUSTERS} clusters): use --boot-size 64M or more`);
}
