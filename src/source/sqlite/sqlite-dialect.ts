import type { AggregateDialect, TimeBucket } from '../aggregate-sql.js';
import { escapeLike } from '../filter.js';
import { offsetSegments, type OffsetSegment } from '../../util/tz.js';
import { DAY_MS } from '../../util/time.js';

const HOUR_MS = 3_600_000;

/** The connection-local aggregate `registerPercentile` adds (SQLite has no ordered-set aggregates). */
export const PERCENTILE_FUNCTION = 'bifrost_logs_percentile_cont';

const TS = '"timestamp"';

/**
 * Epoch ms of the TEXT `timestamp`, exact across Bifrost's four formats,
 * truncated (not rounded) to the millisecond.
 * The migrated `…T06:59:08.5Z` form stores milliseconds unpadded (`.5` is
 * 5 ms), which SQLite would read as 500 ms, so it is decoded by hand.
 */
export const SQLITE_TS_MS =
  `(CASE WHEN substr(${TS}, 11, 1) = 'T' AND substr(${TS}, -1, 1) = 'Z' AND substr(${TS}, 20, 1) = '.' ` +
  `THEN unixepoch(substr(${TS}, 1, 19)) * 1000 + MIN(999, CAST(substr(${TS}, 21, length(${TS}) - 21) AS INTEGER)) ` +
  `WHEN substr(${TS}, 20, 1) = '.' THEN unixepoch(${TS}) * 1000 + ` +
  // The first three fraction digits, truncated (never rounded up into the next ms):
  // '1' || '5+0' casts to 15 (one digit: 500 ms), '1' || '05+' to 105 (50 ms).
  `(CASE length(CAST('1' || substr(${TS}, 21, 3) AS INTEGER)) WHEN 2 THEN (CAST('1' || substr(${TS}, 21, 3) AS INTEGER) - 10) * 100 ` +
  `WHEN 3 THEN (CAST('1' || substr(${TS}, 21, 3) AS INTEGER) - 100) * 10 WHEN 4 THEN CAST('1' || substr(${TS}, 21, 3) AS INTEGER) - 1000 ELSE 0 END) ` +
  `ELSE unixepoch(${TS}) * 1000 END)`;

// Nested CASEs, because AND does not promise to skip json_type() on invalid JSON.
const sqliteErrorCode = (fallback: number) =>
  `(CASE WHEN json_valid("error_details") THEN ` +
  `(CASE WHEN json_type("error_details", '$.status_code') IN ('integer', 'real') ` +
  `AND json_extract("error_details", '$.status_code') BETWEEN 100 AND 599 ` +
  `THEN CAST(json_extract("error_details", '$.status_code') AS INTEGER) ELSE ${fallback} END) ELSE ${fallback} END)`;

/** 200 for success; error_details.status_code, else 500 (error) or 499 (cancelled); NULL while processing. */
export const SQLITE_STATUS_CODE =
  `(CASE "status" WHEN 'success' THEN 200 WHEN 'error' THEN ${sqliteErrorCode(500)} ` +
  `WHEN 'cancelled' THEN ${sqliteErrorCode(499)} END)`;

