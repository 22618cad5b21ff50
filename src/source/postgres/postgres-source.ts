import { pgDeadlines } from '../../util/pg-timeouts.js';
import pg from 'pg';
import { CliError, ExitCode, isUnreachable } from '../../errors.js';
import { aggregateSql, shapeAggregateRow } from '../aggregate-sql.js';
import { FINGERPRINT_VERSION, fingerprintScope, stamp } from '../fingerprint.js';
import { filterConditions, processingFilter, whereClause, type Filter } from '../filter.js';
import { missingCoreColumns, physicalColumn, readSelectList, type DetectedSchema } from '../schema.js';
import { excluder, type WindowFingerprint, type FingerprintVersion, type AggregateSpec, type ProcessingRows, type ListQuery, type LogSource, type ReadQuery, type RowPage, type SourcePosition } from '../types.js';
import { createPostgresDialect, pgEpochMs, PG_STATUS_CODE, PG_TS_MS } from './postgres-dialect.js';
import { tableOf, type LogTableName } from '../log-table.js';

const DEFAULT_PAGE = 5000;
/** Columns read as float8: integers of any width (int8 would arrive as text), and floats. */
const NUMERIC = /^(bigint|integer|smallint|real|double precision)$/;
/** numeric columns: read as their text and parsed here (see READ_TYPES). */
const DECIMAL = /^(numeric|decimal)$/;
/**
 * The row pages' type parsers: numeric arrives as its text (numeric_out) and
 * is parsed here, correctly rounded as the server's numeric::float8 (which
 * goes through the same text and strtod) would, sparing the server a cast
 * per value (~0.1 s per million rows and column).
 */
const READ_TYPES = { getTypeParser: (oid: number, format?: string) => (oid === pg.types.builtins.NUMERIC ? parseFloat : pg.types.getTypeParser(oid, format as 'text')) };
const SORT_SQL: Record<ListQuery['sort'], string> = {
  timestamp: '"timestamp"',
  latency: '"latency"',
  tokens: '"total_tokens"',
  cost: 'COALESCE("cost", 0)',
};

/** Removes the password from a connection string before it is shown anywhere. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:\/\/([^:@/]+):[^@/]*@/, '://$1:***@');
  }
}

export type PgConnection = string | pg.ClientConfig;

function describe(conn: PgConnection): string {
  if (typeof conn === 'string') return redactUrl(conn);
  return `postgres://${conn.user ?? ''}@${conn.host ?? 'localhost'}:${conn.port ?? 5432}/${conn.database ?? ''}`;
}

export function pgConnectError(action: string, err: unknown, where: string): CliError {
  const e = err as { code?: string; message?: string };
  const why = `${where}: ${e.message ?? String(err)}`;
  if (e.code === '28P01' || e.code === '28000') return new CliError(action, why, { exitCode: ExitCode.config, hint: 'check the user name and password', cause: err });
  if (e.code === '3D000') return new CliError(action, why, { exitCode: ExitCode.noInput, hint: 'check the database name', cause: err });
  if (isUnreachable(err) || /timeout|terminated|ECONN/i.test(e.message ?? '')) return new CliError(action, why, { exitCode: ExitCode.unavailable, hint: 'is the server running and reachable from here?', cause: err });
  return new CliError(action, why, { exitCode: ExitCode.unavailable, cause: err });
}

/**
 * Reads Bifrost's Postgres log store through server-side cursors in a
 * read-only session. numeric/bigint come back as float8 so no row parses strings.
 */
export class PostgresSource implements LogSource {
  readonly dialect = 'postgres' as const;
  readonly description: string;
  readonly schema: DetectedSchema;
  private readonly client: pg.Client;
  private readonly d = createPostgresDialect();
  /** The log table, quoted. */
  private get t(): string { return `"${tableOf(this.schema)}"`; }

  private constructor(client: pg.Client, description: string, schema: DetectedSchema) {
    this.client = client;
    this.description = description;
    this.schema = schema;
  }

