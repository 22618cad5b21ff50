import type { DetectedSchema } from './schema.js';
import type { Filter } from './filter.js';

/** Where the reader stood: the highest insert position seen (SQLite rowid, Postgres inc_number, ClickHouse ver in µs). */
export interface SourcePosition {
  readonly kind: 'rowid' | 'inc_number' | 'ver' | 'none';
  readonly value: number;
}

/**
 * A page of rows in array form. `columns` names each slot; the synthetic
 * columns `__ts_ms` (epoch ms of `timestamp`), `__status_code`, `__pos`
 * (insert position, or null) and `__pt_params` (params of passthrough rows only)
 * are always present.
 */
export interface RowPage {
  readonly columns: readonly string[];
  readonly rows: unknown[][];
}

export interface ReadQuery {
  filter: Filter;
  /** Canonical column names to read; missing optional ones come back as null. */
  columns: readonly string[];
  /** Only rows inserted after this position (late rows). */
  after?: SourcePosition;
  /** Only rows inserted up to this position (a stable snapshot of the run). */
  upTo?: SourcePosition;
  /**
   * Rows to leave out whatever their status: an export's rows that were still
   * `processing` when it began. Each is delivered by a later run, once, even
   * if it finishes while this read is under way.
   */
  exclude?: Excluded;
  pageSize?: number;
}

/** Rows a read leaves out: by insert position (ascending; 8 bytes a row) where the source has one, else by id. */
export interface Excluded {
  positions?: Float64Array;
  ids?: readonly string[];
}

/**
 * Rows still `processing`: by insert position (ascending) where the source
 * has one, and their ids are looked up when the run ends (`idsJsonAt`), so a long
 * list of ids is not held through the read; otherwise by id.
 */
/** Rows still processing at a delivery: how many, and their ids as a JSON array (UTF-8 bytes, or a string). */
export interface PendingIds { readonly count: number; readonly json: string | Uint8Array }

export type ProcessingRows = { positions: Float64Array; ids?: undefined } | { ids: string[]; positions?: undefined };

