/**
 * Secrets registered here are removed from every text pi-prep prints, logs or renders.
 * One process-wide registry, because a secret must not leak through any path.
 */
const secrets = new Set<string>();
export const REDACTED = '[redacted]';

export function addSecret(secret: string): void {
  // Very short strings would redact ordinary words; tokens and their parts are long.
  if (secret.length >= 6) secrets.add(secret);
}

export function clearSecrets(): void {
  secrets.clear();
}

export function redact(text: string): string {
  let out = text;
  // Longest first, so a secret that contains another is replaced whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(s)) out = out.split(s).join(REDACTED);
  }
  return out;
}
