import { CliError, ExitCode, destinationError, isUnreachable, scrubMessage } from '../errors.js';
import type { FieldType, RecordSchema } from '../record/fields.js';
import { isoMs } from '../util/time.js';

/**
 * Typed tables for SQL warehouses, shared by the postgres and redshift
 * destinations (and usable by any other PostgreSQL-wire warehouse):
 * column types from the export schema, CREATE/ALTER that only ever add,
 * and the window DELETE that makes a re-delivered window idempotent.
 *
 * Every builder here is pure (text + values); the callers run them.
 */

/** The SQL flavour a table is written in. */
export interface SqlDialect {
  readonly name: 'postgres' | 'redshift';
  /** The column type of a field type. */
  columnType(t: FieldType): string;
  /** `ALTER TABLE … ADD COLUMN IF NOT EXISTS a, ADD COLUMN IF NOT EXISTS b` (PostgreSQL); else one plain ADD COLUMN per statement (Redshift). */
  readonly addColumnIfNotExists: boolean;
  /** Raw tables get a unique index on request_id (PostgreSQL; Redshift has no indexes). */
  readonly uniqueRequestId: boolean;
  /** Unquoted and quoted identifiers are folded to lower case (Redshift's default). */
  readonly foldsCase: boolean;
}

const PG_TYPES: Record<FieldType, string> = {
  timestamp: 'TIMESTAMPTZ',
  string: 'TEXT',
  int32: 'INTEGER',
  int64: 'BIGINT',
  double: 'DOUBLE PRECISION',
  bool: 'BOOLEAN',
  json: 'JSONB',
};

export const POSTGRES_DIALECT: SqlDialect = {
  name: 'postgres',
  columnType: (t) => PG_TYPES[t],
  addColumnIfNotExists: true,
  uniqueRequestId: true,
  foldsCase: false,
};

/**
 * Redshift: TEXT would mean VARCHAR(256) there, so strings are VARCHAR(65535)
 * (the largest, same as VARCHAR(MAX), and also valid PostgreSQL). JSON is
 * SUPER when loaded by COPY from S3 (`json: 'SUPER'`), and VARCHAR(65535)
 * holding the JSON text on the INSERT path, which must also run on plain
 * PostgreSQL.
 */
export function redshiftDialect(json: 'SUPER' | 'VARCHAR(65535)'): SqlDialect {
  const types: Record<FieldType, string> = { ...PG_TYPES, string: 'VARCHAR(65535)', json };
  return { name: 'redshift', columnType: (t) => types[t], addColumnIfNotExists: false, uniqueRequestId: false, foldsCase: true };
}

/** `"name"`, with embedded quotes doubled. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `'text'`, with embedded quotes doubled (for the few places a parameter cannot go). */
export function quoteLiteral(text: string): string {
  if (text.includes('\0')) throw new Error('a SQL literal cannot hold a NUL character');
  return `'${text.replace(/'/g, "''")}'`;
}

export interface TableRef {
  readonly schema: string;
  readonly table: string;
}

/** `"schema"."table"`. */
export function qualified(t: TableRef): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
}

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
  /** Raw records keyed by request_id (unique on PostgreSQL; late rows skip ids already present). */
  readonly keyed: boolean;
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

export interface SqlStatement {
  readonly text: string;
  readonly values: unknown[];
}

/** `CREATE TABLE IF NOT EXISTS` with every column nullable. */
export function createTableSql(d: SqlDialect, t: TableRef, columns: readonly TableColumn[]): string {
  return `CREATE TABLE IF NOT EXISTS ${qualified(t)} (${columns.map((c) => `${quoteIdent(c.name)} ${d.columnType(c.type)}`).join(', ')})`;
}

