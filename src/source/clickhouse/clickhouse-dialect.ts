import type { AggregateDialect, TimeBucket } from '../aggregate-sql.js';

/** Bound parameters of one ClickHouse statement: `{pN:Type}` placeholders and their values. */
export type ChParams = unknown[];

/** The ClickHouse type a bound value is declared with. */
export function chParamType(v: unknown): string {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? 'Int64' : 'Float64';
  if (typeof v === 'boolean') return 'Bool';
  return 'String';
}

/** Turns the positional list into the `query_params` object of @clickhouse/client. */
export function chQueryParams(params: ChParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  params.forEach((v, i) => { out[`p${i + 1}`] = v; });
  return out;
}

export const chIdent = (n: string) => '`' + n.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';

/** Epoch milliseconds of `timestamp` (DateTime64(3): exact). */
export const CH_TS_MS = 'toFloat64(toUnixTimestamp64Milli(`timestamp`))';

const ed = "ifNull(`error_details`, '')";
/** error_details.status_code when a number in 100–599, else the fallback. */
const errorCode = (fallback: number) =>
  `if(JSONType(${ed}, 'status_code') IN ('Int64', 'UInt64', 'Double') AND JSONExtractFloat(${ed}, 'status_code') BETWEEN 100 AND 599, ` +
  `toInt32(trunc(JSONExtractFloat(${ed}, 'status_code'))), toInt32(${fallback}))`;
/** 200 for success; error_details.status_code, else 500 for errors and 499 for cancelled requests; NULL otherwise. */
export const CH_STATUS_CODE =
  `multiIf(\`status\` = 'success', toInt32(200), \`status\` = 'error', ${errorCode(500)}, \`status\` = 'cancelled', ${errorCode(499)}, NULL)`;

export function createClickHouseDialect(): AggregateDialect {
  const param = (params: unknown[], value: unknown) => {
    params.push(value);
    return `{p${params.length}:${chParamType(value)}}`;
  };
  return {
    name: 'clickhouse',
    ident: chIdent,
    param,
    tsMs: CH_TS_MS,
    statusCode: CH_STATUS_CODE,
    timeRange(params, start, end) {
      // Comparisons on the column itself keep the primary key (timestamp, id) usable.
      const c: string[] = [];
      if (start !== undefined) c.push(`\`timestamp\` >= fromUnixTimestamp64Milli(toInt64(${param(params, Math.floor(start))}))`);
      if (end !== undefined) c.push(`\`timestamp\` < fromUnixTimestamp64Milli(toInt64(${param(params, Math.ceil(end))}))`);
      return c;
    },
    metadataValue(params, key) {
      // The raw JSON text of the key, like Postgres' (metadata::jsonb -> key)::text; NULL when absent or invalid.
      const k = param(params, key);
      return `if(JSONHas(ifNull(\`metadata\`, ''), ${k}), JSONExtractRaw(ifNull(\`metadata\`, ''), ${k}), NULL)`;
    },
    contains(params, column, needle) {
      return `positionCaseInsensitiveUTF8(ifNull(${column}, ''), ${param(params, needle)}) > 0`;
    },
    bucket(kind: TimeBucket, zone: string, params) {
      const local = `toTimeZone(\`timestamp\`, ${param(params, zone)})`;
      switch (kind) {
        case 'hour': return `formatDateTime(${local}, '%Y-%m-%dT%H:00')`;
        case 'date': return `formatDateTime(${local}, '%Y-%m-%d')`;
        case 'week': return `formatDateTime(toMonday(${local}), '%Y-%m-%d')`;
        case 'month': return `formatDateTime(${local}, '%Y-%m')`;
      }
    },
    jsonText: (column, key) =>
      `if(JSONHas(ifNull(${chIdent(column)}, ''), '${key}'), if(JSONType(ifNull(${chIdent(column)}, ''), '${key}') = 'String', JSONExtractString(ifNull(${chIdent(column)}, ''), '${key}'), JSONExtractRaw(ifNull(${chIdent(column)}, ''), '${key}')), NULL)`,
    nullSafeEq: (a, b) => `isNotDistinctFrom(${a}, ${b})`,
    float: 'toFloat64($)',
    percentile: (p, expr) => `quantileExactInclusive(${p})(${expr})`,
  };
}
