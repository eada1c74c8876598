/** Raspberry Pi boards, from the device tree or /proc/cpuinfo's Revision (shared/facts.md). */
export type Soc = 'BCM2835' | 'BCM2836' | 'BCM2837' | 'BCM2711' | 'BCM2712';

export interface Board {
  /** Human name, e.g. "Raspberry Pi 4 Model B Rev 1.4". */
  model: string;
  soc?: Soc;
  source: 'device-tree' | 'cpuinfo' | 'flag';
}

const SOC_BY_COMPATIBLE: Record<string, Soc> = {
  'brcm,bcm2712': 'BCM2712',
  'brcm,bcm2711': 'BCM2711',
  'brcm,bcm2837': 'BCM2837',
  'brcm,bcm2836': 'BCM2836',
  'brcm,bcm2835': 'BCM2835',
};

const SOC_BY_PROCESSOR: Record<number, Soc> = { 0: 'BCM2835', 1: 'BCM2836', 2: 'BCM2837', 3: 'BCM2711', 4: 'BCM2712' };

const TYPE_NAMES: Record<number, string> = {
  0x04: 'Raspberry Pi 2 Model B', 0x08: 'Raspberry Pi 3 Model B', 0x0a: 'Compute Module 3',
  0x0d: 'Raspberry Pi 3 Model B+', 0x0e: 'Raspberry Pi 3 Model A+', 0x10: 'Compute Module 3+',
  0x11: 'Raspberry Pi 4 Model B', 0x12: 'Raspberry Pi Zero 2 W', 0x13: 'Raspberry Pi 400',
  0x14: 'Compute Module 4', 0x15: 'Compute Module 4S', 0x17: 'Raspberry Pi 5', 0x18: 'Compute Module 5',
  0x19: 'Raspberry Pi 500', 0x1a: 'Compute Module 5 Lite',
};

/** From /proc/device-tree/model and /proc/device-tree/compatible (NUL-separated). */
export function boardFromDeviceTree(model: string | undefined, compatible: string | undefined): Board | undefined {
  const name = model?.replace(/\0/g, '').trim();
  const compat = (compatible ?? '').split('\0').map((s) => s.trim()).filter(Boolean);
  const soc = compat.map((c) => SOC_BY_COMPATIBLE[c]).find(Boolean);
  if (!name && !soc) return undefined;
  if (!soc && !/raspberry pi/i.test(name ?? '')) return { model: name!, source: 'device-tree' };
  return { model: name || compat[0]!, soc, source: 'device-tree' };
}

/** From /proc/cpuinfo: new-style revision codes have bit 23 set. The Hardware line is ignored. */
export function boardFromCpuinfo(cpuinfo: string | undefined): Board | undefined {
  const m = /^Revision\s*:\s*([0-9a-fA-F]+)\s*$/m.exec(cpuinfo ?? '');
  if (!m) return undefined;
  const rev = parseInt(m[1]!, 16);
  if (!(rev & (1 << 23))) return { model: `Raspberry Pi (old-style revision ${m[1]})`, soc: 'BCM2835', source: 'cpuinfo' };
  const type = (rev >> 4) & 0xff;
  const processor = (rev >> 12) & 0xf;
  return {
    model: TYPE_NAMES[type] ?? `Raspberry Pi (type 0x${type.toString(16)})`,
    soc: SOC_BY_PROCESSOR[processor],
    source: 'cpuinfo',
  };
}

/** The kernel build that fits a 64-bit board: defconfig and the image name the firmware loads. */
export function kernelFlavour(soc: Soc | undefined): { defconfig: string; image: string } | undefined {
  if (soc === 'BCM2712') return { defconfig: 'bcm2712_defconfig', image: 'kernel_2712.img' };
  if (soc === 'BCM2711' || soc === 'BCM2837') return { defconfig: 'bcm2711_defconfig', image: 'kernel8.img' };
  return undefined; // 32-bit only boards (Pi 1, 2, Zero) cannot run arm64 k0s
}
