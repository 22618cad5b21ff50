import type Database from 'better-sqlite3';
import { CHANGEABLE_COLUMNS, FINGERPRINT_VERSION, fingerprintScope, stamp, type ChangeableKind, type FingerprintScope } from '../fingerprint.js';
import { filterConditions, whereClause, type Filter } from '../filter.js';
import type { DetectedSchema } from '../schema.js';
import { tableOf } from '../log-table.js';
import type { FingerprintVersion, SourcePosition, WindowFingerprint } from '../types.js';
import { coarseBounds, SQLITE_TS_MS, type SqliteDialect } from './sqlite-dialect.js';
import { MOD48, runFingerprintStatement, type FingerprintPartial, type FingerprintStatement } from './fingerprint-run.js';

/** A prime below 2^31: a row's term stays below it, so a window's sum of terms stays exact in 64 bits. */
const P31 = 2147483629;

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
 * How a window set is fingerprinted: one statement per part of the rows
 * (disjoint parts whose union is every row of the span, so their sums add),
 * or nothing to read.
 */
export interface FingerprintPlan {
  windows: number;
  version: FingerprintVersion;
  scope?: string[];
  parts: FingerprintStatement[];
}

/**
 * The plan of the fingerprints of the windows (LogSource.fingerprints). The
 * rows are read by rowid range when the span's rows are dense in it (rows
 * land in rowid order close to their timestamp), else through an index on
 * the timestamp text; each is placed in its window by its exact instant.
 * With `split` (0 < split < 1, versions 2 and 3) the rows are cut in two
 * parts, the first about that share of them (older text, or lower rowids),
 * for two connections to read side by side; a row outside any window is read
 * by one part at most.
 */
