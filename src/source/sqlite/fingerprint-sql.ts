import type Database from 'better-sqlite3';
import { CHANGEABLE_COLUMNS, FINGERPRINT_VERSION, fingerprintScope, stamp, type ChangeableKind, type FingerprintScope } from '../fingerprint.js';
import { filterConditions, whereClause, type Filter } from '../filter.js';
import type { DetectedSchema } from '../schema.js';
import { tableOf } from '../log-table.js';
import type { FingerprintVersion, SourcePosition, WindowFingerprint } from '../types.js';
import { SQLITE_TS_MS, type SqliteDialect } from './sqlite-dialect.js';

const MOD48 = 281474976710656;
/** A prime below 2^31: a row's term stays below it, so a window's sum of terms stays exact in 64 bits. */
const P31 = 2147483629;

const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);

/**
 * Version 1's 48-bit hash of a row's values: FNV-1a style over each value,
 * type-tagged (NULL, number bits, text code units, blob bytes). Kept to
 * compare windows fingerprinted by an older release.
 */
function rowHashV1(...vals: unknown[]): number {
  let h = 0x811c9dc5;
  let g = 0x9e3779b9;
  for (let j = 0; j < vals.length; j++) {
    const v = vals[j];
    if (v === null || v === undefined) { h = Math.imul(h ^ 0x100, 0x01000193); }
    else if (typeof v === 'number') {
      F64[0] = v;
      h = Math.imul(h ^ U32[0]!, 0x01000193);
      h = Math.imul(h ^ U32[1]!, 0x01000193);
    } else if (typeof v === 'bigint') {
      F64[0] = Number(v);
      h = Math.imul(h ^ U32[0]! ^ 0x55, 0x01000193);
      h = Math.imul(h ^ U32[1]!, 0x01000193);
    } else if (typeof v === 'string') {
      for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v.charCodeAt(i), 0x01000193);
      h = Math.imul(h ^ (v.length + 0x200), 0x01000193);
    } else if (Buffer.isBuffer(v)) {
      for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v[i]!, 0x01000193);
      h = Math.imul(h ^ (v.length + 0x300), 0x01000193);
    }
    g = Math.imul(g ^ h ^ j, 0x5bd1e995);
  }
  return ((g >>> 16) & 0xffff) * 0x100000000 + (h >>> 0);
}

const withV1 = new WeakSet<Database.Database>();

/**
 * Versions 2 and 3's per-row term, in plain SQL (no function call per row): each
 * changeable column's value (NULL apart), with distinct weights, reduced below
 * 2^31 and multiplied by a weight from the rowid, so a value moving between
 * rows changes the sum, and so does a row appearing or disappearing. REAL
 * values stay REAL within a row's term, and `%` truncates them the same way
 * every time.
 */
function rowTerm(scope: FingerprintScope, version: FingerprintVersion): string {
  const q = (c: string) => `"${c.replace(/"/g, '""')}"`;
  const term = (c: string, kind: ChangeableKind, w: number) =>
    kind === 'status' ? `(CASE ${q(c)} WHEN 'success' THEN 1 WHEN 'error' THEN 2 WHEN 'cancelled' THEN 3 ELSE 4 END) * ${w}` : `ifnull(${q(c)}, -7) * ${w}${kind === 'real' ? 'e9' : ''}`;
  // Version 2 weighs by position among every changeable column; version 3 by the column's place in the full list,
  // so a column's weight never depends on which others are in scope.
  const weight = (col: string, i: number) => 1009 + (version === 2 ? i : CHANGEABLE_COLUMNS.findIndex(([c]) => c === col)) * 4391;
  const lin = scope.changeable.map((x, i) => term(x.col, x.kind, weight(x.col, i))).join(' + ') || '0';
  return `((((${lin}) % ${P31}) + 1) * ((rowid % 65521) + 1)) % ${P31}`;
}

/** Every status the table holds but `processing`, by skipping through an index on status (a few seeks). */
const STATUSES = (t: string) => `WITH RECURSIVE s(v) AS (SELECT min("status") FROM ${t} UNION ALL SELECT (SELECT min("status") FROM ${t} WHERE "status" > s.v) FROM s WHERE s.v IS NOT NULL) SELECT v FROM s WHERE v IS NOT NULL AND v <> 'processing'`;

