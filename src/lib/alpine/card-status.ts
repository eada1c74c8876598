import { open } from 'node:fs/promises';
import { readFatFiles } from '../disk/fat-reader.js';
import { CARD_LOG_FILE, CARD_STATUS_FILE } from './paths.js';

/** What a card's first boot wrote to its boot partition (pi-prep/status, pi-prep/first-boot.log). */
export interface CardStatus {
  /** Byte offset of the FAT boot partition. */
  bootOffset: number;
  /** The overlay's host name (from <hostname>.apkovl.tar.gz), when there is one. */
  hostname?: string;
  /** Undefined until the card has booted with a pi-prep first-boot job. */
  state?: string;
  detail?: string;
  attempt?: number;
  updated?: string;
  /** The last lines of the redacted log the Pi wrote. */
  log: string[];
}

/** MBR partition types of FAT filesystems (the Pi's firmware boots from one of them). */
const FAT_TYPES = new Set([0x0b, 0x0c, 0x0e]);

/** The first FAT partition of an MBR card or image, as a byte offset; undefined when there is none. */
export async function fatPartitionOffset(path: string): Promise<number | undefined> {
  const fh = await open(path, 'r');
  try {
    const mbr = Buffer.alloc(512);
    await fh.read(mbr, 0, 512, 0);
    if (mbr[510] !== 0x55 || mbr[511] !== 0xaa) return undefined;
    for (let i = 0; i < 4; i++) {
      const e = mbr.subarray(446 + i * 16, 462 + i * 16);
      if (FAT_TYPES.has(e[4]!)) return e.readUInt32LE(8) * 512;
    }
    return undefined;
  } finally {
    await fh.close();
  }
}

/** key=value lines. */
function fields(text: string): Map<string, string> {
  return new Map(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]));
}

/** Read the first boot's state from a card or image, changing nothing. */
export async function readCardStatus(path: string, offset: number, lines = 20): Promise<CardStatus> {
  const files = await readFatFiles(path, offset, [CARD_STATUS_FILE, CARD_LOG_FILE], (name) => name.endsWith('.apkovl.tar.gz'));
  const status = files.get(CARD_STATUS_FILE);
  const f = fields(status?.toString('utf8') ?? '');
  const ovl = [...files.keys()].find((n) => n.endsWith('.apkovl.tar.gz'));
  const attempt = Number(f.get('attempt'));
  return {
    bootOffset: offset,
    hostname: f.get('hostname') ?? ovl?.replace(/\.apkovl\.tar\.gz$/, ''),
    state: f.get('state'),
    detail: f.get('detail'),
    attempt: Number.isInteger(attempt) ? attempt : undefined,
    updated: f.get('updated'),
    log: (files.get(CARD_LOG_FILE)?.toString('utf8') ?? '').split('\n').filter(Boolean).slice(-lines),
  };
}

/** Finished states: the node runs (joined) or is ready without a join. */
export const FINISHED_STATES = new Set(['joined', 'ready']);
