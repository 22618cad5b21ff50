import Database from 'better-sqlite3';
import { aggregateSql, shapeAggregateRow } from '../aggregate-sql.js';
import { combineFingerprints, planSqliteFingerprints, sqliteFingerprints } from './fingerprint-sql.js';
import { runFingerprintStatement, type FingerprintStatement } from './fingerprint-run.js';
import { filterConditions, processingFilter, whereClause, type Filter } from '../filter.js';
import { physicalColumn, readSelectList, type DetectedSchema } from '../schema.js';
import { excluder, type WindowFingerprint, type FingerprintVersion, type AggregateSpec, type ProcessingRows, type PendingIds, type ListQuery, type LogSource, type ReadQuery, type RowPage, type SourcePosition } from '../types.js';
import { DAY_MS, parseStoreTimestamp } from '../../util/time.js';
import { narrowing, sortByTime, topByTime } from './top-by-time.js';
import { tableOf, type LogTableName } from '../log-table.js';
import { openSqliteLogDb } from './sqlite-open.js';
import { storeMs } from './store-ms.js';
import { coarseBounds, createSqliteDialect, offsetSegments, SQLITE_STATUS_CODE, SQLITE_TS_MS } from './sqlite-dialect.js';

const DEFAULT_PAGE = 5000;

interface RangeRead {
  stmt: Database.Statement;
  names: string[];
  params: unknown[];
  /** The exact time test, in JS. */
  keep(rows: unknown[][]): unknown[][];
  posIdx: number;
}

const SORT_SQL: Record<ListQuery['sort'], string> = {
  timestamp: SQLITE_TS_MS,
  latency: '"latency"',
  tokens: '"total_tokens"',
  cost: 'COALESCE("cost", 0)',
};

/**
 * Reads a Bifrost SQLite log DB, read-only. Exports page by rowid in short
 * statements so the gateway's WAL can always checkpoint between pages.
 */
export class SqliteSource implements LogSource {
  readonly dialect = 'sqlite' as const;
  readonly description: string;
  /** The DB file (encoding threads open their own connection to it). */
  readonly path: string;
  readonly schema: DetectedSchema;
  private readonly db: Database.Database;
  private readonly timestampIndex: string | null;
  private readonly d = createSqliteDialect((zone) => this.segments(zone));
  private span: { start: number; end: number } | null = null;
  /** The log table, quoted. */
  private get t(): string { return `"${tableOf(this.schema)}"`; }

  private constructor(path: string, db: Database.Database, schema: DetectedSchema, timestampIndex: string | null) {
    this.description = path;
    this.path = path;
    this.db = db;
    this.schema = schema;
    this.timestampIndex = timestampIndex;
  }

  static open(path: string, table: LogTableName = 'logs'): SqliteSource {
    const { db, schema, timestampIndex } = openSqliteLogDb(path, table);
    return new SqliteSource(path, db, schema, timestampIndex);
  }

  /** Offset history over the data's span (for local-time buckets). */
  private segments(zone: string) {
    if (!this.span) {
      const r = this.timestampEnds();
      const lo = r.lo ? parseStoreTimestamp(`${r.lo.slice(0, 10)} 00:00:00`) : Date.now();
      const hi = r.hi ? parseStoreTimestamp(`${r.hi.slice(0, 10)} 00:00:00`) : Date.now();
      this.span = { start: (Number.isNaN(lo) ? 0 : lo) - 2 * DAY_MS, end: (Number.isNaN(hi) ? Date.now() : hi) + 3 * DAY_MS };
    }
    return offsetSegments(zone, this.span.start, this.span.end);
  }

  /**
   * The select list reads `timestamp` as stored, in the `__ts_ms` column, and `withTimes` turns it into epoch ms
   * in place: JS parses Bifrost's forms (storeMs) for a fraction of what the expression costs per row in SQL, and
   * any other text is handed to that expression, so every row gets the instant SQLITE_TS_MS gives it.
   */
  private withTimes(rows: unknown[][], at: number): unknown[][] {
    for (const r of rows) {
      const v = r[at];
      const ms = typeof v === 'string' ? storeMs(v) : undefined;
      r[at] = ms !== undefined ? ms : v === null ? null : (this.tsSql ??= this.db.prepare(`SELECT ${SQLITE_TS_MS} FROM (SELECT ? AS "timestamp")`).pluck()).get(v);
    }
    return rows;
  }

