import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir } from '../../core/cache-dir.js';
import { UsageError } from '../../core/errors.js';
import type { K0sArch } from '../../targets/facts.js';
import { downloaderOf, type Target } from '../../targets/target.js';
import { fetchText } from '../../core/download.js';
import { sha256File } from '../../core/hash.js';

export const DEFAULT_K0S_MIRROR = 'https://github.com/k0sproject/k0s/releases/download';
export const STABLE_URL = 'https://docs.k0sproject.io/stable.txt';

export interface K0sSourceOptions {
  /** A tag (v1.31.1+k0s.0, 1.31.1+k0s.0) or "stable". */
  version?: string;
  /** Base URL holding <tag>/k0s-<tag>-<arch> and <tag>/sha256sums.txt (and stable.txt). */
  mirror?: string;
  /** A k0s binary on this machine, used instead of a download. */
  binary?: string;
  cacheDir?: string;
}

/** What will be installed: where it comes from and the SHA-256 it must have. */
export interface K0sArtifact {
  label: string;
  sha256: string;
  url?: string;
  localPath?: string;
  /** Dry run only: the release could not be looked up now (no network); the plan says so. */
  unresolved?: string;
}

export function normalizeTag(v: string): string {
  const t = v.trim();
  if (!/^v?\d+\.\d+\.\d+([+-][A-Za-z0-9.+-]+)?$/.test(t)) {
    throw new UsageError(`--k0s-version ${v} is not a k0s version: use e.g. v1.34.1+k0s.0 or "stable"`);
  }
  return t.startsWith('v') ? t : `v${t}`;
}

export function assetName(tag: string, arch: K0sArch): string {
  return `k0s-${tag}-${arch}`;
}

/** GitHub-style asset URL; `+` in tags must be %2B. */
export function assetUrl(mirror: string, tag: string, file: string): string {
  return `${mirror.replace(/\/+$/, '')}/${encodeURIComponent(tag)}/${encodeURIComponent(file)}`;
}

/** sha256sums.txt: `<hex> *<name>` or `<hex>  <name>` lines. */
export function parseSums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]{64})\s+\*?(\S+)\s*$/.exec(line.trim());
    if (m) out.set(m[2]!, m[1]!.toLowerCase());
  }
  return out;
}

/** Resolve version, asset and expected checksum (reads the network, changes nothing). */
export async function resolveK0s(opts: K0sSourceOptions, arch: K0sArch): Promise<K0sArtifact> {
  if (opts.binary) {
    const s = await stat(opts.binary).catch(() => undefined);
    if (!s?.isFile()) throw new UsageError(`--k0s-binary ${opts.binary} is not a file: give the path of a k0s binary for ${arch}`);
    return { label: `k0s from ${opts.binary}`, sha256: await sha256File(opts.binary), localPath: opts.binary };
  }
  const mirror = opts.mirror ?? DEFAULT_K0S_MIRROR;
  let tag: string;
  if (!opts.version || opts.version === 'stable') {
    const url = opts.mirror ? `${mirror.replace(/\/+$/, '')}/stable.txt` : STABLE_URL;
    tag = normalizeTag((await fetchText(url, 'the current stable k0s version')).trim());
  } else {
    tag = normalizeTag(opts.version);
  }
  const name = assetName(tag, arch);
  const sumsUrl = assetUrl(mirror, tag, 'sha256sums.txt');
  const sums = parseSums(await fetchText(sumsUrl, `k0s ${tag} checksums`, { flagFor404: '--k0s-version' }));
  const sha256 = sums.get(name);
  if (!sha256) throw new UsageError(`k0s ${tag} lists no ${name} in ${sumsUrl}: check --k0s-version (arch ${arch})`);
  return { label: `k0s ${tag} (${arch})`, sha256, url: assetUrl(mirror, tag, name) };
}

/** A verified copy on this machine (`local`), cached by hash (see downloadVerified). */
export async function fetchK0s(local: Target, a: K0sArtifact, cache = cacheDir()): Promise<string> {
  if (a.localPath) return a.localPath;
  return downloaderOf(local)({
    url: a.url!, sha256: a.sha256, dest: join(cache, 'k0s', a.sha256), mode: 0o755,
    what: a.label, flagFor404: '--k0s-version', unchanged: 'nothing was installed',
  });
}
