import type pg from 'pg';
import { CliError, ExitCode, destinationError, isUnreachable, scrubMessage } from '../../errors.js';
import type { WarehouseDialect } from './dialect.js';
import type { TableColumn, TableLayout, Window } from './layout.js';
import { addColumnsSql, countWindowSql, createTableSql } from './sql.js';
import { evolveTable } from './staging.js';

/**
 * What the PostgreSQL-wire warehouses (postgres, redshift) share: a query
 * function over a `pg` client, the catalog, the table's evolution, the access
 * check and the error mapping.
 */

export interface TableRef {
  readonly schema: string;
  readonly table: string;
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

/** `"schema"."table"`. */
export function qualified(t: TableRef): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
}

/** A query function: the one thing the shared logic needs from a driver. */
export type Query = <R extends Record<string, unknown> = Record<string, unknown>>(text: string, values?: unknown[]) => Promise<{ rows: R[] }>;

export function asQuery(client: pg.Client): Query {
  return (async (text: string, values?: unknown[]) => client.query(text, values)) as Query;
}

export const COLUMNS_SQL = 'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2';

/** The table's existing columns (name → lower-cased information_schema data_type), empty when it does not exist. */
export async function existingColumns(q: Query, d: WarehouseDialect<TableRef>, t: TableRef): Promise<Map<string, string>> {
  const r = await q<{ column_name: string; data_type: string }>(COLUMNS_SQL, [d.catalogName(t.schema), d.catalogName(t.table)]);
  return new Map(r.rows.map((x) => [x.column_name, x.data_type.toLowerCase()]));
}

/** Creates the table when missing and adds the layout's new columns; returns the columns it now has. */
export function ensureTable(q: Query, d: WarehouseDialect<TableRef>, t: TableRef, layout: TableLayout): Promise<Map<string, string>> {
  return evolveTable(layout, {
    columns: () => existingColumns(q, d, t),
    create: async (cols: readonly TableColumn[]) => { await q(createTableSql(d, t, cols)); },
    add: async (cols: readonly TableColumn[]) => { for (const s of addColumnsSql(d, t, cols)) await q(s); },
    fold: (n) => d.catalogName(n),
  });
}

/** Rows of a window now in the table (0 when it does not exist). */
export async function countWindowIn(q: Query, d: WarehouseDialect<TableRef>, t: TableRef, w: Window): Promise<number> {
  const cols = await existingColumns(q, d, t);
  if (!cols.size) return 0;
  const s = countWindowSql(d, t, cols.has('timestamp'), w);
  const r = await q<{ n: string }>(s.text, s.values);
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * Proves the target is reachable and writable, leaving nothing visible: an
 * existing table needs SELECT/INSERT/DELETE; a missing one is created in a
 * transaction that is rolled back (which proves the schema exists and takes
 * CREATE). Runs on a fresh client, closed afterwards.
 */
export async function checkTableAccess(client: pg.Client, statementTimeout: string, d: WarehouseDialect<TableRef>, t: TableRef): Promise<void> {
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query(`SET statement_timeout = ${statementTimeout}`);
    const q = asQuery(client);
    const cols = await existingColumns(q, d, t);
    if (cols.size) {
      const name = quoteLiteral(`${quoteIdent(d.catalogName(t.schema))}.${quoteIdent(d.catalogName(t.table))}`);
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
  } finally {
    await client.end().catch(() => {});
  }
}

/** Runs `body` in a transaction on `client`; any failure rolls back and is mapped by sqlError. */
export async function inTransaction<T>(client: pg.Client, action: string, where: string, body: (q: Query) => Promise<T>, begun = false): Promise<T> {
  const q = asQuery(client);
  try {
    if (!begun) await q('BEGIN');
    const out = await body(q);
    await q('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw sqlError(action, err, where);
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
