import type { Filter } from './filter.js';
import { NEVER_READ, physicalColumn, type DetectedSchema } from './schema.js';
import type { FingerprintVersion, LogSource, SourcePosition, WindowFingerprint } from './types.js';

/** The version new fingerprints are computed in. */
export const FINGERPRINT_VERSION: FingerprintVersion = 2;

/**
 * The columns Bifrost writes to a row that is already completed, and so the
 * only ones whose change a delivered window can miss (README, Decisions):
 * repricing rewrites the cost columns; deferred usage writes the token columns
 * (with `token_usage`, `cached_read_tokens` and `tokens_per_second`, which it
 * only writes together with them); payload offload sets `has_object` (or
 * `content_hidden`) as it clears the payload columns, `error_details` among
 * them. Status, latency and error details are written when a `processing` row
 * is finalized, which also changes the window's row count; status is hashed
 * too. By kind: how SQLite turns a value into an integer term without a hash
 * function.
 */
export type ChangeableKind = 'status' | 'real' | 'int';
export const CHANGEABLE_COLUMNS: ReadonlyArray<readonly [string, ChangeableKind]> = [
  ['status', 'status'], ['cost', 'real'], ['input_cost', 'real'], ['output_cost', 'real'], ['additional_cost', 'real'],
  ['prompt_tokens', 'int'], ['completion_tokens', 'int'], ['total_tokens', 'int'], ['has_object', 'int'], ['content_hidden', 'int'],
];

/** Version 1 hashed these and every exported column of every row. */
const V1_COLUMNS = ['id', 'status', 'cost', 'input_cost', 'output_cost', 'additional_cost', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'latency', 'error_details', 'token_usage'];

/** What every source's `fingerprints` reads: the same columns and rows on every dialect. */
export interface FingerprintScope {
  /** Physical columns hashed per row (version 2: the row's identity is `id`, or SQLite's rowid). */
  cols: string[];
  /** Version 2: the changeable columns this DB has, with their kind. */
  changeable: Array<{ col: string; kind: ChangeableKind }>;
  /** The export's filter over the span of all the windows. */
  filter: Filter;
  /** Physical cost and total_tokens columns, where the DB has them. */
  cost: string | null;
  tokens: string | null;
}

export function fingerprintScope(schema: DetectedSchema, filter: Filter, windows: ReadonlyArray<{ start: number; end: number }>, columns: readonly string[], version: FingerprintVersion = FINGERPRINT_VERSION): FingerprintScope {
  const physical = (names: Iterable<string>) => [...new Set(names)].filter((c) => !NEVER_READ.has(c)).map((c) => physicalColumn(schema, c)).filter((p): p is string => !!p);
  const changeable = CHANGEABLE_COLUMNS.filter(([c]) => physicalColumn(schema, c)).map(([c, kind]) => ({ col: physicalColumn(schema, c)!, kind }));
  const cols = version === 1 ? physical([...V1_COLUMNS, ...columns]) : physical(['id', ...changeable.map((c) => c.col)]);
  const start = Math.min(...windows.map((w) => w.start));
  const end = Math.max(...windows.map((w) => w.end));
  return { cols, changeable, filter: { ...filter, start, end }, cost: physicalColumn(schema, 'cost') ?? null, tokens: physicalColumn(schema, 'total_tokens') ?? null };
}

/** The fingerprint a source returns: the version is recorded from version 2 on. */
export function stamp(fp: Omit<WindowFingerprint, 'v'>, version: FingerprintVersion): WindowFingerprint {
  return version === 1 ? fp : { ...fp, v: version };
}

export function sameFingerprint(a: WindowFingerprint, b: WindowFingerprint): boolean {
  return a.rows === b.rows && (a.v ?? 1) === (b.v ?? 1) && a.hash === b.hash && Math.abs(a.cost - b.cost) < 1e-9 && a.tokens === b.tokens;
}

/** A window as delivered: its span, the position it was read up to, and the fingerprint stored then (null: none). */
export interface DeliveredWindow { start: number; end: number; upTo?: SourcePosition; stored: WindowFingerprint | null }

/**
 * Each delivered window's fingerprint now (`now`, the current version) and
 * the one to compare with its stored fingerprint (`comparable`: the same
 * version as the stored one). One grouped query for all windows, and a second
 * one, in the old version, only for windows whose stored fingerprint is older:
 * a window delivered by an older release is compared as it was fingerprinted,
 * so an upgrade never restates every window, nor hides a change.
 */
export async function currentFingerprints(source: LogSource, filter: Filter, windows: readonly DeliveredWindow[], columns: readonly string[], upTo?: SourcePosition): Promise<Array<{ now: WindowFingerprint; comparable: WindowFingerprint }>> {
  const now = await source.fingerprints(filter, windows, columns, upTo);
  const out = now.map((fp) => ({ now: fp, comparable: fp }));
  const old = windows.map((w, i) => [w, i] as const).filter(([w]) => w.stored && (w.stored.v ?? 1) === 1);
  if (old.length) {
    const v1 = await source.fingerprints(filter, old.map(([w]) => w), columns, upTo, 1);
    old.forEach(([, i], j) => { out[i]!.comparable = v1[j]!; });
  }
  return out;
}
