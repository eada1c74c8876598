import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { TaskFailedError, UsageError } from '../../core/errors.js';
import { fetchText } from '../../core/download.js';
import { downloaderOf, type Target } from '../../targets/target.js';
import { cacheDir } from '../../core/cache-dir.js';
import { progressReporter } from '../disk/progress.js';

export const DEFAULT_ALPINE_MIRROR = 'https://dl-cdn.alpinelinux.org/alpine';
export const FLAVOR = 'alpine-rpi';
export const ARCH = 'aarch64';

/** One alpine-rpi release file, resolved and ready to download and check. */
export interface AlpineRelease {
  version: string;
  branch: string;
  file: string;
  url: string;
  sha256: string;
  size?: number;
}

interface YamlEntry { branch?: string; arch?: string; version?: string; flavor?: string; file?: string; sha256?: string; size?: number }

/** latest-releases.yaml: a list of entries; pick flavor alpine-rpi for aarch64. */
export function pickRelease(yamlText: string, mirror: string, folder: string): AlpineRelease {
  let doc: unknown;
  try {
    doc = parseYaml(yamlText);
  } catch {
    throw new TaskFailedError(`latest-releases.yaml from ${mirror} is not YAML: try another --alpine-mirror`);
  }
  const list = (Array.isArray(doc) ? doc : []) as YamlEntry[];
  const e = list.find((x) => x?.flavor === FLAVOR && x.arch === ARCH);
  if (!e?.file || !e.version || !/^[0-9a-f]{64}$/i.test(e.sha256 ?? '')) {
    throw new UsageError(`latest-releases.yaml in ${folder} lists no ${FLAVOR} build for ${ARCH}: check --alpine-version and --alpine-mirror`);
  }
  if (e.file.includes('/')) throw new TaskFailedError(`latest-releases.yaml names a file with a path (${e.file}): try another --alpine-mirror`);
  return { version: e.version, branch: e.branch ?? '', file: e.file, url: `${folder}/${e.file}`, sha256: e.sha256!.toLowerCase(), size: Number.isSafeInteger(e.size) && e.size! > 0 ? e.size : undefined };
}

/**
 * `latest` (latest-stable) or 3.x.y: read latest-releases.yaml (the newest of that branch), or
 * for an older point release, its `.sha256` file beside the tarball.
 */
export async function resolveAlpine(version: string, mirror = DEFAULT_ALPINE_MIRROR): Promise<AlpineRelease> {
  const base = mirror.replace(/\/+$/, '');
  if (version !== 'latest' && !/^\d+\.\d+\.\d+$/.test(version)) {
    throw new UsageError(`--alpine-version ${version} is not a version: use e.g. 3.21.2, or latest`);
  }
  const branch = version === 'latest' ? 'latest-stable' : `v${version.split('.').slice(0, 2).join('.')}`;
  const folder = `${base}/${branch}/releases/${ARCH}`;
  const yaml = await fetchText(`${folder}/latest-releases.yaml`, `the Alpine ${branch} release list`, { flagFor404: '--alpine-version and --alpine-mirror' });
  const latest = pickRelease(yaml, base, folder);
  if (version === 'latest' || latest.version === version) return latest;
  const file = `${FLAVOR}-${version}-${ARCH}.tar.gz`;
  const sumText = await fetchText(`${folder}/${file}.sha256`, `the checksum of ${file}`, { flagFor404: '--alpine-version' });
  const m = /^([0-9a-f]{64})\s/i.exec(sumText.trim() + ' ');
  if (!m) throw new TaskFailedError(`${folder}/${file}.sha256 holds no SHA-256: try another --alpine-mirror`);
  return { version, branch, file, url: `${folder}/${file}`, sha256: m[1]!.toLowerCase() };
}

/** A verified local copy: from the cache when its hash matches, else downloaded, checked, cached. */
export async function fetchAlpine(local: Target, r: AlpineRelease, log?: (line: string) => void, cache = cacheDir()): Promise<string> {
  const dest = join(cache, 'alpine', r.file);
  const progress = progressReporter('download', r.size, log);
  const path = await downloaderOf(local)({
    url: r.url, sha256: r.sha256, dest, what: `Alpine ${r.version} (${r.file})`,
    flagFor404: '--alpine-version and --alpine-mirror', unchanged: 'nothing was written to the card', size: r.size, onBytes: (n) => progress(n),
  });
  progress(0, true);
  return path;
}
