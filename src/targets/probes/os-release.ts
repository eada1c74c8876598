export interface OsRelease {
  id: string;
  idLike: string[];
  versionId: string;
  codename: string;
  prettyName: string;
}

/** Parse /etc/os-release (shell-style KEY=value, values optionally quoted). */
export function parseOsRelease(text: string | undefined): OsRelease {
  const kv = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!.trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    kv.set(m[1]!, v.replace(/\\(["$`\\])/g, '$1'));
  }
  return {
    id: kv.get('ID') ?? 'unknown',
    idLike: (kv.get('ID_LIKE') ?? '').split(/\s+/).filter(Boolean),
    versionId: kv.get('VERSION_ID') ?? '',
    codename: kv.get('VERSION_CODENAME') ?? '',
    prettyName: kv.get('PRETTY_NAME') ?? kv.get('NAME') ?? 'unknown',
  };
}
