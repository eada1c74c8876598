import type { Target } from '../../targets/target.js';

/** What a kernel install changed, written before the first boot file is touched (rollback reads it). */
export const MANIFEST = '/var/lib/pi-prep/kernel-install.json';

export interface KernelManifest {
  release: string;
  image: string;
  bootDir: string;
  /** Files that did not exist before: rollback removes them. */
  added: string[];
  /** Files that existed: backed up to FILE.pi-prep.bak, rollback restores them. */
  replaced: string[];
  modulesDir: string;
  configTxt: string;
  /** config.txt as pi-prep left it: rollback restores the backup only if nobody edited it since. */
  configTxtSha256?: string;
}

export async function readManifest(t: Target): Promise<KernelManifest | undefined> {
  const raw = await t.readFile(MANIFEST);
  if (!raw) return undefined;
  try {
    return JSON.parse(raw.toString('utf8')) as KernelManifest;
  } catch {
    return undefined;
  }
}

export async function writeManifest(t: Target, m: KernelManifest): Promise<void> {
  await t.mkdir('/var/lib/pi-prep', 0o755);
  await t.writeFile(MANIFEST, JSON.stringify(m, null, 2) + '\n', { mode: 0o644 });
}
