import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { CliError, ExitCode } from '../../errors.js';
import { chError } from './clickhouse-errors.js';
export { chError };
import { groupExpr, normaliseMetric, PERCENTILES, shapeAggregateRow, type Metric } from '../aggregate-sql.js';
import { FINGERPRINT_VERSION, fingerprintScope, stamp } from '../fingerprint.js';
import { filterConditions, processingFilter, whereClause, type Filter } from '../filter.js';
import { missingCoreColumns, physicalColumn, readSelectList, type DetectedSchema } from '../schema.js';
import { excluder, type WindowFingerprint, type FingerprintVersion, type AggregateSpec, type ListQuery, type LogSource, type ProcessingRows, type ReadQuery, type RowPage, type SourcePosition } from '../types.js';
import { CH_STATUS_CODE, CH_TS_MS, chIdent, chQueryParams, createClickHouseDialect } from './clickhouse-dialect.js';
import { tableOf, type LogTableName } from '../log-table.js';

const DEFAULT_PAGE = 10_000;
/** A read's first time slice (see read): an hour, then as long as the rows' density says. */
const SLICE_MS = 3_600_000;

/** Where and how to reach a ClickHouse server over HTTP(S). */
export interface ChConnection {
  /** http(s)://host:port */
  url: string;
  username?: string;
  password?: string;
  database: string;
}

export function describeCh(c: ChConnection): string {
  return `clickhouse ${c.url.replace(/^(https?):\/\//, (_, s: string) => `${s}://${c.username ? `${c.username}@` : ''}`)}/${c.database}`;
}

const NUMERIC = /^(U?Int\d+|Float\d+|Decimal.*)$/;
const bare = (t: string) => t.replace(/^(Nullable|LowCardinality)\((.*)\)$/, '$2').replace(/^(Nullable|LowCardinality)\((.*)\)$/, '$2');

/**
 * Reads Bifrost's ClickHouse log store over HTTP. The table is a
 * ReplacingMergeTree(ver): every read and aggregate goes through FINAL, so
 * each id is seen once, in its latest version; filters apply to that version.
 * `ver` (µs) is the source position: a row whose latest version is newer than
 * a delivery is a changed (late) row.
 */
export class ClickHouseSource implements LogSource {
  readonly dialect = 'clickhouse' as const;
  readonly description: string;
  readonly schema: DetectedSchema;
  private readonly client: ClickHouseClient;
  private readonly d = createClickHouseDialect();
  private get table(): string { return tableOf(this.schema); }

  private constructor(client: ClickHouseClient, description: string, schema: DetectedSchema) {
    this.client = client;
    this.description = description;
    this.schema = schema;
  }