/** New fields become new nullable columns; nothing is ever dropped or retyped. */
export function addColumnsSql(d: SqlDialect, t: TableRef, columns: readonly TableColumn[]): string[] {
  if (!columns.length) return [];
  if (d.addColumnIfNotExists) {
    return [`ALTER TABLE ${qualified(t)} ${columns.map((c) => `ADD COLUMN IF NOT EXISTS ${quoteIdent(c.name)} ${d.columnType(c.type)}`).join(', ')}`];
  }
  return columns.map((c) => `ALTER TABLE ${qualified(t)} ADD COLUMN ${quoteIdent(c.name)} ${d.columnType(c.type)}`);
}

/** The name of the unique index on request_id (PostgreSQL truncates past 63 bytes, consistently). */
export function requestIdIndexName(t: TableRef): string {
  return `${t.table}_request_id_key`;
}

export function uniqueIndexSql(t: TableRef): string {
  return `CREATE UNIQUE INDEX IF NOT EXISTS ${quoteIdent(requestIdIndexName(t))} ON ${qualified(t)} (${quoteIdent('request_id')})`;
}

/** The bounds of a window as timestamptz parameters. */
export function windowValues(w: { start: number; end: number }): [string, string] {
  return [isoMs(w.start), isoMs(w.end)];
}

/** Removes a window's rows before it is loaded again (inside the load's transaction). */
export function deleteWindowSql(t: TableRef, mode: WindowMode, w: { start: number; end: number }): SqlStatement {
  const cond = mode === 'timestamp'
    ? `${quoteIdent('timestamp')} >= $1::timestamptz AND ${quoteIdent('timestamp')} < $2::timestamptz`
    : `${quoteIdent(WINDOW_START)} = $1::timestamptz AND ${quoteIdent(WINDOW_END)} = $2::timestamptz`;
  return { text: `DELETE FROM ${qualified(t)} WHERE ${cond}`, values: windowValues(w) };
}

/**
 * Rows of a window now in the table (for `verify`): by timestamp when the
 * table has one, else the tagged windows inside [start, end).
 */
export function countWindowSql(t: TableRef, hasTimestamp: boolean, w: { start: number; end: number }): SqlStatement {
  const cond = hasTimestamp
    ? `${quoteIdent('timestamp')} >= $1::timestamptz AND ${quoteIdent('timestamp')} < $2::timestamptz`
    : `${quoteIdent(WINDOW_START)} >= $1::timestamptz AND ${quoteIdent(WINDOW_END)} <= $2::timestamptz`;
  return { text: `SELECT count(*) AS n FROM ${qualified(t)} WHERE ${cond}`, values: windowValues(w) };
}

/** Looks a name up the way the server stores it. */
export function catalogName(d: SqlDialect, name: string): string {
  return d.foldsCase ? name.toLowerCase() : name;
}

export const COLUMNS_SQL = 'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2';

/** A query function: the one thing the shared logic needs from a driver. */
export type Query = <R extends Record<string, unknown> = Record<string, unknown>>(text: string, values?: unknown[]) => Promise<{ rows: R[] }>;

/** The table's existing columns (lower-cased name → information_schema data_type), empty when it does not exist. */
export async function existingColumns(q: Query, d: SqlDialect, t: TableRef): Promise<Map<string, string>> {
  const r = await q<{ column_name: string; data_type: string }>(COLUMNS_SQL, [catalogName(d, t.schema), catalogName(d, t.table)]);
  return new Map(r.rows.map((x) => [x.column_name, x.data_type.toLowerCase()]));
}

/**
 * Creates the table when missing and adds the layout's new columns (only
 * those really missing, so an unchanged table takes no ALTER lock); on
 * PostgreSQL also the unique index on request_id. Returns the columns the
 * table now has, with their types.
 */
