/**
 * config.txt edits, as lines. config.txt is not an ini file: conditional sections ([pi4], [all])
 * apply in order, keys repeat (dtoverlay=), and some lines have no `=` (`initramfs FILE
 * followkernel`). So pi-prep never parses it as a whole: it appends one marked block at the end,
 * under [all] so no earlier conditional section hides it, and removes exactly that block.
 */
export const BLOCK_START = '# pi-prep: k0s kernel (undo: pi-prep rpios --rollback-kernel)';
export const BLOCK_END = '# pi-prep: end';
const COMMENTED = '#pi-prep# ';
/** What kernelBlock puts between the markers. */
const BLOCK_LINE = /^(\[all\]|kernel=\S+|auto_initramfs=0)$/;

/** The lines pi-prep adds: its own image, and no initramfs (auto_initramfs would look for one named after it). */
export function kernelBlock(image: string): string[] {
  return [BLOCK_START, '[all]', `kernel=${image}`, 'auto_initramfs=0', BLOCK_END];
}

function splitLines(text: string): { lines: string[]; eol: string } {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return { lines, eol };
}

/** config.txt without pi-prep's block (and with the initramfs lines it commented out restored). */
export function removeKernelBlock(text: string): string {
  const { lines, eol } = splitLines(text);
  const out: string[] = [];
  let inside = false;
  for (const l of lines) {
    const t = l.trim();
    if (t === BLOCK_START) inside = true;
    else if (inside && t === BLOCK_END) inside = false;
    // Only the block's own lines go: an edited or lost end marker never takes the user's lines with it.
    else if (inside && BLOCK_LINE.test(t)) continue;
    else {
      inside = false;
      out.push(l.startsWith(COMMENTED) ? l.slice(COMMENTED.length) : l);
    }
  }
  return out.length ? out.join(eol) + eol : '';
}

/**
 * config.txt selecting `image`; other lines byte for byte. An explicit `initramfs` line belongs
 * to the stock kernel's release, so it is commented out (the backup keeps the original).
 */
export function selectKernel(text: string, image: string): string {
  const { lines, eol } = splitLines(removeKernelBlock(text));
  const kept = lines.map((l) => (/^\s*initramfs\s/.test(l) ? COMMENTED + l : l));
  return [...kept, ...kernelBlock(image)].join(eol) + eol;
}

/** Whether config.txt ends up loading `image`: pi-prep's block is present and complete. */
export function selectsKernel(text: string, image: string): boolean {
  const { lines } = splitLines(text);
  const want = kernelBlock(image);
  const at = lines.indexOf(BLOCK_START);
  if (at === -1) return false;
  if (lines.some((l) => /^\s*initramfs\s/.test(l))) return false;
  return want.every((w, i) => lines[at + i] === w);
}

/** The kernel= value the firmware will use, read the simple way: the last top-level or [all] line. */
export function kernelLine(text: string): string | undefined {
  let section = 'all';
  let found: string | undefined;
  for (const raw of splitLines(text).lines) {
    const l = raw.trim();
    const sec = /^\[([^\]]+)\]/.exec(l);
    if (sec) section = sec[1]!.toLowerCase();
    else if (section === 'all' && /^kernel=/.test(l)) found = l.slice('kernel='.length).trim();
  }
  return found;
}
