import { UsageError } from '../../core/errors.js';
import { chooseFat32Geometry, type Fat32Geometry } from './fat32.js';
import { formatSize } from './size.js';

export const SECTOR = 512;
/** Where the first partition starts and how partitions are aligned: 4 MiB, as Raspberry Pi OS images do. */
export const ALIGN = 4 * 1024 * 1024;
export const MIN_DATA = 64 * 1024 * 1024;
export const BOOT_LABEL = 'ALPINE';

export interface Part {
  /** Byte offset from the start of the card. */
  offset: number;
  bytes: number;
}

export interface CardLayout {
  diskBytes: number;
  boot: Part & { fat: Fat32Geometry };
  data: Part;
}

const down = (n: number) => Math.floor(n / ALIGN) * ALIGN;
const up = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** MBR layout: p1 FAT32 (LBA, bootable) of bootBytes, p2 Linux (ext4) with the rest or dataBytes. */
export function planLayout(diskBytes: number, bootBytes: number, dataBytes?: number): CardLayout {
  const boot = { offset: ALIGN, bytes: up(bootBytes) };
  const dataOffset = boot.offset + boot.bytes;
  // Leave the disk's last MiB alone: it is partial on many cards and holds GPT backups on others.
  const room = down(diskBytes - 1024 * 1024) - dataOffset;
  const data = { offset: dataOffset, bytes: dataBytes === undefined ? room : up(dataBytes) };
  if (data.bytes > room || room < MIN_DATA) {
    const need = dataOffset + Math.max(data.bytes, MIN_DATA) + 1024 * 1024;
    throw new UsageError(`${formatSize(diskBytes)} is too small for a ${formatSize(boot.bytes)} boot partition and a ${formatSize(Math.max(data.bytes, MIN_DATA))} data partition: use a card (or --size) of at least ${formatSize(up(need))}, or a smaller --boot-size/--data-size`);
  }
  return { diskBytes, boot: { ...boot, fat: chooseFat32Geometry(boot.bytes) }, data };
}

/** The sfdisk script for the layout (MBR; 0c = FAT32 LBA, bootable; 83 = Linux). */
export function sfdiskScript(l: CardLayout): string {
  const s = (n: number) => n / SECTOR;
  return [
    'label: dos',
    'unit: sectors',
    '',
    `start=${s(l.boot.offset)}, size=${s(l.boot.bytes)}, type=c, bootable`,
    `start=${s(l.data.offset)}, size=${s(l.data.bytes)}, type=83`,
    '',
  ].join('\n');
}