  private tsSql: Database.Statement | null = null;

  private selectList(columns: readonly string[]): { sql: string; names: string[] } {
    return readSelectList(columns, (c) => { const p = physicalColumn(this.schema, c); return p ? `"${p}"` : 'NULL'; },
      { tsMs: '"timestamp"', statusCode: SQLITE_STATUS_CODE, position: 'rowid', passthroughParams: tableOf(this.schema) === 'logs' ? `CASE WHEN "object_type" = 'passthrough' THEN "params" END` : 'NULL' });
  }


  async position(): Promise<SourcePosition> {
    const r = this.db.prepare(`SELECT max(rowid) AS m FROM ${this.t}`).get() as { m: number | null };
    return { kind: 'rowid', value: r.m ?? 0 };
  }

  /** The smallest and largest `timestamp` text: two statements, because SQLite answers a lone min() or max() from one end of the index and both together by a scan. */
  private timestampEnds(): { lo: string | null; hi: string | null } {
    return {
      lo: this.db.prepare(`SELECT min("timestamp") FROM ${this.t}`).pluck().get() as string | null,
      hi: this.db.prepare(`SELECT max("timestamp") FROM ${this.t}`).pluck().get() as string | null,
    };
  }

  /**
   * The rowid span (lo, hi] that holds every row of a time filter, found in
   * the timestamp index: the first and last rowid whose exact time falls in
   * the range. The index holds the text and the rowid, so the exact test runs
   * on index entries alone (the coarse text range around a one-day window
   * covers three dates), and the table scan then covers only
   * the rows inserted between the window's first and last row.
   */
  private rowidSpan(f: Filter, lo: number, hi: number): [number, number] {
    if (!this.timestampIndex || (f.start === undefined && f.end === undefined)) return [lo, hi];
    // A range that covers every row (a full backfill) needs no scan of the index: its two ends say so.
    const ends = this.timestampEnds();
    if (ends.lo === null || ends.hi === null) return [0, -1];
    const { from, to } = coarseBounds(f.start, f.end);
    if ((from === null || ends.lo >= from) && (to === null || ends.hi < to)) return [lo, hi];
    // The inner text range needs no exact test (a bare index range, as cheap as the coarse one); only the
    // margins, a day or two at each end, pay for it.
    let a = Infinity;
    let b = -Infinity;
    const ix = `"${this.timestampIndex.replace(/"/g, '""')}"`;
    for (const piece of this.d.spanPieces(f.start, f.end)) {
      const params: unknown[] = [...piece.params];
      const conds = [piece.sql];
      if (piece.exact && f.start !== undefined) { params.push(f.start); conds.push(`${SQLITE_TS_MS} >= ?`); }
      if (piece.exact && f.end !== undefined) { params.push(f.end); conds.push(`${SQLITE_TS_MS} < ?`); }
      const r = this.db.prepare(`SELECT min(rowid) AS a, max(rowid) AS b FROM ${this.t} INDEXED BY ${ix} WHERE ${conds.join(' AND ')}`).get(...params) as { a: number | null; b: number | null };
      if (r.a !== null && r.b !== null) { a = Math.min(a, r.a); b = Math.max(b, r.b); }
    }
    if (a > b) return [0, -1];
    return [Math.max(lo, a - 1), Math.min(hi, b)];
  }

  /**
   * The statement of a rowid-range read. The exact time test runs in JS on the
   * `__ts_ms` the SELECT computes anyway (SQLite would evaluate the timestamp
   * expression once more per bound); SQL keeps the coarse, index-friendly text
   * range so rows far outside the window skip every expression.
   */
  private rangeRead(q: ReadQuery, limit: number | null): RangeRead {
    const { sql: select, names } = this.selectList(q.columns);
    const { start, end } = q.filter;
    const params: unknown[] = [];
    const conds: string[] = [];
    const coarse = this.d.coarseTime(params, start, end);
    if (coarse) conds.push(coarse);
    conds.push(...filterConditions(this.d, this.schema, { ...q.filter, start: undefined, end: undefined }, params));
    // NOT INDEXED keeps SQLite on the rowid b-tree: a range scan that every
    // page resumes, instead of re-sorting an index range per page.
    const stmt = this.db.prepare(`SELECT ${select} FROM ${this.t} NOT INDEXED WHERE rowid > ? AND rowid <= ?${conds.length ? ` AND ${conds.join(' AND ')}` : ''} ORDER BY rowid${limit ? ` LIMIT ${limit}` : ''}`).raw(true);
    const tsIdx = names.indexOf('__ts_ms');
    const timed = start !== undefined || end !== undefined;
    const lo = start ?? -Infinity;
    const hi = end ?? Infinity;
    const skip = excluder(q, names);
    const keep = (fetched: unknown[][]): unknown[][] => {
      const rows = this.withTimes(skip ? skip(fetched) : fetched, tsIdx);
      if (!timed) return rows;
      let all = true;
      for (const r of rows) {
        const t = r[tsIdx] as number | null;
        if (t === null || t < lo || t >= hi) { all = false; break; }
      }
      if (all) return rows;
      return rows.filter((r) => { const t = r[tsIdx] as number | null; return t !== null && t >= lo && t < hi; });
    };
    return { stmt, names, params, keep, posIdx: names.indexOf('__pos') };
  }

