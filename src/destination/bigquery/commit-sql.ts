import { WINDOW_START, type TableLayout } from '../warehouse/layout.js';
import { Params } from '../warehouse/dialect.js';
import { deleteWindowSql, insertFromStageSql, supersedeSql } from '../warehouse/sql.js';
import { bigqueryDialect, bigqueryType, convert, stageType, bqTable, type BqTableRef, type LoadFormat } from './dialect.js';

export interface CommitSqlOptions {
  readonly late: boolean;
  /** Stage rows to insert: false when the commit has no parts (the window is only emptied). */
  readonly insert: boolean;
  readonly format: LoadFormat;
  /** The target's column types as they are now (upper case, standard names). */
  readonly targetTypes?: ReadonlyMap<string, string>;
}

/** The window's bounds are @window_start/@window_end: their values come from windowParams(). */
const NO_WINDOW = { start: 0, end: 0 };

/**
 * The commit's one multi-statement transaction: the window emptied (not for
 * late parts), the stage's rows inserted (late ones only when their
 * request_id is new), the window's request_ids removed from other windows,
 * all or nothing.
 */
export function commitSql(target: BqTableRef, stage: BqTableRef, layout: TableLayout, o: CommitSqlOptions): string {
  const d = bigqueryDialect(o.format);
  const stmts = ['BEGIN TRANSACTION;'];
  if (!o.late) stmts.push(`${deleteWindowSql(d, target, layout.mode, NO_WINDOW).text};`);
  if (o.insert) {
    const ins = insertFromStageSql(d, {
      target, stage: bqTable(stage), layout, window: NO_WINDOW, late: o.late, params: new Params('named'),
      value: (c, expr) => convert(expr, stageType(c.type, o.format), o.targetTypes?.get(c.name.toLowerCase()) ?? bigqueryType(c.type, o.format)),
    });
    stmts.push(`${ins.text};`);
    const sup = supersedeSql(d, target, layout, NO_WINDOW, o.late);
    if (sup) stmts.push(`${sup.text};`);
  }
  stmts.push('COMMIT TRANSACTION;');
  return stmts.join('\n');
}

/**
 * What `check` dry-runs against an existing target: a DML statement that
 * touches nothing (bigquery.tables.updateData), then the commit's own window
 * DELETE and request_id rule as they would run on this table, so a table they
 * cannot run on fails `check`, not the nightly run.
 */
export function checkSql(target: BqTableRef, columns: readonly string[]): string[] {
  const d = bigqueryDialect('jsonl');
  const has = (n: string) => columns.includes(n);
  const mode = has('timestamp') ? 'timestamp' : has(WINDOW_START) ? 'tagged' : null;
  const out = [`DELETE FROM ${bqTable(target)} WHERE FALSE`];
  if (!mode) return out;
  const layout: TableLayout = { columns: [], recordColumns: [], mode, keyed: mode === 'timestamp' && has('request_id') };
  out.push(deleteWindowSql(d, target, mode, NO_WINDOW).text);
  const sup = supersedeSql(d, target, layout, NO_WINDOW, false);
  if (sup) out.push(sup.text);
  return out;
}
