import { WINDOW_END, WINDOW_START, type TableColumn, type TableLayout, type Window, type WindowMode } from './layout.js';
import { Params, type Statement, type WarehouseDialect } from './dialect.js';

/**
 * The statements every warehouse runs, written once over its dialect: the
 * table and its new columns, the window's DELETE, the INSERT … SELECT from a
 * stage (late rows only when their request_id is new), the request_id rule
 * (each once, the newest load wins) and the count `verify` reads.
 */

const as = <R>(d: WarehouseDialect<R>, expr: string, alias: string) => (d.aliasWithAs ? `${expr} AS ${alias}` : `${expr} ${alias}`);
const col = <R>(d: WarehouseDialect<R>, name: string, alias?: string) => (alias ? `${alias}.${d.ident(name)}` : d.ident(name));

/** `CREATE TABLE IF NOT EXISTS` with every column nullable. */
export function createTableSql<R>(d: WarehouseDialect<R>, t: R, columns: readonly TableColumn[], typeOf = (c: TableColumn) => d.columnType(c.type), head = 'CREATE TABLE IF NOT EXISTS'): string {
  return `${head} ${d.table(t)} (${columns.map((c) => `${d.ident(c.name)} ${typeOf(c)}`).join(', ')})`;
}

/** New fields become new nullable columns; nothing is ever dropped or retyped. */
export function addColumnsSql<R>(d: WarehouseDialect<R>, t: R, columns: readonly TableColumn[]): string[] {
  if (!columns.length) return [];
  const add = (c: TableColumn) => `ADD COLUMN ${d.addColumns.ifNotExists ? 'IF NOT EXISTS ' : ''}${d.ident(c.name)} ${d.columnType(c.type)}`;
  if (d.addColumns.combined) return [`ALTER TABLE ${d.table(t)} ${columns.map(add).join(', ')}`];
  return columns.map((c) => `ALTER TABLE ${d.table(t)} ${add(c)}`);
}

/**
 * The rows of a window: by `timestamp` in [start, end), or tagged with
 * exactly this window. `within`: the tagged windows inside [start, end) (for counting).
 */
export function windowCondition<R>(d: WarehouseDialect<R>, mode: WindowMode, p: Params, w: Window, o: { alias?: string; within?: boolean } = {}): string {
  const start = p.ts('window_start', w.start);
  const end = p.ts('window_end', w.end);
  if (mode === 'timestamp') return `${col(d, 'timestamp', o.alias)} >= ${start} AND ${col(d, 'timestamp', o.alias)} < ${end}`;
  return o.within
    ? `${col(d, WINDOW_START, o.alias)} >= ${start} AND ${col(d, WINDOW_END, o.alias)} <= ${end}`
    : `${col(d, WINDOW_START, o.alias)} = ${start} AND ${col(d, WINDOW_END, o.alias)} = ${end}`;
}

/** Removes a window's rows before it is loaded again (inside the load's transaction). */
export function deleteWindowSql<R>(d: WarehouseDialect<R>, t: R, mode: WindowMode, w: Window): Statement {
  const p = new Params(d.params);
  return { text: `DELETE FROM ${d.table(t)} WHERE ${windowCondition(d, mode, p, w)}`, values: p.values };
}

/** Rows of a window now in the table (for `verify`): by timestamp when the table has one, else the tagged windows inside it. */
export function countWindowSql<R>(d: WarehouseDialect<R>, t: R, hasTimestamp: boolean, w: Window): Statement {
  const p = new Params(d.params);
  return { text: `SELECT COUNT(*) AS n FROM ${d.table(t)} WHERE ${windowCondition(d, hasTimestamp ? 'timestamp' : 'tagged', p, w, { within: true })}`, values: p.values };
}

export interface StageInsert<R> {
  readonly target: R;
  /** The stage as SQL (a table of the dialect, or a session temp table), read as `s`. */
  readonly stage: string;
  /** The whole FROM clause instead, when the stage is more than a table (it names its rows `s` itself). */
  readonly from?: string;
  readonly layout: TableLayout;
  readonly window: Window;
  /** Late rows: only request_ids the window does not hold yet. */
  readonly late: boolean;
  /** A record column's value from the stage row `s` (default: `s.<col>`). */
  value?(c: TableColumn, expr: string): string;
  /** Take the window columns from the stage rather than from parameters. */
  readonly windowFromStage?: boolean;
  /** Binds that come before this statement's own (dollar style). */
  readonly params?: Params;
}

/**
 * Moves a stage into the table: each column cast by the dialect as needed,
 * aggregated rows tagged with their window, late rows only when their
 * request_id is not in the window yet (bounded by the window's time range,
 * so the lookup prunes to its partition; see README Decisions).
 */
export function insertFromStageSql<R>(d: WarehouseDialect<R>, o: StageInsert<R>): Statement {
  const p = o.params ?? new Params(d.params);
  const select = o.layout.columns.map((c) => {
    if (c.window && !o.windowFromStage) return p.ts(c.window === 'start' ? 'window_start' : 'window_end', c.window === 'start' ? o.window.start : o.window.end);
    const expr = col(d, c.name, 's');
    return o.value ? o.value(c, expr) : expr;
  });
  let text = `INSERT INTO ${d.table(o.target)} (${o.layout.columns.map((c) => d.ident(c.name)).join(', ')}) SELECT ${select.join(', ')} FROM ${o.from ?? as(d, o.stage, 's')}`;
  if (o.late && o.layout.keyed) {
    // Looked up in the window's own rows only: the lookup reads one partition / time range, not the whole history.
    const own = windowCondition(d, o.layout.mode, p, o.window, { alias: 'x' });
    text += ` WHERE NOT EXISTS (SELECT 1 FROM ${as(d, d.table(o.target), 'x')} WHERE ${col(d, 'request_id', 'x')} = ${col(d, 'request_id', 's')} AND ${own})`;
  }
  return { text, values: p.values };
}

/**
 * The request_id rule, run after a window's rows are inserted, in the same
 * transaction: a request_id the window now holds is removed from every other
 * window, so the table holds each request_id once and the newest load wins.
 * Null for late parts (they only add new request_ids) and unkeyed tables.
 */
export function supersedeSql<R>(d: WarehouseDialect<R>, t: R, layout: TableLayout, w: Window, late: boolean): Statement | null {
  if (late || !layout.keyed) return null;
  const p = new Params(d.params);
  const rid = d.ident('request_id');
  const inner = windowCondition(d, layout.mode, p, w);
  const outer = windowCondition(d, layout.mode, p, w);
  return { text: `DELETE FROM ${d.table(t)} WHERE ${rid} IN (SELECT ${rid} FROM ${d.table(t)} WHERE ${inner}) AND NOT (${outer})`, values: p.values };
}