/** The index of the first value in ascending `a` that is at least `v`. */
function lowerBound(a: Float64Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Whole positions spanning at most this many: tested in a bitmap (at most 8 MB), not by binary search. */
const BITMAP_SPAN = 1 << 26;

/**
 * Membership in ascending `pos`. Reads in time order (Postgres) cross every
 * excluded position, and dense ones (a stale gateway's `processing` rows)
 * fall in most pages: a bit per position of their span answers in two
 * array reads, where a binary search took ~17 steps per row.
 */
function positionTest(pos: Float64Array): (p: number) => boolean {
  const base = pos[0]!;
  const span = pos[pos.length - 1]! - base + 1;
  if (span > BITMAP_SPAN || !pos.every(Number.isInteger)) return (p) => pos[lowerBound(pos, p)] === p;
  const bits = new Uint8Array(Math.ceil(span / 8));
  for (const p of pos) { const o = p - base; bits[o >> 3]! |= 1 << (o & 7); }
  return (p) => {
    const o = p - base;
    return o >= 0 && o < span && Number.isInteger(o) && (bits[o >> 3]! & (1 << (o & 7))) !== 0;
  };
}

/**
 * A filter for pages of a read that drops its excluded rows, or null when
 * there are none. Excluded positions are tested once per page against the
 * page's lowest and highest position, and row by row only when one falls
 * between them.
 */
export function excluder(q: Pick<ReadQuery, 'exclude'>, names: readonly string[]): ((rows: unknown[][]) => unknown[][]) | null {
  const pos = q.exclude?.positions;
  if (pos?.length) {
    const i = names.indexOf('__pos');
    const has = positionTest(pos);
    return (rows) => {
      if (!rows.length) return rows;
      // The page's lowest and highest position (a read in time order is not in position order).
      let lo = Infinity;
      let hi = -Infinity;
      for (const r of rows) { const p = r[i] as number; if (p < lo) lo = p; if (p > hi) hi = p; }
      if (lowerBound(pos, lo) >= lowerBound(pos, hi + 1)) return rows;
      return rows.filter((r) => !has(r[i] as number));
    };
  }
  const ids = q.exclude?.ids;
  if (!ids?.length) return null;
  const skip = new Set(ids);
  const i = names.indexOf('id');
  if (i < 0) throw new Error('a read that excludes ids must select the id column');
  const has = (r: unknown[]) => skip.has(r[i] as string);
  return (rows) => (rows.some(has) ? rows.filter((r) => !has(r)) : rows);
}

export type SortKey = 'timestamp' | 'latency' | 'tokens' | 'cost';

export interface ListQuery extends ReadQuery {
  sort: SortKey;
  order: 'asc' | 'desc';
  limit?: number;
  offset?: number;
}

export interface AggregateSpec {
  /** Record fields or time buckets (`hour`, `date`, `week`, `month`). */
  groupBy: readonly string[];
  metrics: readonly string[];
  /** IANA zone for time buckets. */
  timezone: string;
}

/** What a window's rows add up to: compared with the value stored at delivery to find changed rows. */
export interface WindowFingerprint {
  /** Completed rows under the filter. */
  rows: number;
  /** Sum of `cost`, and of `total_tokens`: to say what changed. */
  cost: number;
  tokens: number;
  /** Sum of a hash of each row's changeable columns and its identity, modulo 2^48: changes when any of them changes. */
  hash: number;
  /** How `hash` was computed (src/source/fingerprint.ts); absent in fingerprints stored before versions existed (1). */
  v?: number;
  /** Version 3: the record columns whose changes it covers (src/source/fingerprint.ts). */
  scope?: string[];
}

/** 1: every exported column hashed per row; 2: the columns Bifrost changes after insert; 3: those of them the record can see (the current one). */
export type FingerprintVersion = 1 | 2 | 3;

export interface LogSource {
  readonly dialect: 'sqlite' | 'postgres' | 'clickhouse';
  /** A display name with no secrets (path, or URL without password). */
  readonly description: string;
  readonly schema: DetectedSchema;
  /** Keyset pages in insert order, bounded memory, short read transactions. */
  read(q: ReadQuery, signal?: AbortSignal): AsyncIterable<RowPage>;
  /** Sorted listing for `query`; streams. */
  list(q: ListQuery, signal?: AbortSignal): AsyncIterable<RowPage>;
  count(filter: Filter, range?: { after?: SourcePosition; upTo?: SourcePosition }): Promise<number>;
  /** Grouped metrics computed in SQL; one object per group. */
  aggregate(filter: Filter, spec: AggregateSpec): Promise<Record<string, unknown>[]>;
  /**
   * One fingerprint per window, in one grouped query: rows under the filter
   * (its time range ignored) whose timestamp falls in the window, up to the
   * snapshot. A window's own `upTo` leaves out rows inserted after it (its
   * delivery's position: those are late rows). `columns`: the canonical
   * columns the export reads. `version`: the current one unless told
   * (1 recomputes a fingerprint stored by an older release).
   */
  fingerprints(filter: Filter, windows: ReadonlyArray<{ start: number; end: number; upTo?: SourcePosition }>, columns: readonly string[], upTo?: SourcePosition, version?: FingerprintVersion): Promise<WindowFingerprint[]>;
  /** The current high-water mark of inserts. */
  position(): Promise<SourcePosition>;
  /** The rows under the filter that are still `processing`, up to a position when given. */
  processingRows(filter: Filter, upTo?: SourcePosition): Promise<ProcessingRows>;
  /**
   * The ids of the rows at these positions (rows since deleted have none), as the JSON array the ledger stores, and
   * their number: sources that list processing rows by position. Built by the DB, so a long list is never a JS array.
   */
  idsJsonAt?(positions: Float64Array): Promise<PendingIds>;
  close(): Promise<void>;
}