export async function ensureTable(q: Query, d: SqlDialect, t: TableRef, layout: TableLayout): Promise<Map<string, string>> {
  let cols = await existingColumns(q, d, t);
  if (!cols.size) {
    await q(createTableSql(d, t, layout.columns));
    cols = await existingColumns(q, d, t);
  } else {
    const missing = layout.columns.filter((c) => !cols.has(catalogName(d, c.name)));
    if (missing.length) {
      for (const s of addColumnsSql(d, t, missing)) await q(s);
      cols = await existingColumns(q, d, t);
    }
  }
  if (d.uniqueRequestId && layout.keyed) {
    const r = await q(`SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 AND indexname = $3`, [t.schema, t.table, requestIdIndexName(t).slice(0, 63)]);
    if (!r.rows.length) await q(uniqueIndexSql(t));
  }
  return cols;
}

/**
 * Proves the target is reachable and writable, leaving nothing visible: an
 * existing table needs SELECT/INSERT/DELETE; a missing one is created in a
 * transaction that is rolled back (which proves the schema exists and takes
 * CREATE). The caller runs this on a fresh connection.
 */
export async function checkTableAccess(q: Query, d: SqlDialect, t: TableRef): Promise<void> {
  const cols = await existingColumns(q, d, t);
  if (cols.size) {
    const name = quoteLiteral(`${quoteIdent(catalogName(d, t.schema))}.${quoteIdent(catalogName(d, t.table))}`);
    const r = await q<{ ok: boolean }>(`SELECT has_table_privilege(${name}, 'SELECT') AND has_table_privilege(${name}, 'INSERT') AND has_table_privilege(${name}, 'DELETE') AS ok`);
    if (!r.rows[0]?.ok) {
      throw new CliError('check the table', `no SELECT/INSERT/DELETE privilege on ${t.schema}.${t.table}`, { exitCode: ExitCode.config, hint: 'GRANT SELECT, INSERT, DELETE on the table to this user' });
    }
    return;
  }
  await q('BEGIN');
  try {
    await q(`CREATE TABLE ${qualified({ schema: t.schema, table: `${t.table}_bifrost_logs_check` })} (probe INTEGER)`);
  } finally {
    await q('ROLLBACK').catch(() => {});
  }
}

/** SQLSTATEs that mean "fix the config", not "try again later". */
const CONFIG_STATES: Record<string, string> = {
  '28P01': 'check the user name and password',
  '28000': 'check the user name, password and pg_hba/network policy',
  '3D000': 'check the database name',
  '3F000': 'check the schema name (it must exist)',
  '42501': 'grant this user CREATE on the schema, or SELECT/INSERT/DELETE on the table',
  '42P01': 'check the schema and table names',
};

/**
 * A driver error as one line: "could not <action> (<where>): <why>" with the
 * password never in it. Bad credentials, a missing database or schema and
 * missing privileges exit 78; network failures 69; bad data 65.
 */
export function sqlError(action: string, err: unknown, where: string): CliError {
  if (err instanceof CliError) return err;
  const e = err as { code?: string; message?: string };
  const code = typeof e?.code === 'string' ? e.code : '';
  const msg = scrubMessage(String(e?.message ?? err).split('\n')[0] || 'unknown error');
  const full = `${action} (${where})`;
  if (CONFIG_STATES[code]) return new CliError(full, msg, { exitCode: ExitCode.config, hint: CONFIG_STATES[code], cause: err });
  if (code === '23505' || code === '21000') {
    return new CliError(full, msg, { exitCode: ExitCode.dataErr, hint: 'request_id values repeat: a request_id anonymized to a constant (redact) cannot key the table; drop it or use hash', cause: err });
  }
  if (/^(22|23)/.test(code)) return new CliError(full, msg, { exitCode: ExitCode.dataErr, hint: 'a value does not fit its column; run again with --verbose to see which, and report it (values are adapted to fit their columns)', cause: err });
  if (isUnreachable(err) || /timeout|terminat|Connection ended|ECONN|socket/i.test(msg) || /^(08|57P)/.test(code)) {
    return new CliError(full, msg, { exitCode: ExitCode.unavailable, hint: 'is the server running and reachable from here?', cause: err });
  }
  return destinationError(full, err);
}