export function planSqliteFingerprints(db: Database.Database, d: SqliteDialect, schema: DetectedSchema, filter: Filter, windows: readonly Window[], columns: readonly string[], upTo?: SourcePosition, version: FingerprintVersion = FINGERPRINT_VERSION, split?: number): FingerprintPlan {
  const scope = fingerprintScope(schema, filter, windows, columns, version);
  const plan: FingerprintPlan = { windows: windows.length, version, scope: scope.scope, parts: [] };
  if (!windows.length) return plan;
  const t = `"${tableOf(schema)}"`;
  const bounds = coarseBounds(scope.filter.start, scope.filter.end);
  // The coarse text range on the indexed column, narrowed to a part's side of a cut: one bound each way, so the
  // index range itself is the part's.
  const text = (ps: unknown[], cut?: { below?: string; from?: string }) => {
    const lo = cut?.from !== undefined && (bounds.from === null || cut.from > bounds.from) ? cut.from : bounds.from;
    const hi = cut?.below !== undefined && (bounds.to === null || cut.below < bounds.to) ? cut.below : bounds.to;
    const c: string[] = [];
    if (lo !== null) { ps.push(lo); c.push(`"timestamp" >= ?`); }
    if (hi !== null) { ps.push(hi); c.push(`"timestamp" < ?`); }
    return c;
  };
  let limit = upTo?.kind === 'rowid' ? upTo.value : Infinity;
  // Windows' own positions: one bound when they share it, else a bound per window.
  const own = windows.map((w) => (w.upTo?.kind === 'rowid' ? Math.min(w.upTo.value, limit) : limit));
  const shared = own.every((u) => u === own[0]);
  if (shared) limit = own[0]!;
  const u = uniform(windows);
  const filterParams: unknown[] = [];
  const filterConds = filterConditions(d, schema, { ...scope.filter, start: undefined, end: undefined }, filterParams);
  const share = version !== 1 && split !== undefined && split > 0 && split < 1 ? split : null;
  // Rows arrive at a steady rate: the text at that share of the span divides them so. Any text divides them
  // exactly in two (a total order), whatever their forms.
  const first = Math.min(...windows.map((w) => w.start));
  const last = Math.max(...windows.map((w) => w.end));
  const at = share === null ? null : new Date(first + share * (last - first)).toISOString().slice(0, 16).replace('T', ' ');
  const textCuts = at === null ? [undefined] : [{ below: at }, { from: at }];
  // Each part's conditions and parameters.
  let parts: Array<{ conds: string[]; params: unknown[] }>;
  let from = t;
  const rowidBound = limit !== Infinity ? [`rowid <= ${Math.trunc(limit)}`] : [];
  // Version 3 reads a covering index when the table has one: every status but processing, the text range, the filter.
  const probe: unknown[] = [];
  const cover = version === 3 && scope.filter.completedOnly ? coveringIndex(db, t, scope, [`"status" IN (${STATUSES(t)})`, ...text(probe), ...filterConds, ...rowidBound], [...probe, ...filterParams]) : null;
  if (cover) {
    from = `${t} INDEXED BY ${cover}`;
    parts = textCuts.map((cut) => {
      const ps: unknown[] = [];
      const conds = [`"status" IN (${STATUSES(t)})`, ...text(ps, cut), ...filterConds, ...rowidBound];
      return { conds, params: [...ps, ...filterParams] };
    });
  } else {
    const spanParams: unknown[] = [];
    const span = db.prepare(`SELECT min(rowid) AS lo, max(rowid) AS hi, count(*) AS n FROM ${t} ${whereClause(text(spanParams))}`).get(...spanParams) as { lo: number | null; hi: number | null; n: number };
    if (!span.n || span.lo === null || span.hi === null) return plan;
    const dense = span.hi - span.lo + 1 <= 4 * span.n;
    if (dense) {
      from = `${t} NOT INDEXED`;
      const lo = Math.trunc(span.lo);
      const hi = Math.trunc(Math.min(span.hi, limit));
      const mid = lo + Math.round((share ?? 1) * (hi - lo));
      const ranges = share === null ? [[lo, hi]] : [[lo, mid], [mid + 1, hi]];
      // The text range picks the rows through the index; read by rowid, the exact bucket alone tells.
      parts = ranges.map(([a, b]) => {
        const ps: unknown[] = [];
        const conds = [`rowid BETWEEN ${a} AND ${b}`, ...(u ? [] : text(ps)), ...filterConds];
        return { conds, params: [...ps, ...filterParams] };
      });
    } else {
      parts = textCuts.map((cut) => {
        const ps: unknown[] = [];
        const conds = [...rowidBound, ...text(ps, cut), ...filterConds];
        return { conds, params: [...ps, ...filterParams] };
      });
    }
  }
  const hash = version === 1 ? `bl_row_hash(${scope.cols.map((c) => `"${c}"`).join(', ')})` : rowTerm(scope, version);
  // Version 1 summed each hash mod 2^48 and reduced the sum in JS; versions 2 and 3 sum terms below 2^31 exactly.
  const sum = (h: string) => (version === 1 ? `sum(${h} % ${MOD48})` : `sum(${h}) % ${MOD48}`);
  const c = scope.cost ? `"${scope.cost}"` : '0';
  const k = scope.tokens ? `"${scope.tokens}"` : '0';
  const statement = (part: { conds: string[]; params: unknown[] }): FingerprintStatement => {
    const where = whereClause(part.conds);
    const ps = part.params;
    if (u) {
      // The bucket of each row's second, floored (shifted positive before dividing), computed once per row (LIMIT
      // keeps the subquery from being flattened into the grouping); rows outside the windows are left out by HAVING.
      const inner = `SELECT ((unixepoch("timestamp") - ${u.s0 - u.len}) / ${u.len} - 1) AS b, rowid AS p, ${c} AS c, ${k} AS k, ${hash} AS h FROM ${from} ${where} LIMIT -1`;
      const own_ = shared ? '' : `WHERE p <= (CASE b ${own.map((x, i) => `WHEN ${i} THEN ${x === Infinity ? 9e15 : Math.trunc(x)}`).join(' ')} END)`;
      return { sql: `SELECT b, count(*) AS n, total(c) AS c, total(k) AS k, ${sum('h')} AS h FROM (${inner}) ${own_} GROUP BY b HAVING b BETWEEN 0 AND ${windows.length - 1}`, params: ps, v1: version === 1 };
    }
    // Each row's instant once (LIMIT keeps the subquery from being flattened into every WHEN).
    const inner = `SELECT ${SQLITE_TS_MS} AS t, rowid AS p, ${c} AS c, ${k} AS k, ${hash} AS h FROM ${from} ${where} LIMIT -1`;
    const bucket = windows.map((w, i) => `WHEN t >= ${Math.trunc(w.start)} AND t < ${Math.trunc(w.end)}${own[i] !== Infinity && !shared ? ` AND p <= ${Math.trunc(own[i]!)}` : ''} THEN ${i}`).join(' ');
    return { sql: `SELECT b, count(*) AS n, total(c) AS c, total(k) AS k, ${sum('h')} AS h FROM (SELECT CASE ${bucket} END AS b, c, k, h FROM (${inner})) WHERE b IS NOT NULL GROUP BY b`, params: ps, v1: version === 1 };
  };
  plan.parts = parts.map(statement);
  return plan;
}

/** The windows' fingerprints from the partial sums of every part of a plan. */
export function combineFingerprints(plan: FingerprintPlan, results: ReadonlyArray<readonly FingerprintPartial[]>): WindowFingerprint[] {
  const sums = Array.from({ length: plan.windows }, () => ({ n: 0, c: 0, k: 0, h: 0 }));
  for (const rows of results) {
    for (const r of rows) {
      if (!(r.b >= 0 && r.b < plan.windows)) continue;
      const s = sums[r.b]!;
      s.n += r.n;
      s.c += r.c;
      s.k += r.k;
      // Each part's sum is reduced mod 2^48, so two of them add exactly in a double.
      s.h = plan.version === 1 ? Number((BigInt(s.h) + BigInt(r.h)) % BigInt(MOD48)) : (s.h + (r.h % MOD48) + MOD48) % MOD48;
    }
  }
  return sums.map((s) => stamp({ rows: s.n, cost: s.c, tokens: s.k, hash: s.h }, plan.version, plan.scope));
}

/** One fingerprint per window, every part read on this connection. */
export function sqliteFingerprints(db: Database.Database, d: SqliteDialect, schema: DetectedSchema, filter: Filter, windows: readonly Window[], columns: readonly string[], upTo?: SourcePosition, version: FingerprintVersion = FINGERPRINT_VERSION): WindowFingerprint[] {
  const plan = planSqliteFingerprints(db, d, schema, filter, windows, columns, upTo, version);
  return combineFingerprints(plan, plan.parts.map((st) => runFingerprintStatement(db, st)));
}