  static async open(conn: PgConnection, requestTimeoutSecs?: number, table: LogTableName = 'logs'): Promise<PostgresSource> {
    const where = describe(conn);
    const config: pg.ClientConfig = typeof conn === 'string' ? { connectionString: conn } : { ...conn };
    // Reads are short pages and aggregates; no statement may go unanswered for longer than 30 minutes.
    const client = new pg.Client({ ...config, application_name: 'bifrost-logs', ...pgDeadlines(requestTimeoutSecs, 30 * 60_000) });
    client.on('error', () => { /* reported by the pending query */ });
    try {
      await client.connect();
    } catch (err) {
      throw pgConnectError('connect to the log DB', err, where);
    }
    try {
      await client.query('SET default_transaction_read_only = on');
      const v = await client.query<{ num: string; ver: string }>(`SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS ver`);
      const num = Number(v.rows[0]?.num ?? 0);
      if (num > 0 && num < 160000) {
        throw new CliError('open the log DB', `${where} runs PostgreSQL ${v.rows[0]!.ver}; Bifrost's log store needs PostgreSQL 16 or newer`, { exitCode: ExitCode.noInput });
      }
      const r = await client.query<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 AND table_schema = ANY(current_schemas(false))`, [table],
      );
      if (!r.rows.length) {
        throw new CliError('open the log DB', `${where} is not a Bifrost log DB (it has no "${table}" table)`, { exitCode: ExitCode.noInput });
      }
      const types = new Map(r.rows.map((c) => [c.column_name, c.data_type]));
      const columns = new Set(types.keys());
      const missing = missingCoreColumns(columns, table);
      if (missing.length) {
        throw new CliError('open the log DB', `${where} is not a Bifrost log DB (table "${table}" lacks ${missing.join(', ')})`, { exitCode: ExitCode.noInput });
      }
      return new PostgresSource(client, where, { columns, types, hasIncNumber: columns.has('inc_number'), table });
    } catch (err) {
      await client.end().catch(() => {});
      if (err instanceof CliError) throw err;
      throw pgConnectError('open the log DB', err, where);
    }
  }

  private colExpr(name: string): string {
    const p = physicalColumn(this.schema, name);
    if (!p) return 'NULL';
    const t = this.schema.types.get(p) ?? 'text';
    const q = `"${p}"`;
    if (NUMERIC.test(t)) return `${q}::float8`;
    if (DECIMAL.test(t)) return q;
    if (t === 'json' || t === 'jsonb') return `${q}::text`;
    if (t.startsWith('timestamp')) return pgEpochMs(q);
    return q;
  }

  private selectList(columns: readonly string[]): { sql: string; names: string[] } {
    return readSelectList(columns, (c) => this.colExpr(c), {
      tsMs: PG_TS_MS, statusCode: PG_STATUS_CODE, position: this.schema.hasIncNumber ? '"inc_number"::float8' : 'NULL',
      passthroughParams: tableOf(this.schema) === 'logs' ? `CASE WHEN "object_type" = 'passthrough' THEN "params"::text END` : 'NULL',
    });
  }


  private positionConds(range: { after?: SourcePosition; upTo?: SourcePosition } | undefined, params: unknown[]): string[] {
    const c: string[] = [];
    if (!this.schema.hasIncNumber) return c;
    if (range?.after && range.after.kind === 'inc_number') { params.push(range.after.value); c.push(`"inc_number" > $${params.length}`); }
    // Rows written before Bifrost added inc_number keep a NULL there: they are older than any
    // position, so every read up to a position includes them, and none after one does.
    if (range?.upTo && range.upTo.kind === 'inc_number') { params.push(range.upTo.value); c.push(`("inc_number" <= $${params.length} OR "inc_number" IS NULL)`); }
    return c;
  }

  private async q<T extends pg.QueryResultRow>(sql: string, params: unknown[], rowMode?: 'array'): Promise<pg.QueryResult<T>> {
    try {
      if (rowMode) return (await this.client.query({ text: sql, values: params, rowMode: 'array', types: READ_TYPES } as pg.QueryArrayConfig)) as unknown as pg.QueryResult<T>;
      return await this.client.query<T>(sql, params);
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw pgConnectError('read the log DB', err, this.description);
    }
  }

  async position(): Promise<SourcePosition> {
    if (!this.schema.hasIncNumber) return { kind: 'none', value: 0 };
    const r = await this.q<{ m: number | null }>(`SELECT max("inc_number")::float8 AS m FROM ${this.t}`, []);
    return { kind: 'inc_number', value: r.rows[0]?.m ?? 0 };
  }

  /**
   * Streams a query through a server-side cursor in one read-only snapshot:
   * one plan and one pass with bounded memory, whatever the table's size.
   * (Keyset pages re-plan every page, and a poor plan costs a scan per page.)
   */
  private async *cursorPages(sql: string, params: unknown[], names: string[], pageSize: number, signal?: AbortSignal): AsyncIterable<RowPage> {
    await this.q('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', []);
    try {
      await this.q(`DECLARE bl_cursor NO SCROLL CURSOR FOR ${sql}`, params);
      const fetch = () => {
        const p = this.q<unknown[] & pg.QueryResultRow>(`FETCH ${pageSize} FROM bl_cursor`, [], 'array');
        p.catch(() => { /* awaited below, or abandoned with the cursor */ });
        return p;
      };
      // One page ahead: the server produces the next page while this one is mapped and written, instead of
      // each side waiting for the other (one page at a time left the reader idle over half the time).
      let next = fetch();
      for (;;) {
        signal?.throwIfAborted();
        const r = await next;
        if (!r.rows.length) break;
        const more = r.rows.length === pageSize;
        if (more) next = fetch();
        yield { columns: names, rows: r.rows as unknown[][] };
        if (!more) break;
      }
    } finally {
      await this.client.query('ROLLBACK').catch(() => {});
    }
  }

  async *read(q: ReadQuery, signal?: AbortSignal): AsyncIterable<RowPage> {
    const { sql: select, names } = this.selectList(q.columns);
    const upTo = q.upTo ?? (await this.position());
    const params: unknown[] = [];
    const conds = [...this.positionConds({ after: q.after, upTo }, params), ...filterConditions(this.d, this.schema, q.filter, params)];
    // Excluded ids (rows processing when the export began; DBs without inc_number) are left out by the server:
    // `<> ALL` of an array is hashed there (Postgres 15+), where a JS Set looked up every row's id (~0.5 s of
    // this thread per 1M rows).
    const ids = q.exclude?.positions?.length ? undefined : q.exclude?.ids;
    if (ids?.length) { params.push(ids); conds.push(`"id" <> ALL($${params.length}::text[])`); }
    const pages = this.cursorPages(`SELECT ${select} FROM ${this.t} ${whereClause(conds)} ORDER BY "timestamp", "id"`, params, names, q.pageSize ?? DEFAULT_PAGE, signal);
    const skip = ids?.length ? null : excluder(q, names);
    if (!skip) return yield* pages;
    for await (const p of pages) {
      const rows = skip(p.rows);
      if (rows.length) yield { columns: p.columns, rows };
    }
  }

  async *list(q: ListQuery, signal?: AbortSignal): AsyncIterable<RowPage> {
    const { sql: select, names } = this.selectList(q.columns);
    const params: unknown[] = [];
    const conds = filterConditions(this.d, this.schema, q.filter, params);
    const dir = q.order === 'asc' ? 'ASC' : 'DESC';
    const limit = q.limit !== undefined ? ` LIMIT ${q.limit}` : '';
    const offset = q.offset ? ` OFFSET ${q.offset}` : '';
    const sql = `SELECT ${select} FROM ${this.t} ${whereClause(conds)} ORDER BY ${SORT_SQL[q.sort]} ${dir} NULLS LAST, "id" ${dir}${limit}${offset}`;
    yield* this.cursorPages(sql, params, names, q.pageSize ?? 1000, signal);
  }

  async count(filter: Filter, range?: { after?: SourcePosition; upTo?: SourcePosition }): Promise<number> {
    const params: unknown[] = [];
    const conds = [...this.positionConds(range, params), ...filterConditions(this.d, this.schema, filter, params)];
    const r = await this.q<{ n: string }>(`SELECT count(*) AS n FROM ${this.t} ${whereClause(conds)}`, params);
    return Number(r.rows[0]!.n);
  }

  async fingerprints(filter: Filter, windows: ReadonlyArray<{ start: number; end: number; upTo?: SourcePosition }>, columns: readonly string[], upTo?: SourcePosition, version: FingerprintVersion = FINGERPRINT_VERSION): Promise<WindowFingerprint[]> {
    if (!windows.length) return [];
    const { cols, filter: span, cost, tokens, scope } = fingerprintScope(this.schema, filter, windows, columns, version);
    const params: unknown[] = [];
    const conds = [...this.positionConds({ upTo }, params), ...filterConditions(this.d, this.schema, span, params)];
    // Each value as text, NULL marked apart from '' (row_to_json-like, without building JSON).
    const text = cols.map((c) => `coalesce("${c}"::text, E'\\\\N')`).join(` || E'\\x1f' || `);
    const inner = `SELECT ${PG_TS_MS} AS t, ${this.schema.hasIncNumber ? '"inc_number"' : 'NULL::bigint'} AS p, ${cost ? `"${cost}"::float8` : '0'} AS c, ${tokens ? `"${tokens}"::float8` : '0'} AS k, ('x' || left(md5(${text}), 12))::bit(48)::bigint AS h FROM ${this.t} ${whereClause(conds)}`;
    const bucket = windows.map((w, i) => `WHEN t >= ${Math.trunc(w.start)} AND t < ${Math.trunc(w.end)}${this.schema.hasIncNumber && w.upTo && w.upTo.kind === 'inc_number' ? ` AND (p IS NULL OR p <= ${Math.trunc(w.upTo.value)})` : ''} THEN ${i}`).join(' ');
    const r = await this.q<{ b: number; n: string; c: number | null; k: number | null; h: string | null }>(`SELECT b, count(*) AS n, sum(c) AS c, sum(k) AS k, (sum(h) % 281474976710656)::text AS h FROM (SELECT CASE ${bucket} END AS b, c, k, h FROM (${inner}) x) y WHERE b IS NOT NULL GROUP BY b`, params);
    const out: WindowFingerprint[] = windows.map(() => stamp({ rows: 0, cost: 0, tokens: 0, hash: 0 }, version, scope));
    for (const row of r.rows) out[row.b] = stamp({ rows: Number(row.n), cost: Number(row.c ?? 0), tokens: Number(row.k ?? 0), hash: Number(row.h ?? 0) }, version, scope);
    return out;
  }

  async aggregate(filter: Filter, spec: AggregateSpec): Promise<Record<string, unknown>[]> {
    const { sql, params, keys } = aggregateSql(this.d, this.schema, filter, spec);
    const r = await this.q<Record<string, unknown>>(sql, params);
    return r.rows.map((row) => shapeAggregateRow(row, keys, spec.metrics));
  }

  async processingRows(filter: Filter, upTo?: SourcePosition): Promise<ProcessingRows> {
    const params: unknown[] = [];
    const conds = [...this.positionConds({ upTo }, params), ...filterConditions(this.d, this.schema, processingFilter(filter), params)];
    const r = await this.q<{ id: string }>(`SELECT "id" FROM ${this.t} ${whereClause(conds)}`, params);
    return { ids: r.rows.map((x) => x.id) };
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}
