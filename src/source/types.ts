import type { DetectedSchema } from './schema.js';
import type { Filter } from './filter.js';

/** Where the reader stood: the highest insert position seen (SQLite rowid, Postgres inc_number). */
export interface SourcePosition {
  readonly kind: 'rowid' | 'inc_number' | 'none';
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
 * has one, and their ids are looked up when the run ends (`idsAt`), so a long
 * list of ids is not held through the read; otherwise by id.
 */
export type ProcessingRows = { positions: Float64Array; ids?: undefined } | { ids: string[]; positions?: undefined };

/** A filter for pages of a read that drops its excluded rows, or null when there are none. */
export function excluder(q: Pick<ReadQuery, 'exclude'>, names: readonly string[]): ((rows: unknown[][]) => unknown[][]) | null {
  const pos = q.exclude?.positions;
  if (pos?.length) {
    const i = names.indexOf('__pos');
    const has = (p: number) => {
      let lo = 0;
      let hi = pos.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const v = pos[mid]!;
        if (v === p) return true;
        if (v < p) lo = mid + 1;
        else hi = mid - 1;
      }
      return false;
    };
    return (rows) => (rows.some((r) => has(r[i] as number)) ? rows.filter((r) => !has(r[i] as number)) : rows);
  }
  if (!q.exclude?.ids?.length) return null;
  const skip = new Set(q.exclude.ids);
  const i = names.indexOf('id');
  if (i < 0) throw new Error('a read that excludes ids must select the id column');
  return (rows) => (rows.some((r) => skip.has(r[i] as string)) ? rows.filter((r) => !skip.has(r[i] as string)) : rows);
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

export interface LogSource {
  readonly dialect: 'sqlite' | 'postgres';
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
  /** The current high-water mark of inserts. */
  position(): Promise<SourcePosition>;
  /** Ids of rows in the filter that are still `processing` (re-checked later as late rows). */
  /** The rows under the filter that are still `processing`, up to a position when given. */
  processingRows(filter: Filter, upTo?: SourcePosition): Promise<ProcessingRows>;
  /** The ids of the rows at these positions (rows since deleted have none): sources that list processing rows by position. */
  idsAt?(positions: Float64Array): Promise<string[]>;
  close(): Promise<void>;
}
