import type { AggregateDialect, TimeBucket } from '../aggregate-sql.js';
import { escapeLike } from '../filter.js';

const jsonb = (column: string) => `("${column}"::text)::jsonb`;
const validJson = (column: string) => `pg_input_is_valid("${column}"::text, 'jsonb')`;

/**
 * Epoch ms of a timestamp column, truncated (not rounded) to the millisecond. In
 * float8 arithmetic where that is exact: `date_part` gives the seconds within
 * 0.12 µs for instants between 1700 and 2250, rounding to whole microseconds
 * makes them exact (under 2^53), and a whole number of microseconds divided by
 * 1000 never lands within rounding of a whole millisecond it is not. Elsewhere
 * `extract()`, exact numeric, which costs the server ~0.6 s more per million
 * rows.
 */
export const pgEpochMs = (column: string): string =>
  `(CASE WHEN ${column} > '1700-01-01Z' AND ${column} < '2250-01-01Z' THEN floor(round(date_part('epoch', ${column}) * 1000000) / 1000) ELSE floor(extract(epoch from ${column}) * 1000)::float8 END)`;

/** Epoch ms of `timestamp` (pgEpochMs). */
export const PG_TS_MS = pgEpochMs('"timestamp"');

// The CASE, not AND: Postgres does not promise to short-circuit AND, and a cast of malformed JSON would abort the
// whole statement. Then one path query (strict: an array is not searched, a missing key is no match) parses the
// JSON once more, where -> and ->> parsed it three times (0.5 s of server time per 100k error rows).
const pgErrorCode = (fallback: number) =>
  `(CASE WHEN ${validJson('error_details')} THEN coalesce(trunc(jsonb_path_query_first(${jsonb('error_details')}, ` +
  `'strict $.status_code ? (@.type() == "number" && @ >= 100 && @ <= 599)', '{}', true)::numeric)::int, ${fallback}) ` +
  `ELSE ${fallback} END)`;

/** 200 for success; error_details.status_code, else 500 (error) or 499 (cancelled); NULL while processing. */
export const PG_STATUS_CODE =
  `(CASE "status" WHEN 'success' THEN 200 WHEN 'error' THEN ${pgErrorCode(500)} ` +
  `WHEN 'cancelled' THEN ${pgErrorCode(499)} END)`;

export function createPostgresDialect(): AggregateDialect {
  return {
    name: 'postgres',
    ident: (n) => `"${n.replace(/"/g, '""')}"`,
    param(params, value) {
      params.push(value);
      return `$${params.length}`;
    },
    tsMs: PG_TS_MS,
    statusCode: PG_STATUS_CODE,
    timeRange(params, start, end) {
      const c: string[] = [];
      if (start !== undefined) { params.push(start); c.push(`"timestamp" >= to_timestamp($${params.length}::float8 / 1000)`); }
      if (end !== undefined) { params.push(end); c.push(`"timestamp" < to_timestamp($${params.length}::float8 / 1000)`); }
      return c;
    },
    metadataValue(params, key) {
      params.push(key);
      return `(CASE WHEN ${validJson('metadata')} THEN (${jsonb('metadata')} -> $${params.length}::text)::text END)`;
    },
    jsonArrayHasAny(params, column, values) {
      // Invalid JSON text would abort the statement: only valid text is cast.
      const arr = `(CASE WHEN pg_input_is_valid(${column}::text, 'jsonb') THEN (${column}::text)::jsonb ELSE '[]'::jsonb END)`;
      return `(${values.map((v) => { params.push(JSON.stringify([v])); return `${arr} @> $${params.length}::jsonb`; }).join(' OR ')})`;
    },
    contains(params, column, needle) {
      params.push(`%${escapeLike(needle)}%`);
      return `${column} ILIKE $${params.length} ESCAPE '\\'`;
    },
    search(params, column, text) {
      // Bifrost's Postgres search (rdb.go): whole words, in any order, over the first 250,000 characters.
      params.push(text);
      return `to_tsvector('simple', left(${column}, 250000)) @@ plainto_tsquery('simple', $${params.length})`;
    },
    bucket(kind: TimeBucket, zone: string, params) {
      params.push(zone);
      const local = `("timestamp" AT TIME ZONE $${params.length}::text)`;
      switch (kind) {
        case 'hour': return `to_char(${local}, 'YYYY-MM-DD"T"HH24:00')`;
        case 'date': return `to_char(${local}, 'YYYY-MM-DD')`;
        case 'week': return `to_char(date_trunc('week', ${local}), 'YYYY-MM-DD')`;
        case 'month': return `to_char(${local}, 'YYYY-MM')`;
      }
    },
    jsonText: (column, key) => `(CASE WHEN ${validJson(column)} THEN ${jsonb(column)} ->> '${key}' END)`,
    nullSafeEq: (a, b) => `${a} IS NOT DISTINCT FROM ${b}`,
    float: 'CAST($ AS double precision)',
    percentile: (p, expr) => `percentile_cont(${p}) WITHIN GROUP (ORDER BY ${expr})`,
    // A parallel plan adds float8 values in an order that changes from run to run (and so the last digits of the
    // mean); numeric sums exactly (Bifrost's latency is numeric already), and the mean is rounded once.
    mean: (expr) => `CAST(AVG(CAST(${expr} AS numeric)) AS double precision)`,
  };
}
