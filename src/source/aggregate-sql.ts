import { CliError, ExitCode } from '../errors.js';
import { allRoutes } from './endpoint.js';
import { LEGACY_OBJECT_TYPES, physicalColumn, type DetectedSchema } from './schema.js';
import { filterConditions, whereClause, type Dialect, type Filter } from './filter.js';
import type { AggregateSpec } from './types.js';
import { tableOf } from './log-table.js';
import { MCP_GROUPABLE_FIELDS, mcpGroupExpr } from './mcp-groups.js';

export const TIME_BUCKETS = ['hour', 'date', 'week', 'month'] as const;
export type TimeBucket = (typeof TIME_BUCKETS)[number];

export const METRICS = [
  'count', 'total_requests', 'success_count', 'error_count', 'cancelled_count', 'error_rate', 'success_rate', 'cancelled_rate', 'avg_latency',
  'p50_latency', 'p95_latency', 'p99_latency', 'max_latency', 'total_tokens', 'input_tokens', 'output_tokens',
  'total_cost', 'avg_cost',
] as const;
export type Metric = (typeof METRICS)[number];

/** Bifrost's own stats names, accepted as metric aliases. */
export const METRIC_ALIASES: Record<string, Metric> = { average_latency: 'avg_latency', calls: 'count' };

/** Record fields that can be grouped on (plain columns or SQL-derived). */
export const GROUPABLE_FIELDS = [
  'provider', 'model', 'customer_id', 'customer_name', 'status', 'status_code', 'endpoint', 'method', 'request_type',
  'object_type', 'virtual_key_id', 'virtual_key_name', 'team_id', 'team_name', 'user_id', 'user_name',
  'selected_key_id', 'selected_key_name', 'routing_rule_name', 'stop_reason', 'cache_hit_type',
] as const;

/** Dialect hooks the aggregation needs beyond filtering. */
export interface AggregateDialect extends Dialect {
  /** Local-time bucket label of `timestamp` in `zone`. */
  bucket(kind: TimeBucket, zone: string, params: unknown[]): string;
  /** Text value of a top-level key of a JSON column, NULL when invalid. */
  jsonText(column: string, key: string): string;
  /** Null-safe equality for joining group keys. */
  nullSafeEq(a: string, b: string): string;
  /** Exact floating-point cast. */
  readonly float: string;
  /** An aggregate equal to PostgreSQL's `percentile_cont(p)` over the non-null values of `expr`. */
  percentile(p: number, expr: string): string;
  /**
   * The mean of the non-null values of `expr` as a float, the same whatever
   * order the rows are added in (absent: AVG of the float cast, which a store
   * that adds them in one pass gives the same way every time).
   */
  mean?(expr: string): string;
}

export const PERCENTILES: Partial<Record<Metric, number>> = { p50_latency: 0.5, p95_latency: 0.95, p99_latency: 0.99 };

export function groupExpr(d: AggregateDialect, schema: DetectedSchema, field: string, zone: string, params: unknown[]): string {
  if ((TIME_BUCKETS as readonly string[]).includes(field)) return d.bucket(field as TimeBucket, zone, params);
  if (tableOf(schema) === 'mcp_tool_logs') return mcpGroupExpr(d, schema, field, [...MCP_GROUPABLE_FIELDS, ...TIME_BUCKETS]);
  const column = (c: string) => {
    const p = physicalColumn(schema, c);
    return p ? d.ident(p) : 'NULL';
  };
  const ot = d.ident('object_type');
  switch (field) {
    case 'status_code': return d.statusCode;
    case 'request_type': {
      const legacy = Object.entries(LEGACY_OBJECT_TYPES).map(([l, m]) => `WHEN '${l}' THEN '${m}'`).join(' ');
      return `CASE ${ot} ${legacy} ELSE ${ot} END`;
    }
    case 'endpoint':
    case 'method': {
      const routes = allRoutes().map(([t, e, m]) => `WHEN '${t}' THEN '${field === 'endpoint' ? e : m}'`).join(' ');
      const pass = field === 'endpoint' ? d.jsonText('params', 'path') : `COALESCE(UPPER(${d.jsonText('params', 'method')}), 'POST')`;
      const other = field === 'endpoint' ? 'NULL' : `'POST'`;
      return `CASE WHEN ${ot} = 'passthrough' THEN ${pass} ELSE CASE ${ot} ${routes} ELSE ${other} END END`;
    }
    case 'cache_hit_type': return physicalColumn(schema, 'cache_debug') ? d.jsonText('cache_debug', 'hit_type') : 'NULL';
    default:
      if ((GROUPABLE_FIELDS as readonly string[]).includes(field)) return column(field);
      throw new CliError('aggregate', `cannot group by "${field}"`, {
        exitCode: ExitCode.usage,
        hint: `group by one of: ${[...GROUPABLE_FIELDS, ...TIME_BUCKETS].join(', ')}`,
      });
  }
}

export function normaliseMetric(m: string): Metric {
  const v = METRIC_ALIASES[m] ?? m;
  if (!(METRICS as readonly string[]).includes(v)) {
    throw new CliError('aggregate', `unknown metric "${m}"`, { exitCode: ExitCode.usage, hint: `metrics: ${METRICS.join(', ')}` });
  }
  return v as Metric;
}