function dayText(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * SQLite reads a UTC offset of up to 14:59 (hours ≤ 14), so a row whose text
 * starts with the local date L lies in [L − 15 h, L + 1 day + 15 h).
 */
export const OFFSET_MS = 15 * HOUR_MS;

/**
 * The text bounds on the indexed column that cannot miss a row of
 * [start, end), to the hour: every stored form starts with the local date
 * and hour, `YYYY-MM-DD HH` or `YYYY-MM-DDTHH`, and a row's local time lies
 * within 14:59 of its instant. The lower bound is the hour of start − 15 h
 * in the space form, which sorts before the `T` form of the same hour; the
 * upper (exclusive) is the hour after end + 15 h in the `T` form, which sorts
 * after the space form. Null where the range is open.
 */
export function coarseBounds(start?: number, end?: number): { from: string | null; to: string | null } {
  return {
    from: start === undefined ? null : hourText(Math.floor((start - OFFSET_MS) / HOUR_MS) * HOUR_MS, ' '),
    to: end === undefined ? null : hourText(Math.ceil((end + OFFSET_MS) / HOUR_MS) * HOUR_MS, 'T'),
  };
}

function hourText(ms: number, sep: ' ' | 'T'): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)}${sep}${iso.slice(11, 13)}`;
}

/**
 * The SQLite dialect. `segments` supplies the UTC-offset history of a zone
 * over the data's time span, since SQLite has no IANA zone support.
 */
export interface SqliteDialect extends AggregateDialect {
  /** A text range on the indexed column (the hours of start − 15 h to end + 15 h) that cannot miss a row of [start, end). */
  coarseTime(params: unknown[], start?: number, end?: number): string | null;
  /**
   * The coarse text range of [start, end) cut into pieces on the indexed
   * column: an inner piece whose rows surely lie inside the range, and the
   * margins, where only the exact time test can tell.
   */
  spanPieces(start?: number, end?: number): Array<{ sql: string; params: string[]; exact: boolean }>;
}

export function createSqliteDialect(segments: (zone: string) => OffsetSegment[]): SqliteDialect {
  return {
    name: 'sqlite',
    ident: (n) => `"${n.replace(/"/g, '""')}"`,
    param(params, value) {
      params.push(typeof value === 'boolean' ? (value ? 1 : 0) : value);
      return '?';
    },
    tsMs: SQLITE_TS_MS,
    statusCode: SQLITE_STATUS_CODE,
    timeRange(params, start, end) {
      const c: string[] = [];
      const coarse = this.coarseTime(params, start, end);
      if (coarse) c.push(coarse);
      if (start !== undefined) { params.push(start); c.push(`${SQLITE_TS_MS} >= ?`); }
      if (end !== undefined) { params.push(end); c.push(`${SQLITE_TS_MS} < ?`); }
      return c;
    },
    coarseTime(params, start, end) {
      const { from, to } = coarseBounds(start, end);
      const c: string[] = [];
      if (from !== null) { params.push(from); c.push(`${TS} >= ?`); }
      if (to !== null) { params.push(to); c.push(`${TS} < ?`); }
      return c.length ? c.join(' AND ') : null;
    },
    spanPieces(start, end) {
      const range = (from: string | null, to: string | null) => {
        const params: string[] = [];
        const c: string[] = [];
        if (from !== null) { params.push(from); c.push(`${TS} >= ?`); }
        if (to !== null) { params.push(to); c.push(`${TS} < ?`); }
        return { sql: c.length ? c.join(' AND ') : 'TRUE', params };
      };
      const { from: coarseFrom, to: coarseTo } = coarseBounds(start, end);
      // A row's text starts with its local date L, and its instant lies in [L − 15 h, L + 1 day + 15 h):
      // it is surely inside the range when L ≥ start + 15 h and L + 1 day + 15 h ≤ end.
      const innerFrom = start === undefined ? null : dayText(Math.ceil((start + OFFSET_MS) / DAY_MS) * DAY_MS);
      const innerTo = end === undefined ? null : dayText(Math.floor((end - DAY_MS - OFFSET_MS) / DAY_MS) * DAY_MS + DAY_MS);
      if (innerFrom !== null && innerTo !== null && innerFrom >= innerTo) return [{ ...range(coarseFrom, coarseTo), exact: true }];
      const pieces = [{ ...range(innerFrom, innerTo), exact: false }];
      if (start !== undefined) pieces.push({ ...range(coarseFrom, innerFrom), exact: true });
      if (end !== undefined) pieces.push({ ...range(innerTo, coarseTo), exact: true });
      return pieces;
    },
    metadataValue(params, key) {
      params.push(`$."${key}"`);
      return `(CASE WHEN json_valid("metadata") THEN "metadata" -> ? END)`;
    },
    jsonArrayHasAny(params, column, values) {
      // Nested CASEs: json_type() raises on invalid JSON, and AND does not promise to skip it.
      const arr = `(CASE WHEN json_valid(${column}) THEN (CASE WHEN json_type(${column}) = 'array' THEN ${column} ELSE '[]' END) ELSE '[]' END)`;
      const ph = values.map((v) => { params.push(v); return '?'; }).join(', ');
      return `EXISTS (SELECT 1 FROM json_each(${arr}) WHERE type = 'text' AND value IN (${ph}))`;
    },
    contains(params, column, needle) {
      params.push(`%${escapeLike(needle)}%`);
      return `${column} LIKE ? ESCAPE '\\'`;
    },
    bucket(kind: TimeBucket, zone: string, params) {
      const segs = segments(zone);
      let off = `${segs[segs.length - 1]!.offsetMs}`;
      if (segs.length > 1) {
        const whens: string[] = [];
        for (let i = 1; i < segs.length; i++) {
          params.push(segs[i]!.from);
          whens.push(`WHEN ${SQLITE_TS_MS} < ? THEN ${segs[i - 1]!.offsetMs}`);
        }
        off = `(CASE ${whens.join(' ')} ELSE ${segs[segs.length - 1]!.offsetMs} END)`;
      }
      const local = `((${SQLITE_TS_MS} + ${off}) / 1000)`;
      switch (kind) {
        case 'hour': return `strftime('%Y-%m-%dT%H:00', ${local}, 'unixepoch')`;
        case 'date': return `strftime('%Y-%m-%d', ${local}, 'unixepoch')`;
        case 'week': return `date(${local}, 'unixepoch', 'weekday 0', '-6 days')`;
        case 'month': return `strftime('%Y-%m', ${local}, 'unixepoch')`;
      }
    },
    jsonText: (column, key) => `(CASE WHEN json_valid("${column}") THEN json_extract("${column}", '$.${key}') END)`,
    nullSafeEq: (a, b) => `${a} IS ${b}`,
    float: 'CAST($ AS REAL)',
    percentile: (p, expr) => `${PERCENTILE_FUNCTION}(${expr}, ${p})`,
  };
}

export { offsetSegments };
