const MAX_PATH = 1024;

/** Why a path cannot be stored on FAT as it is, or undefined when it can. */
export function fatNameProblem(path: string): string | undefined {
  // Far beyond any alpine-rpi path; past it, the scratch copy hits PATH_MAX in the real run only.
  if (path.length > MAX_PATH) return `a path longer than ${MAX_PATH} characters`;
  for (const part of path.split('/')) {
    if (part === '') return 'an empty path segment';
    if (part.length > 255) return 'a name longer than 255 characters';
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f"*:<>?\\|\x7f]/.test(part)) return `"${part}" has characters FAT cannot store (" * : < > ? \\ | or control characters)`;
    if (/[^\x00-\x7f]/.test(part)) return `"${part}" is not ASCII: mtools would store a mangled short name the card cannot be verified by`;
    if (/[. ]$/.test(part) && part !== '.' && part !== '..') return `"${part}" ends in a dot or space, which FAT drops`;
    if (/^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$/i.test(part)) return `"${part}" is a reserved DOS device name`;
  }
  return undefined;
}

/** FAT compares names without case: the key two paths collide on. */
export function fatKey(path: string): string {
  return path.toLowerCase();
}
