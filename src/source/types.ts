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
  pageSize?: number;
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
  processingIds(filter: Filter): Promise<string[]>;
  close(): Promise<void>;
}
