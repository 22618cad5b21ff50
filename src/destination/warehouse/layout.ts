import { CliError, ExitCode } from '../../errors.js';
import type { FieldType, RecordSchema } from '../../record/fields.js';
import { isoMs } from '../../util/time.js';

/**
 * The table a commit loads into, the same on every warehouse: the record's
 * fields as nullable columns, and how its rows belong to a window.
 */

export const WINDOW_START = 'window_start';
export const WINDOW_END = 'window_end';

export interface TableColumn {
  readonly name: string;
  readonly type: FieldType;
  /** Filled from the commit's window, not from the record. */
  readonly window?: 'start' | 'end';
}

/** How a table's rows belong to a window. */
export type WindowMode =
  /** Raw records: the window is a range of their `timestamp`. */
  | 'timestamp'
  /** Aggregated rows (or records without a timestamp): tagged with window_start/window_end. */
  | 'tagged';

export interface TableLayout {
  readonly columns: readonly TableColumn[];
  /** The columns that come from the record, in schema order. */
  readonly recordColumns: readonly TableColumn[];
  readonly mode: WindowMode;
  /** Raw records keyed by request_id: the table holds each once (see README Decisions). */
  readonly keyed: boolean;
}

export interface Window { readonly start: number; readonly end: number }

/** The bounds of a window as ISO text (timestamp parameters). */
export function windowValues(w: Window): [string, string] {
  return [isoMs(w.start), isoMs(w.end)];
}

/**
 * The columns of a commit's table. Raw records keep their fields; a record
 * without a `timestamp` (aggregated exports, or --fields without it) gets
 * `window_start`/`window_end` so its window can still be replaced whole.
 */
export function tableLayout(schema: RecordSchema, aggregated: boolean): TableLayout {
  const recordColumns: TableColumn[] = schema.map((f) => ({ name: f.name, type: f.type }));
  const hasTs = !aggregated && schema.some((f) => f.name === 'timestamp' && f.type === 'timestamp');
  const mode: WindowMode = hasTs ? 'timestamp' : 'tagged';
  const columns = [...recordColumns];
  if (mode === 'tagged') {
    for (const n of [WINDOW_START, WINDOW_END]) {
      if (recordColumns.some((c) => c.name === n)) {
        throw new CliError('set up the table', `the record already has a field named "${n}", which the table uses for the window`, { exitCode: ExitCode.config, hint: 'rename or drop that field' });
      }
    }
    columns.push({ name: WINDOW_START, type: 'timestamp', window: 'start' }, { name: WINDOW_END, type: 'timestamp', window: 'end' });
  }
  const keyed = !aggregated && recordColumns.some((c) => c.name === 'request_id');
  return { columns, recordColumns, mode, keyed };
}

/** The layout's columns the table does not have yet (`have`: names as `fold` spells them). */
export function missingColumns(layout: TableLayout, have: ReadonlyMap<string, string>, fold: (name: string) => string): TableColumn[] {
  return layout.columns.filter((c) => !have.has(fold(c.name)));
}
