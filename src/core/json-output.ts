import { oneLine, exitCodeFor } from './errors.js';
import { redact } from './redact.js';

/**
 * The one shape every `--json` output has (docs/json.md, schema/pi-prep.schema.json):
 * { kind, version, ok, data } on success or a finished run, { kind, version, ok: false, error }
 * when the command stopped with an error or a refusal. `version` is the format's version: it
 * changes only when a field changes meaning or goes away.
 */
export const JSON_FORMAT_VERSION = 1;

export type JsonKind = 'check' | 'disks' | 'linux' | 'rpios' | 'alpine' | 'alpine-sd' | 'token' | 'kubeconfig' | 'fleet' | 'verify' | 'pi-prep';

export interface JsonError {
  message: string;
  exitCode: number;
  /** A run that failed part way: what it did up to there. */
  report?: unknown;
}

export type Envelope = { kind: JsonKind; version: number; ok: boolean } & ({ data: unknown } | { error: JsonError });

/** File modes are octal to people and to chmod: "0644", never 420. */
function replacer(key: string, value: unknown): unknown {
  if (key === 'mode' && typeof value === 'number') return value.toString(8).padStart(4, '0');
  return value;
}

export function renderEnvelope(envelope: Envelope): string {
  return redact(JSON.stringify(envelope, replacer, 2)) + '\n';
}

export function printJson(kind: JsonKind, ok: boolean, data: unknown): void {
  process.stdout.write(renderEnvelope({ kind, version: JSON_FORMAT_VERSION, ok, data }));
}

export function printJsonError(kind: JsonKind, err: unknown): void {
  const report = (err as { report?: unknown } | undefined)?.report;
  const error: JsonError = { message: oneLine(err), exitCode: exitCodeFor(err), ...(report ? { report } : {}) };
  process.stdout.write(renderEnvelope({ kind, version: JSON_FORMAT_VERSION, ok: false, error }));
}

/** A run stopped by a signal: its line and the conventional code (130, 143, 129). */
export function printJsonStopped(kind: JsonKind, message: string, exitCode: number): void {
  process.stdout.write(renderEnvelope({ kind, version: JSON_FORMAT_VERSION, ok: false, error: { message, exitCode } }));
}
