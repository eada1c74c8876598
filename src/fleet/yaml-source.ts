import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { UsageError } from '../core/errors.js';

export type YamlPath = (string | number)[];

/**
 * A parsed YAML inventory that remembers where each key came from, so that a bad entry is
 * reported as one line naming the key and its line in the file.
 */
export class YamlSource {
  readonly value: unknown;
  private constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {
    this.value = doc.toJS({ maxAliasCount: 100 });
  }

  /** undefined when the text is not YAML at all (the caller may try another format). */
  static parse(file: string, text: string): YamlSource | { error: string } {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
    const err = doc.errors[0];
    if (err) return { error: `${err.linePos ? `line ${err.linePos[0].line}: ` : ''}${err.message.split('\n')[0]}` };
    return new YamlSource(file, doc, lines);
  }

  /** The line of the key at `path` (or of the value, for list items); 0 when unknown. */
  line(path: YamlPath): number {
    const parent = path.length > 1 ? this.doc.getIn(path.slice(0, -1), true) : this.doc.contents;
    const last = path[path.length - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === last);
      const range = (pair?.key as { range?: number[] } | undefined)?.range;
      if (range) return this.lines.linePos(range[0]!).line;
    }
    if (isSeq(parent) && typeof last === 'number') {
      const range = (parent.items[last] as { range?: number[] } | undefined)?.range;
      if (range) return this.lines.linePos(range[0]!).line;
    }
    return path.length > 1 ? this.line(path.slice(0, -1)) : 0;
  }

  /** A usage error: `the inventory FILE, line N (KEY): WHY; see docs/fleet.md`. */
  bad(path: YamlPath, why: string): UsageError {
    const line = path.length ? this.line(path) : 0;
    const where = line ? `, line ${line}` : '';
    const key = path.length ? ` (${path.join('.')})` : '';
    return new UsageError(`the inventory ${this.file}${where}${key}: ${why}; see docs/fleet.md for the formats`);
  }
}

export type Entry = Record<string, unknown>;

export function isObject(v: unknown): v is Entry {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