/**
 * One SQL statement computing the grouped metrics with Bifrost's definitions
 * (GetStats): counts include every row under the filter; rates, latency,
 * tokens and cost use completed rows (success + error + cancelled); a NULL
 * cost adds 0 to total_cost; Bifrost's own metrics (rates, average latency,
 * totals) give 0, not null, when no row is completed. Percentiles are exact,
 * interpolated linearly between the closest ranks (percentile_cont).
 */
export function aggregateSql(d: AggregateDialect, schema: DetectedSchema, filter: Filter, spec: AggregateSpec, extraConds: string[] = [], extraParams: unknown[] = []): { sql: string; params: unknown[]; keys: string[] } {
  const params: unknown[] = [...extraParams];
  const keys = [...spec.groupBy];
  const kexprs = keys.map((k) => groupExpr(d, schema, k, spec.timezone, params));
  const conds = [...extraConds, ...filterConditions(d, schema, filter, params)];
  const st = d.ident('status');
  const lat = d.ident('latency');
  const costCol = physicalColumn(schema, 'cost') ? `COALESCE(${d.ident('cost')}, 0)` : '0';
  const k = keys.map((_, i) => `k${i}`);
  const num = (c: string) => (physicalColumn(schema, c) ? d.ident(c) : 'NULL');
  const base = `SELECT ${[...kexprs.map((e, i) => `${e} AS k${i}`), `${st} AS st`, `${lat} AS lat`, `${num('total_tokens')} AS tt`,
    `${num('prompt_tokens')} AS pt`, `${num('completion_tokens')} AS ct`, `${costCol} AS cost`].join(', ')} FROM ${d.ident(tableOf(schema))} ${whereClause(conds)}`;

  const bdone = `st IN ('success', 'error', 'cancelled')`;
  const completed = `SUM(CASE WHEN ${bdone} THEN 1 ELSE 0 END)`;
  const succ = `SUM(CASE WHEN st = 'success' THEN 1 ELSE 0 END)`;
  const err = `SUM(CASE WHEN st = 'error' THEN 1 ELSE 0 END)`;
  const canc = `SUM(CASE WHEN st = 'cancelled' THEN 1 ELSE 0 END)`;
  const rate = (n: string) => `CASE WHEN ${completed} > 0 THEN 100.0 * ${n} / ${completed} ELSE 0 END`;
  const totalCost = `COALESCE(SUM(CASE WHEN ${bdone} THEN cost END), 0)`;
  const metrics = spec.metrics.map(normaliseMetric);
  const m: Record<Metric, string> = {
    count: 'COUNT(*)',
    total_requests: 'COUNT(*)',
    success_count: `COALESCE(${succ}, 0)`,
    error_count: `COALESCE(${err}, 0)`,
    cancelled_count: `COALESCE(${canc}, 0)`,
    success_rate: rate(succ),
    error_rate: rate(err),
    cancelled_rate: rate(canc),
    avg_latency: `COALESCE(${d.mean ? d.mean(`CASE WHEN ${bdone} THEN lat END`) : `AVG(CASE WHEN ${bdone} THEN ${d.float.replace('$', 'lat')} END)`}, 0)`,
    max_latency: `MAX(CASE WHEN ${bdone} THEN ${d.float.replace('$', 'lat')} END)`,
    total_tokens: `COALESCE(SUM(CASE WHEN ${bdone} THEN tt END), 0)`,
    input_tokens: `COALESCE(SUM(CASE WHEN ${bdone} THEN pt END), 0)`,
    output_tokens: `COALESCE(SUM(CASE WHEN ${bdone} THEN ct END), 0)`,
    total_cost: totalCost,
    avg_cost: `CASE WHEN ${completed} > 0 THEN ${d.float.replace('$', totalCost)} / ${completed} END`,
    p50_latency: '', p95_latency: '', p99_latency: '',
  };
  const doneLat = `CASE WHEN ${bdone} THEN ${d.float.replace('$', 'lat')} END`;
  const aggCols = [...k, ...metrics.map((x) => `${PERCENTILES[x] !== undefined ? d.percentile(PERCENTILES[x]!, doneLat) : m[x]} AS ${x}`)];
  const groupBy = k.length ? ` GROUP BY ${k.join(', ')}` : '';
  let sql = `WITH base AS (${base}) SELECT ${aggCols.join(', ')} FROM base${groupBy}`;
  // NULL groups last on every store (SQLite alone would sort them first).
  if (k.length) sql += ` ORDER BY ${k.map((x) => `${x} NULLS LAST`).join(', ')}`;
  return { sql, params, keys };
}

/** Renames k0… back to the group field names and normalises numbers. */
export function shapeAggregateRow(row: Record<string, unknown>, keys: readonly string[], metrics: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  keys.forEach((key, i) => { out[key] = row[`k${i}`] ?? null; });
  for (const raw of metrics) {
    const name = normaliseMetric(raw);
    const v = row[name];
    out[raw] = v === null || v === undefined ? null : typeof v === 'bigint' ? Number(v) : typeof v === 'string' ? Number(v) : v;
  }
  return out;
}