/**
 * An index that leads with (status, timestamp) and holds every column the
 * fingerprint reads (Bifrost's `idx_logs_histogram_cover`), so the grouped
 * query reads index entries instead of rows: SQLite says whether it covers
 * the filter too.
 */
function coveringIndex(db: Database.Database, t: string, scope: FingerprintScope, conds: readonly string[], params: readonly unknown[]): string | null {
  const need = new Set(['status', 'timestamp', ...scope.changeable.map((c) => c.col), ...(scope.cost ? [scope.cost] : []), ...(scope.tokens ? [scope.tokens] : [])]);
  const indexes = db.prepare(`SELECT name FROM pragma_index_list(?) WHERE partial = 0`).pluck().all(t.slice(1, -1).replace(/""/g, '"')) as string[];
  for (const name of indexes) {
    const cols = db.prepare(`SELECT name FROM pragma_index_info(?) ORDER BY seqno`).pluck().all(name) as Array<string | null>;
    if (cols[0] !== 'status' || cols[1] !== 'timestamp' || ![...need].every((c) => cols.includes(c))) continue;
    const ix = `"${name.replace(/"/g, '""')}"`;
    const probe = `EXPLAIN QUERY PLAN SELECT ${[...need].map((c) => `"${c}"`).join(', ')} FROM ${t} INDEXED BY ${ix} ${whereClause([...conds])}`;
    const plan = (db.prepare(probe).all(...params) as Array<{ detail: string }>).map((r) => r.detail).join('\n');
    if (plan.includes(`USING COVERING INDEX ${name}`)) return ix;
  }
  return null;
}

type Window = { start: number; end: number; upTo?: SourcePosition };

/** Windows of one length, back to back, on whole seconds (a schedule's): bucketed by arithmetic on seconds. */
function uniform(windows: readonly Window[]): { s0: number; len: number } | null {
  const len = windows[0]!.end - windows[0]!.start;
  if (len <= 0 || len % 1000 !== 0 || windows[0]!.start % 1000 !== 0) return null;
  return windows.every((w, i) => w.start === windows[0]!.start + i * len && w.end === w.start + len) ? { s0: windows[0]!.start / 1000, len: len / 1000 } : null;
}

/**
 * One fingerprint per window in one grouped statement (LogSource.fingerprints).
 * The rows are read by rowid range when the span's rows are dense in it (rows
 * land in rowid order close to their timestamp), else through the timestamp
 * index; each is placed in its window by its exact instant.
 */
