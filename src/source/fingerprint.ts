import type { Filter } from './filter.js';
import { NEVER_READ, physicalColumn, type DetectedSchema } from './schema.js';
import type { FingerprintVersion, LogSource, SourcePosition, WindowFingerprint } from './types.js';

/** The version new fingerprints are computed in. */
export const FINGERPRINT_VERSION: FingerprintVersion = 3;

/**
 * The columns Bifrost writes to a row that is already completed, and so the
 * only ones whose change a delivered window can miss (README, Decisions):
 * repricing rewrites the cost columns; deferred usage writes the token columns
 * (with `token_usage`, `cached_read_tokens` and `tokens_per_second`, which it
 * only writes together with them); payload offload sets `has_object` once the
 * upload is done (the payload columns were stripped before the insert), and
 * `content_hidden` is treated the same way. Status, latency and error details
 * are written when a `processing` row is finalized, which also changes the
 * window's row count; status is hashed too. By kind: how SQLite turns a value
 * into an integer term without a hash function.
 */
export type ChangeableKind = 'status' | 'real' | 'int';
export const CHANGEABLE_COLUMNS: ReadonlyArray<readonly [string, ChangeableKind]> = [
  ['status', 'status'], ['cost', 'real'], ['input_cost', 'real'], ['output_cost', 'real'], ['additional_cost', 'real'],
  ['prompt_tokens', 'int'], ['completion_tokens', 'int'], ['total_tokens', 'int'], ['has_object', 'int'], ['content_hidden', 'int'],
];

/**
 * Version 3 hashes, of those columns, only the ones the export's records
 * read (README, Decisions): the status always (a row completing or changing
 * status), the cost columns read, the token columns when the record reads any
 * of them or what deferred usage writes with them, and the offload flags when
 * read. Bifrost's hybrid store writes a row with its payload already stripped
 * and later only sets `has_object`, so no other column a record reads changes
 * once the row is complete. Most records then need only what Bifrost's
 * covering index `idx_logs_histogram_cover` holds, and the rows themselves
 * are not read.
 */
const COST_COLUMNS = ['cost', 'input_cost', 'output_cost', 'additional_cost'];
const TOKEN_COLUMNS = ['prompt_tokens', 'completion_tokens', 'total_tokens'];
const WRITTEN_WITH_TOKENS = [...TOKEN_COLUMNS, 'token_usage', 'cached_read_tokens', 'tokens_per_second'];
const OFFLOAD_FLAGS = ['has_object', 'content_hidden'];

/** Version 3's scope of a record's columns, as canonical names (stored with the fingerprint; a scope maps to itself). */
export function hashedColumnsV3(columns: readonly string[]): string[] {
  const want = new Set(columns);
  const out = ['status', ...COST_COLUMNS.filter((c) => want.has(c))];
  if (WRITTEN_WITH_TOKENS.some((c) => want.has(c))) out.push(...TOKEN_COLUMNS);
  return [...out, ...OFFLOAD_FLAGS.filter((c) => want.has(c))];
}

/** Version 1 hashed these and every exported column of every row. */
const V1_COLUMNS = ['id', 'status', 'cost', 'input_cost', 'output_cost', 'additional_cost', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'latency', 'error_details', 'token_usage'];

/** What every source's `fingerprints` reads: the same columns and rows on every dialect. */
export interface FingerprintScope {
  /** Physical columns hashed per row (versions 2 and 3: the row's identity is `id`, or SQLite's rowid). */
  cols: string[];
  /** Versions 2 and 3: the changeable columns this DB has (version 3: those in scope), with their kind. */
  changeable: Array<{ col: string; kind: ChangeableKind }>;
  /** Version 3: the scope, stored with the fingerprint. */
  scope?: string[];
  /** The export's filter over the span of all the windows. */
  filter: Filter;
  /** Physical cost and total_tokens columns, where the DB has them. */
  cost: string | null;
  tokens: string | null;
}