  /** The rowid span (lo, hi] a read has to cover: its snapshot, narrowed by the time filter through the index. */
  async readSpan(q: ReadQuery): Promise<[number, number]> {
    const hiPos = q.upTo ? q.upTo.value : (await this.position()).value;
    const loPos = q.after ? q.after.value : 0;
    return this.rowidSpan(q.filter, loPos, hiPos);
  }

  /**
   * One rowid range (lo, hi] of a read, as a page: the unit a parallel export
   * hands to a worker. The statement is prepared once per query shape.
   */
  readRange(q: ReadQuery, lo: number, hi: number): RowPage {
    if (!this.ranges || this.ranges.q !== q) this.ranges = { q, r: this.rangeRead(q, null) };
    const r = this.ranges.r;
    return { columns: r.names, rows: r.keep(r.stmt.all(lo, hi, ...r.params) as unknown[][]) };
  }

  private ranges: { q: ReadQuery; r: RangeRead } | null = null;

  async *read(q: ReadQuery, signal?: AbortSignal): AsyncIterable<RowPage> {
    let [cursor, hi] = await this.readSpan(q);
    if (cursor >= hi) return;
    const pageSize = q.pageSize ?? DEFAULT_PAGE;
    const { stmt, names, params, keep, posIdx } = this.rangeRead(q, pageSize);
    for (;;) {
      signal?.throwIfAborted();
      const rows = stmt.all(cursor, hi, ...params) as unknown[][];
      if (!rows.length) return;
      cursor = rows[rows.length - 1]![posIdx] as number;
      const kept = keep(rows);
      if (kept.length) yield { columns: names, rows: kept };
      if (rows.length < pageSize) return;
    }
  }