  static async open(conn: ChConnection, table: LogTableName = 'logs'): Promise<ClickHouseSource> {
    const where = describeCh(conn);
    const client = createClient({
      url: conn.url,
      username: conn.username ?? 'default',
      password: conn.password ?? '',
      database: conn.database,
      application: 'bifrost-logs',
      request_timeout: 300_000,
      log: { level: ClickHouseLogLevel.OFF },
    });
    try {
      const rs = await client.query({
        query: 'SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {t:String} ORDER BY position',
        query_params: { t: table },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ name: string; type: string }>();
      if (!rows.length) {
        throw new CliError('open the log DB', `${where} is not a Bifrost log store (database "${conn.database}" has no "${table}" table)`, { exitCode: ExitCode.noInput, hint: 'check the database name' });
      }
      const types = new Map(rows.map((c) => [c.name, c.type]));
      const columns = new Set(types.keys());
      const missing = missingCoreColumns(columns, table);
      if (missing.length) {
        throw new CliError('open the log DB', `${where} is not a Bifrost log store (table "${table}" lacks ${missing.join(', ')})`, { exitCode: ExitCode.noInput });
      }
      if (!columns.has('ver')) {
        throw new CliError('open the log DB', `${where}: table "${table}" has no "ver" column (not Bifrost's ReplacingMergeTree(ver) table)`, { exitCode: ExitCode.noInput });
      }
      // The table must be readable, not only described.
      await (await client.query({ query: `SELECT 1 FROM ${chIdent(table)} FINAL LIMIT 1`, format: 'JSONEachRow' })).json();
      return new ClickHouseSource(client, where, { columns, types, hasIncNumber: false, table });
    } catch (err) {
      await client.close().catch(() => {});
      throw chError('open the log DB', err, where);
    }
  }

  private colExpr(name: string): string {
    const p = physicalColumn(this.schema, name);
    if (!p) return 'NULL';
    const t = bare(this.schema.types.get(p) ?? 'String');
    const q = chIdent(p);
    if (NUMERIC.test(t)) return `toFloat64(${q})`;
    if (t.startsWith('DateTime')) return `toFloat64(toUnixTimestamp64Milli(toDateTime64(${q}, 3)))`;
    return q;
  }

  private selectList(columns: readonly string[]): { sql: string; names: string[] } {
    return readSelectList(columns, (c) => this.colExpr(c), {
      tsMs: CH_TS_MS, statusCode: CH_STATUS_CODE, position: 'toFloat64(toUnixTimestamp64Micro(`ver`))',
      passthroughParams: this.table === 'logs' ? "if(`object_type` = 'passthrough', `params`, NULL)" : 'NULL',
    });
  }


  private positionConds(range: { after?: SourcePosition; upTo?: SourcePosition } | undefined, params: unknown[]): string[] {
    const c: string[] = [];
    const ver = 'toUnixTimestamp64Micro(`ver`)';
    if (range?.after && range.after.kind === 'ver') c.push(`${ver} > ${this.d.param(params, range.after.value)}`);
    if (range?.upTo && range.upTo.kind === 'ver') c.push(`${ver} <= ${this.d.param(params, range.upTo.value)}`);
    return c;
  }

  /** A numeric column as Float64, or NULL where the table has none (mcp_tool_logs has no tokens). */
  private num(c: string): string {
    return physicalColumn(this.schema, c) ? `toFloat64(${chIdent(c)})` : 'CAST(NULL AS Nullable(Float64))';
  }

  private from(): string {
    return `${chIdent(this.table)} FINAL`;
  }

  private async rows<T>(sql: string, params: unknown[], format: 'JSONEachRow' | 'JSONCompactEachRow' = 'JSONEachRow', signal?: AbortSignal): Promise<T[]> {
    try {
      const rs = await this.client.query({ query: sql, query_params: chQueryParams(params), format, abort_signal: signal });
      return await rs.json<T>();
    } catch (err) {
      throw chError('read the log DB', err, this.description);
    }
  }

  async position(): Promise<SourcePosition> {
    const r = await this.rows<{ m: number | null }>(`SELECT if(count() = 0, NULL, toFloat64(toUnixTimestamp64Micro(max(\`ver\`)))) AS m FROM ${chIdent(this.table)}`, []);
    return { kind: 'ver', value: r[0]?.m ?? 0 };
  }

  /**
   * Keyset pages by (timestamp, id), the table's sorting key, each bounded by
   * a time slice too: with FINAL, `ORDER BY … LIMIT` reads on past the page
   * (a page cost more the more rows followed it, so a read was quadratic), and
   * a slice keeps each query to about a page of rows. A query that fills its
   * page continues after its last row within the same slice; one that does not
   * has read its whole slice, and the next slice starts where it ended. The
   * slice's length follows the rows' density (the time a full page covered;
   * doubled after a slice with under half a page).
   */
  async *read(q: ReadQuery, signal?: AbortSignal): AsyncIterable<RowPage> {
    const { sql: select, names } = this.selectList(q.columns);
    const upTo = q.upTo ?? (await this.position());
    const pageSize = q.pageSize ?? DEFAULT_PAGE;
    const skip = excluder(q, names);
    const tsAt = names.indexOf('__ts_ms');
    let idAt = names.indexOf('id');
    const extra = idAt < 0 ? ', `id`' : '';
    if (idAt < 0) idAt = names.length;
    const span = await this.timeSpan(q.filter);
    if (!span) return;
    let from = span.lo;
    let last: { ts: number; id: string } | null = null;
    let slice = SLICE_MS;
    for (;;) {
      signal?.throwIfAborted();
      const at = last ? last.ts : from;
      const end = Math.min(span.hi, at + slice);
      const params: unknown[] = [];
      const conds = [...this.positionConds({ after: q.after, upTo }, params), ...filterConditions(this.d, this.schema, q.filter, params)];
      const ms = (v: number) => `fromUnixTimestamp64Milli(toInt64(${this.d.param(params, v)}))`;
      if (last) {
        // (timestamp, id) > (T, I), spelt as a bound on the sorting key's first column and a tie-break.
        const t = ms(last.ts);
        conds.push(`\`timestamp\` >= ${t} AND (\`timestamp\` > ${t} OR \`id\` > ${this.d.param(params, last.id)})`);
      } else {
        conds.push(`\`timestamp\` >= ${ms(from)}`);
      }
      conds.push(`\`timestamp\` < ${ms(end)}`);
      const rows = await this.rows<unknown[]>(`SELECT ${select}${extra} FROM ${this.from()} ${whereClause(conds)} ORDER BY \`timestamp\`, \`id\` LIMIT ${pageSize}`, params, 'JSONCompactEachRow', signal);
      const full = rows.length === pageSize;
      if (full) {
        const tail = rows[rows.length - 1]!;
        const ts = tail[tsAt] as number;
        // The time this page covered is about the time the next page needs.
        slice = Math.max(1, ts - at);
        last = { ts, id: tail[idAt] as string };
      } else {
        if (rows.length < pageSize / 2) slice *= 2;
        from = end;
        last = null;
      }
      if (extra) for (const r of rows) r.length = names.length;
      const out = skip ? skip(rows) : rows;
      if (out.length) yield { columns: names, rows: out };
      if (!full && end >= span.hi) break;
    }
  }

  /**
   * The read's time range in ms: the filter's bounds, else the table's first
   * and last timestamp (every version of a row has the same one: it is part of
   * the sorting key). Null when there is nothing to read.
   */
  private async timeSpan(filter: Filter): Promise<{ lo: number; hi: number } | null> {
    let lo = filter.start;
    let hi = filter.end;
    if (lo === undefined || hi === undefined) {
      const r = await this.rows<{ lo: number | null; hi: number | null }>(`SELECT if(count() = 0, NULL, toFloat64(toUnixTimestamp64Milli(min(\`timestamp\`)))) AS lo, if(count() = 0, NULL, toFloat64(toUnixTimestamp64Milli(max(\`timestamp\`)))) AS hi FROM ${chIdent(this.table)}`, []);
      if (r[0]?.lo == null || r[0]?.hi == null) return null;
      lo ??= r[0].lo;
      hi ??= r[0].hi + 1;
    }
    lo = Math.floor(lo);
    hi = Math.ceil(hi);
    return hi > lo ? { lo, hi } : null;
  }

  async *list(q: ListQuery, signal?: AbortSignal): AsyncIterable<RowPage> {
    const { sql: select, names } = this.selectList(q.columns);
    const params: unknown[] = [];
    const conds = filterConditions(this.d, this.schema, q.filter, params);
    const dir = q.order === 'asc' ? 'ASC' : 'DESC';
    const sortSql: Record<ListQuery['sort'], string> = {
      timestamp: '`timestamp`',
      latency: '`latency`',
      tokens: '`total_tokens`',
      cost: physicalColumn(this.schema, 'cost') ? 'ifNull(`cost`, 0)' : '0',
    };
    const limit = q.limit !== undefined ? ` LIMIT ${Math.floor(q.limit)}` : '';
    const offset = q.offset ? ` OFFSET ${Math.floor(q.offset)}` : '';
    const sql = `SELECT ${select} FROM ${this.from()} ${whereClause(conds)} ORDER BY ${sortSql[q.sort]} ${dir} NULLS LAST, \`id\` ${dir}${limit}${offset}`;
    let rs;
    try {
      rs = await this.client.query({ query: sql, query_params: chQueryParams(params), format: 'JSONCompactEachRow', abort_signal: signal });
    } catch (err) {
      throw chError('read the log DB', err, this.description);
    }
    const pageSize = q.pageSize ?? 1000;
    let page: unknown[][] = [];
    try {
      for await (const batch of rs.stream<unknown[]>()) {
        for (const row of batch) {
          page.push(row.json<unknown[]>());
          if (page.length >= pageSize) { yield { columns: names, rows: page }; page = []; }
        }
      }
    } catch (err) {
      throw chError('read the log DB', err, this.description);
    }
    if (page.length) yield { columns: names, rows: page };
  }

  async count(filter: Filter, range?: { after?: SourcePosition; upTo?: SourcePosition }): Promise<number> {
    const params: unknown[] = [];
    const conds = [...this.positionConds(range, params), ...filterConditions(this.d, this.schema, filter, params)];
    const r = await this.rows<{ n: string }>(`SELECT count() AS n FROM ${this.from()} ${whereClause(conds)}`, params);
    return Number(r[0]!.n);
  }

  /**
   * Per-window fingerprints over the latest version of each row, in one grouped statement: count, cost,
   * tokens and the sum (mod 2^48) of a 48-bit hash of each row's exported columns.
   */
  async fingerprints(filter: Filter, windows: ReadonlyArray<{ start: number; end: number; upTo?: SourcePosition }>, columns: readonly string[], upTo?: SourcePosition, version: FingerprintVersion = FINGERPRINT_VERSION): Promise<WindowFingerprint[]> {
    if (!windows.length) return [];
    const { cols, filter: span, cost, tokens, scope } = fingerprintScope(this.schema, filter, windows, columns, version);
    const params: unknown[] = [];
    const conds = [...this.positionConds({ upTo }, params), ...filterConditions(this.d, this.schema, span, params)];
    const inner = `SELECT ${CH_TS_MS} AS t, toUnixTimestamp64Micro(\`ver\`) AS p, ${cost ? `toFloat64(${chIdent(cost)})` : '0'} AS c, ${tokens ? `toFloat64(${chIdent(tokens)})` : '0'} AS k, ` +
      `bitAnd(cityHash64(tuple(${cols.map(chIdent).join(', ')})), 281474976710655) AS h FROM ${this.from()} ${whereClause(conds)}`;
    const bucket = windows.map((w, i) => `t >= ${Math.trunc(w.start)} AND t < ${Math.trunc(w.end)}${w.upTo && w.upTo.kind === 'ver' ? ` AND p <= ${Math.trunc(w.upTo.value)}` : ''}, ${i}`).join(', ');
    const r = await this.rows<{ b: number; n: string; c: number | null; k: number | null; h: string }>(
      `SELECT b, count() AS n, sum(c) AS c, sum(k) AS k, toString(sum(h) % 281474976710656) AS h FROM (SELECT multiIf(${bucket}, -1) AS b, c, k, h FROM (${inner})) WHERE b >= 0 GROUP BY b`, params);
    const out: WindowFingerprint[] = windows.map(() => stamp({ rows: 0, cost: 0, tokens: 0, hash: 0 }, version, scope));
    for (const row of r) out[Number(row.b)] = stamp({ rows: Number(row.n), cost: Number(row.c ?? 0), tokens: Number(row.k ?? 0), hash: Number(row.h) }, version, scope);
    return out;
  }

  /**
   * The metrics in one grouped statement over the latest version of each row.
   * Percentiles are quantileExactInclusive: exact, interpolated linearly
   * between the closest ranks, as Postgres' percentile_cont.
   */
  async aggregate(filter: Filter, spec: AggregateSpec): Promise<Record<string, unknown>[]> {
    const params: unknown[] = [];
    const keys = [...spec.groupBy];
    const kexprs = keys.map((k) => groupExpr(this.d, this.schema, k, spec.timezone, params));
    const conds = filterConditions(this.d, this.schema, filter, params);
    const costCol = physicalColumn(this.schema, 'cost') ? 'ifNull(`cost`, 0)' : '0';
    const base = `SELECT ${[...kexprs.map((e, i) => `${e} AS k${i}`), '`status` AS st', 'toFloat64(`latency`) AS lat', `${this.num('total_tokens')} AS tt`,
      `${this.num('prompt_tokens')} AS pt`, `${this.num('completion_tokens')} AS ct`, `toFloat64(${costCol}) AS cost`].join(', ')} FROM ${this.from()} ${whereClause(conds)}`;
    // Bifrost's GetStats: completed rows are success, error and cancelled; rates and average latency are 0 when none are.
    const done = `st IN ('success', 'error', 'cancelled')`;
    const completed = `countIf(${done})`;
    const succ = `countIf(st = 'success')`;
    const err = `countIf(st = 'error')`;
    const canc = `countIf(st = 'cancelled')`;
    const rate = (n: string) => `if(${completed} > 0, 100.0 * ${n} / ${completed}, 0)`;
    const totalCost = `ifNull(sum(if(${done}, cost, NULL)), 0)`;
    const m: Record<Metric, string> = {
      count: 'count()',
      total_requests: 'count()',
      success_count: succ,
      error_count: err,
      cancelled_count: canc,
      success_rate: rate(succ),
      error_rate: rate(err),
      cancelled_rate: rate(canc),
      avg_latency: `ifNull(avg(if(${done}, lat, NULL)), 0)`,
      max_latency: `max(if(${done}, lat, NULL))`,
      total_tokens: `ifNull(sum(if(${done}, tt, NULL)), 0)`,
      input_tokens: `ifNull(sum(if(${done}, pt, NULL)), 0)`,
      output_tokens: `ifNull(sum(if(${done}, ct, NULL)), 0)`,
      total_cost: totalCost,
      avg_cost: `if(${completed} > 0, ${totalCost} / ${completed}, NULL)`,
      p50_latency: '', p95_latency: '', p99_latency: '',
    };
    const metrics = spec.metrics.map(normaliseMetric);
    const cols = [...keys.map((_, i) => `k${i}`), ...[...new Set(metrics)].map((x) => {
      const p = PERCENTILES[x];
      return `${p !== undefined ? `quantileExactInclusive(${p})(if(${done}, lat, NULL))` : m[x]} AS ${x}`;
    })];
    const k = keys.map((_, i) => `k${i}`);
    const sql = `SELECT ${cols.join(', ')} FROM (${base})${k.length ? ` GROUP BY ${k.join(', ')} ORDER BY ${k.join(', ')}` : ''}`;
    const rows = await this.rows<Record<string, unknown>>(sql, params);
    return rows.map((row) => shapeAggregateRow(row, keys, spec.metrics));
  }

  async processingRows(filter: Filter, upTo?: SourcePosition): Promise<ProcessingRows> {
    const params: unknown[] = [];
    const conds = [...this.positionConds({ upTo }, params), ...filterConditions(this.d, this.schema, processingFilter(filter), params)];
    const r = await this.rows<{ id: string }>(`SELECT \`id\` FROM ${this.from()} ${whereClause(conds)}`, params);
    return { ids: r.map((x) => x.id) };
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => {});
  }
}
