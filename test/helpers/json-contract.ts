import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import AjvModule from 'ajv';

/** The schema the package ships (schema/pi-prep.schema.json), compiled once. */
export const SCHEMA_FILE = fileURLToPath(new URL('../../../schema/pi-prep.schema.json', import.meta.url));
const Ajv = AjvModule.default;
// strictRequired off: the schema's if/then branches require properties declared one level up.
const validate = new Ajv({ allErrors: true, strict: true, strictRequired: false }).compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);

export interface EnvelopeDoc {
  kind: string;
  version: number;
  ok: boolean;
  data?: unknown;
  error?: { message: string; exitCode: number; report?: unknown };
}

/** Parse a command's --json stdout, check it against the schema and its kind; the whole envelope. */
export function parseEnvelope(stdout: string, kind: string): EnvelopeDoc {
  const doc = JSON.parse(stdout) as EnvelopeDoc;
  assert.ok(validate(doc), `--json output does not match the schema: ${JSON.stringify(validate.errors, null, 2)}\n${stdout}`);
  assert.equal(doc.kind, kind);
  return doc;
}

/** The data of a successful or finished run. */
export function jsonData<T>(stdout: string, kind: string): T {
  const doc = parseEnvelope(stdout, kind);
  assert.ok('data' in doc, `expected data, got ${stdout}`);
  return doc.data as T;
}