export function sqliteFingerprints(db: Database.Database, d: SqliteDialect, schema: DetectedSchema, filter: Filter, windows: readonly Window[], columns: readonly string[], upTo?: SourcePosition, version: FingerprintVersion = FINGERPRINT_VERSION): WindowFingerprint[] {
  if (!windows.length) return [];
  const scope = fingerprintScope(schema, filter, windows, columns, version);
  const zero = () => stamp({ rows: 0, cost: 0, tokens: 0, hash: 0 }, version, scope.scope);
  const t = `"${tableOf(schema)}"`;
  const coarseParams: unknown[] = [];
  const coarse = d.coarseTime(coarseParams, scope.filter.start, scope.filter.end)!;
  let limit = upTo?.kind === 'rowid' ? upTo.value : Infinity;
  // Windows' own positions: one bound when they share it, else a bound per window.
  const own = windows.map((w) => (w.upTo?.kind === 'rowid' ? Math.min(w.upTo.value, limit) : limit));
  const shared = own.every((u) => u === own[0]);
  if (shared) limit = own[0]!;
  const u = uniform(windows);
  const filterParams: unknown[] = [];
  const filterConds = filterConditions(d, schema, { ...scope.filter, start: undefined, end: undefined }, filterParams);
  const params: unknown[] = [];
  const conds: string[] = [];
  let from = t;
  // Version 3 reads a covering index when the table has one: every status but processing, the text range, the filter.
  const coverConds = [`"status" IN (${STATUSES(t)})`, coarse, ...filterConds, ...(limit !== Infinity ? [`rowid <= ${Math.trunc(limit)}`] : [])];
  const cover = version === 3 && scope.filter.completedOnly ? coveringIndex(db, t, scope, coverConds, [...coarseParams, ...filterParams]) : null;
  if (cover) {
    from = `${t} INDEXED BY ${cover}`;
    conds.push(...coverConds);
    params.push(...coarseParams, ...filterParams);
  } else {
    const span = db.prepare(`SELECT min(rowid) AS lo, max(rowid) AS hi, count(*) AS n FROM ${t} WHERE ${coarse}`).get(...coarseParams) as { lo: number | null; hi: number | null; n: number };
    if (!span.n || span.lo === null || span.hi === null) return windows.map(zero);
    const dense = span.hi - span.lo + 1 <= 4 * span.n;
    if (dense) { from = `${t} NOT INDEXED`; conds.push(`rowid BETWEEN ${Math.trunc(span.lo)} AND ${Math.trunc(Math.min(span.hi, limit))}`); }
    else if (limit !== Infinity) conds.push(`rowid <= ${Math.trunc(limit)}`);
    // The text range picks the rows through the index; read by rowid, the exact bucket alone tells.
    if (!dense || !u) { conds.push(coarse); params.push(...coarseParams); }
    conds.push(...filterConds);
    params.push(...filterParams);
  }
  const hash = version === 1 ? `bl_row_hash(${scope.cols.map((c) => `"${c}"`).join(', ')})` : rowTerm(scope, version);
  // Version 1 summed each hash mod 2^48 and reduced the sum in JS; versions 2 and 3 sum terms below 2^31 exactly.
  const sum = (h: string) => (version === 1 ? `sum(${h} % ${MOD48})` : `sum(${h}) % ${MOD48}`);
  if (version === 1 && !withV1.has(db)) { db.function('bl_row_hash', { deterministic: true, varargs: true }, rowHashV1); withV1.add(db); }
  const c = scope.cost ? `"${scope.cost}"` : '0';
  const k = scope.tokens ? `"${scope.tokens}"` : '0';
  let sql: string;
  if (u) {
    // The bucket of each row's second, floored (shifted positive before dividing), computed once per row (LIMIT
    // keeps the subquery from being flattened into the grouping); rows outside the windows are left out by HAVING.
    const inner = `SELECT ((unixepoch("timestamp") - ${u.s0 - u.len}) / ${u.len} - 1) AS b, rowid AS p, ${c} AS c, ${k} AS k, ${hash} AS h FROM ${from} ${whereClause(conds)} LIMIT -1`;
    const own_ = shared ? '' : `WHERE p <= (CASE b ${own.map((x, i) => `WHEN ${i} THEN ${x === Infinity ? 9e15 : Math.trunc(x)}`).join(' ')} END)`;
    sql = `SELECT b, count(*) AS n, total(c) AS c, total(k) AS k, ${sum('h')} AS h FROM (${inner}) ${own_} GROUP BY b HAVING b BETWEEN 0 AND ${windows.length - 1}`;
  } else {
    // Each row's instant once (LIMIT keeps the subquery from being flattened into every WHEN).
    const inner = `SELECT ${SQLITE_TS_MS} AS t, rowid AS p, ${c} AS c, ${k} AS k, ${hash} AS h FROM ${from} ${whereClause(conds)} LIMIT -1`;
    const bucket = windows.map((w, i) => `WHEN t >= ${Math.trunc(w.start)} AND t < ${Math.trunc(w.end)}${own[i] !== Infinity && !shared ? ` AND p <= ${Math.trunc(own[i]!)}` : ''} THEN ${i}`).join(' ');
    sql = `SELECT b, count(*) AS n, total(c) AS c, total(k) AS k, ${sum('h')} AS h FROM (SELECT CASE ${bucket} END AS b, c, k, h FROM (${inner})) WHERE b IS NOT NULL GROUP BY b`;
  }
  const rows = db.prepare(sql).all(...params) as Array<{ b: number; n: number; c: number; k: number; h: number }>;
  const out = windows.map(zero);
  for (const r of rows) if (r.b >= 0 && r.b < windows.length) out[r.b] = stamp({ rows: r.n, cost: r.c, tokens: r.k, hash: version === 1 ? Number(BigInt(r.h) % BigInt(MOD48)) : ((r.h % MOD48) + MOD48) % MOD48 }, version, scope.scope);
  return out;
}