  async *list(q: ListQuery, signal?: AbortSignal): AsyncIterable<RowPage> {
    const { sql: select, names } = this.selectList(q.columns);
    const params: unknown[] = [];
    const conds = filterConditions(this.d, this.schema, q.filter, params);
    const dir = q.order === 'asc' ? 'ASC' : 'DESC';
    const limit = q.limit ?? -1;
    const offset = q.offset ?? 0;
    const pageSize = q.pageSize ?? 1000;
    if (q.sort === 'timestamp' && limit >= 0 && this.timestampIndex) {
      // Newest (or oldest) first with a limit: walk the timestamp index, entries only, and stop as soon as no
      // later entry can make the cut, so the cost follows the limit, not the table.
      const ix = `"${this.timestampIndex.replace(/"/g, '""')}"`;
      const k = limit + offset;
      const entries = (extra: string[], tail = '') => `SELECT rowid, "timestamp" FROM ${this.t} INDEXED BY ${ix} ${whereClause([...extra, ...conds])} ORDER BY "timestamp" ${dir}, rowid ${dir}${tail}`;
      const head = this.db.prepare(entries([], ` LIMIT ${k}`)).raw(true).all(...params) as Array<[number, string]>;
      // The first k by text bound the k-th instant; SQL then keeps the few entries that can still make the cut.
      const bound = narrowing(head, k, q.order);
      let picked: number[];
      if (!bound) picked = topByTime(this.db.prepare(entries([])).raw(true).iterate(...params) as IterableIterator<[number, string]>, k, q.order).rowids;
      else {
        // unixepoch() reads every form SQLite knows to the second (a cheap test; the exact sort follows in JS);
        // texts it cannot read pass on to that sort.
        const near = q.order === 'asc'
          ? [`"timestamp" < ?`, `ifnull(unixepoch("timestamp"), -9e15) <= ?`]
          : [`"timestamp" >= ?`, `ifnull(unixepoch("timestamp"), 9e15) >= ?`];
        // The narrowing terms first: they read the index entry alone, so most entries never seek their row.
        const rest = this.db.prepare(entries(near)).raw(true).all(bound.text, q.order === 'asc' ? Math.floor(bound.ms / 1000) + 2 : Math.floor(bound.ms / 1000) - 2, ...params) as Array<[number, string]>;
        const seen = new Set(rest.map((r) => r[0]));
        picked = sortByTime([...rest, ...head.filter((r) => !seen.has(r[0]))], k, q.order);
      }
      picked = picked.slice(offset);
      const fetch = this.db.prepare(`SELECT rowid, ${select} FROM ${this.t} WHERE rowid = ?`).raw(true);
      for (let i = 0; i < picked.length; i += pageSize) {
        signal?.throwIfAborted();
        yield { columns: names, rows: this.withTimes(picked.slice(i, i + pageSize).map((id) => (fetch.get(id) as unknown[]).slice(1)), names.indexOf('__ts_ms')) };
      }
      return;
    }
    const stmt = this.db.prepare(`SELECT ${select} FROM ${this.t} ${whereClause(conds)} ORDER BY ${SORT_SQL[q.sort]} ${dir}, rowid ${dir} LIMIT ${limit} OFFSET ${offset}`).raw(true);
    const tsAt = names.indexOf('__ts_ms');
    let batch: unknown[][] = [];
    for (const row of stmt.iterate(...params) as IterableIterator<unknown[]>) {
      batch.push(row);
      if (batch.length >= pageSize) {
        signal?.throwIfAborted();
        yield { columns: names, rows: this.withTimes(batch, tsAt) };
        batch = [];
      }
    }
    if (batch.length) yield { columns: names, rows: this.withTimes(batch, tsAt) };
  }

  private positionConds(range: { after?: SourcePosition; upTo?: SourcePosition } | undefined, params: unknown[]): string[] {
    const c: string[] = [];
    if (range?.after) { params.push(range.after.value); c.push('rowid > ?'); }
    if (range?.upTo) { params.push(range.upTo.value); c.push('rowid <= ?'); }
    return c;
  }

  async count(filter: Filter, range?: { after?: SourcePosition; upTo?: SourcePosition }): Promise<number> {
    const params: unknown[] = [];
    const conds = [...this.positionConds(range, params), ...filterConditions(this.d, this.schema, filter, params)];
    const r = this.db.prepare(`SELECT count(*) AS n FROM ${this.t} ${whereClause(conds)}`).get(...params) as { n: number };
    return r.n;
  }

  /**
   * A large span is split between two threads (fingerprint-threads.ts): the
   * rows are cut in two parts, a second connection reads the older one while
   * this one reads the rest, and the windows' sums add up. Should the second
   * thread fail, this one reads its part too.
   */
  async fingerprints(filter: Filter, windows: ReadonlyArray<{ start: number; end: number; upTo?: SourcePosition }>, columns: readonly string[], upTo?: SourcePosition, version?: FingerprintVersion): Promise<WindowFingerprint[]> {
    if (!windows.length) return this.fingerprintsHere(filter, windows, columns, upTo, version);
    // Loaded here: `query` and `stats` never fingerprint, and start without it.
    const { fingerprintOnSecondThread, secondThreadShare, warmThreadReady } = await import('./fingerprint-threads.js');
    const share = secondThreadShare(this.rowsAround(Math.min(...windows.map((w) => w.start)), Math.max(...windows.map((w) => w.end))), warmThreadReady());
    if (!share) return this.fingerprintsHere(filter, windows, columns, upTo, version);
    const plan = planSqliteFingerprints(this.db, this.d, this.schema, filter, windows, columns, upTo, version, share);
    if (plan.parts.length < 2) return combineFingerprints(plan, plan.parts.map((st) => runFingerprintStatement(this.db, st)));
    const [older, newer] = plan.parts as [FingerprintStatement, FingerprintStatement];
    const far = fingerprintOnSecondThread({ path: this.path, statement: older }).catch(() => null);
    const near = runFingerprintStatement(this.db, newer);
    return combineFingerprints(plan, [(await far) ?? runFingerprintStatement(this.db, older), near]);
  }