export function fingerprintScope(schema: DetectedSchema, filter: Filter, windows: ReadonlyArray<{ start: number; end: number }>, columns: readonly string[], version: FingerprintVersion = FINGERPRINT_VERSION): FingerprintScope {
  const physical = (names: Iterable<string>) => [...new Set(names)].filter((c) => !NEVER_READ.has(c)).map((c) => physicalColumn(schema, c)).filter((p): p is string => !!p);
  const scope = version === 3 ? hashedColumnsV3(columns) : undefined;
  const inScope = scope ? new Set(scope) : null;
  const changeable = CHANGEABLE_COLUMNS.filter(([c]) => physicalColumn(schema, c) && (!inScope || inScope.has(c))).map(([c, kind]) => ({ col: physicalColumn(schema, c)!, kind }));
  const cols = version === 1 ? physical([...V1_COLUMNS, ...columns]) : physical(['id', ...changeable.map((c) => c.col)]);
  const start = Math.min(...windows.map((w) => w.start));
  const end = Math.max(...windows.map((w) => w.end));
  return { cols, changeable, scope, filter: { ...filter, start, end }, cost: physicalColumn(schema, 'cost') ?? null, tokens: physicalColumn(schema, 'total_tokens') ?? null };
}

/** The fingerprint a source returns: the version is recorded from version 2 on. */
export function stamp(fp: Omit<WindowFingerprint, 'v' | 'scope'>, version: FingerprintVersion, scope?: string[]): WindowFingerprint {
  return version === 1 ? fp : scope ? { ...fp, v: version, scope } : { ...fp, v: version };
}

/**
 * Two sums of the same costs: a window's cost is a floating-point sum, whose
 * last digits depend on the order the rows were added in (one statement or
 * two threads' parts), so equal within a billionth of the larger. A changed
 * cost changes the hash, exactly.
 */
export function sameCost(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

export function sameFingerprint(a: WindowFingerprint, b: WindowFingerprint): boolean {
  return a.rows === b.rows && (a.v ?? 1) === (b.v ?? 1) && (a.scope ?? []).join() === (b.scope ?? []).join() && a.hash === b.hash && sameCost(a.cost, b.cost) && a.tokens === b.tokens;
}

/** A window as delivered: its span, the position it was read up to, and the fingerprint stored then (null: none). */
export interface DeliveredWindow { start: number; end: number; upTo?: SourcePosition; stored: WindowFingerprint | null }

/**
 * Each delivered window's fingerprint now (`now`, the current version) and
 * the one to compare with its stored fingerprint (`comparable`: the same
 * version and scope as the stored one). One grouped query for all windows,
 * and one more per older version (or version 3 scope) stored, only for the
 * windows that carry it: a window delivered by an older release, or with other
 * fields, is compared as it was fingerprinted, so an upgrade never restates
 * every window, nor hides a change.
 */
export async function currentFingerprints(source: LogSource, filter: Filter, windows: readonly DeliveredWindow[], columns: readonly string[], upTo?: SourcePosition): Promise<Array<{ now: WindowFingerprint; comparable: WindowFingerprint }>> {
  const now = await source.fingerprints(filter, windows, columns, upTo);
  const out = now.map((fp) => ({ now: fp, comparable: fp }));
  const key = (fp: WindowFingerprint) => `${fp.v ?? 1}:${(fp.scope ?? []).join()}`;
  const others = new Map<string, { version: FingerprintVersion; scope: readonly string[]; at: number[] }>();
  windows.forEach((w, i) => {
    if (!w.stored || key(w.stored) === key(now[i]!)) return;
    const k = key(w.stored);
    const version = (w.stored.v ?? 1) as FingerprintVersion;
    if (!others.has(k)) others.set(k, { version, scope: version === 3 ? w.stored.scope ?? [] : columns, at: [] });
    others.get(k)!.at.push(i);
  });
  for (const { version, scope, at } of others.values()) {
    const fps = await source.fingerprints(filter, at.map((i) => windows[i]!), scope, upTo, version);
    at.forEach((i, j) => { out[i]!.comparable = fps[j]!; });
  }
  return out;
}
