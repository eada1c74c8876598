import { homedir } from 'node:os';
import { join } from 'node:path';

/** pi-prep's cache on this machine (downloads, kernel trees): $XDG_CACHE_HOME/pi-prep, else ~/.cache/pi-prep. */
export function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'pi-prep');
}