  /** The fingerprints computed on this thread's connection. */
  fingerprintsHere(filter: Filter, windows: ReadonlyArray<{ start: number; end: number; upTo?: SourcePosition }>, columns: readonly string[], upTo?: SourcePosition, version?: FingerprintVersion): WindowFingerprint[] {
    return sqliteFingerprints(this.db, this.d, this.schema, filter, windows, columns, upTo, version);
  }

  /**
   * About how many rows lie in [start, end): the rowids at the two ends of the
   * coarse text range, two seeks in the timestamp index (rows land in rowid
   * order close to their timestamp). 0 without that index.
   */
  private rowsAround(start: number, end: number): number {
    if (!this.timestampIndex) return 0;
    const { from, to } = coarseBounds(start, end);
    const ix = `"${this.timestampIndex.replace(/"/g, '""')}"`;
    const first = from === null ? null : this.db.prepare(`SELECT rowid FROM ${this.t} INDEXED BY ${ix} WHERE "timestamp" >= ? ORDER BY "timestamp" LIMIT 1`).pluck().get(from) as number | undefined;
    const last = to === null ? null : this.db.prepare(`SELECT rowid FROM ${this.t} INDEXED BY ${ix} WHERE "timestamp" < ? ORDER BY "timestamp" DESC LIMIT 1`).pluck().get(to) as number | undefined;
    if (first === undefined || last === undefined) return 0;
    const lo = first ?? 0;
    const hi = last ?? ((this.db.prepare(`SELECT max(rowid) FROM ${this.t}`).pluck().get() as number | null) ?? 0);
    return Math.max(0, hi - lo);
  }

  async aggregate(filter: Filter, spec: AggregateSpec): Promise<Record<string, unknown>[]> {
    const { sql, params, keys } = aggregateSql(this.d, this.schema, filter, spec);
    const rows = this.db.prepare(sql).all(...params) as Record<string, unknown>[];
    return rows.map((r) => shapeAggregateRow(r, keys, spec.metrics));
  }

  /** The SQL a filter turns into, for EXPLAIN QUERY PLAN in tests and --verbose. */
  explain(filter: Filter): string[] {
    const params: unknown[] = [];
    const conds = filterConditions(this.d, this.schema, filter, params);
    const rows = this.db.prepare(`EXPLAIN QUERY PLAN SELECT count(*) FROM ${this.t} ${whereClause(conds)}`).all(...params) as Array<{ detail: string }>;
    return rows.map((r) => r.detail);
  }

  async processingRows(filter: Filter, upTo?: SourcePosition): Promise<ProcessingRows> {
    const params: unknown[] = [];
    const conds = [...this.positionConds({ upTo }, params), ...filterConditions(this.d, this.schema, processingFilter(filter), params)];
    const rowids = this.db.prepare(`SELECT rowid FROM ${this.t} ${whereClause(conds)}`).pluck().all(...params) as number[];
    // In shared memory: the encoding threads read the one copy instead of each receiving its own.
    const positions = new Float64Array(new SharedArrayBuffer(rowids.length * Float64Array.BYTES_PER_ELEMENT));
    positions.set(rowids);
    return { positions: positions.sort() };
  }

  async idsJsonAt(positions: Float64Array): Promise<PendingIds> {
    // In chunks, the positions go in as JSON text and the ids come back as JSON bytes: no array of strings, nor one
    // long string, on the JS heap, nor one large buffer in SQLite (150k ids are 5.8 MB of JSON).
    const stmt = this.db.prepare(`SELECT count(*) AS n, CAST(group_concat(json_quote(id), ',') AS BLOB) AS ids FROM (SELECT id FROM ${this.t} WHERE rowid IN (SELECT value FROM json_each(?)) ORDER BY rowid)`);
    const parts: Buffer[] = [Buffer.from('[')];
    let count = 0;
    for (let i = 0; i < positions.length; i += 16384) {
      const r = stmt.get(`[${Array.prototype.join.call(positions.subarray(i, i + 16384), ',')}]`) as { n: number; ids: Buffer | null };
      if (!r.n || !r.ids) continue;
      if (count) parts.push(Buffer.from(','));
      parts.push(r.ids);
      count += r.n;
    }
    parts.push(Buffer.from(']'));
    return { count, json: Buffer.concat(parts) };
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
