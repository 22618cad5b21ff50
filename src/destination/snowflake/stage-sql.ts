import { resolve } from 'node:path';
import type { TableColumn, TableLayout, Window } from '../warehouse/layout.js';
import { createTableSql, insertFromStageSql } from '../warehouse/sql.js';
import type { Statement } from '../warehouse/dialect.js';
import { SNOWFLAKE_DIALECT, SNOWFLAKE_STAGE_DIALECT, sfColumn, sfTable, type SfTableRef } from './dialect.js';

const DEFAULT_INSERT_MAX_ROWS = 10_000;
/**
 * Bind values per INSERT: below the driver's array-binding threshold
 * (100,000), past which it would upload the binds to a stage of its own.
 */
const MAX_BINDS = 50_000;
const STAGE_DIR = 'bifrost_logs';

/**
 * The login user's stage (`@~`), in a folder of this target and run. A table stage needs the
 * table's OWNERSHIP; the user stage needs no grant (see README Decisions).
 */
export function sfTableStage(t: SfTableRef, runId: string): string {
  const folder = `${STAGE_DIR}_${t.database}_${t.schema}_${t.table}_${runId}`.replace(/[^\w.-]/g, '_');
  return `@~/${folder}/`;
}

export function createStageSql(stage: SfTableRef, columns: readonly TableColumn[]): string {
  return createTableSql(SNOWFLAKE_STAGE_DIALECT, stage, columns, undefined, 'CREATE OR REPLACE TEMPORARY TABLE');
}

export const COLUMNS_SQL = (database: string) => `SELECT COLUMN_NAME, DATA_TYPE FROM ${database}.INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`;

/** `INSERT INTO stage (…) VALUES (?, …)`, bound with an array of rows. */
export function insertValuesSql(stage: SfTableRef, columns: readonly TableColumn[]): string {
  return `INSERT INTO ${sfTable(stage)} (${columns.map((c) => sfColumn(c.name)).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
}

export function putSql(localPath: string, t: SfTableRef, runId: string): string {
  const url = `file://${resolve(localPath).replace(/\\/g, '/')}`;
  const src = /^[\w./:@+-]+$/.test(url) ? url : `'${url.replace(/'/g, "\\'")}'`;
  return `PUT ${src} ${sfTableStage(t, runId)} AUTO_COMPRESS = FALSE OVERWRITE = TRUE`;
}

export function copySql(stage: SfTableRef, t: SfTableRef, runId: string, files: readonly string[]): string {
  return [
    `COPY INTO ${sfTable(stage)} FROM ${sfTableStage(t, runId)}`,
    `FILES = (${files.map((f) => `'${f.replace(/'/g, "''")}'`).join(', ')})`,
    `FILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE)`,
    `MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE ON_ERROR = ABORT_STATEMENT`,
  ].join(' ');
}

export function removeSql(t: SfTableRef, runId: string): string {
  return `REMOVE ${sfTableStage(t, runId)}`;
}

/**
 * Moves the stage into the target: JSON text through TRY_PARSE_JSON into VARIANT
 * columns (kept as text where an existing column is not VARIANT), aggregated
 * rows tagged with their window, late rows only when their request_id is new.
 */
export function moveStageSql(t: SfTableRef, stage: SfTableRef, layout: TableLayout, o: { late: boolean; window: Window; targetTypes?: ReadonlyMap<string, string> }): Statement {
  return insertFromStageSql(SNOWFLAKE_DIALECT, {
    target: t, stage: sfTable(stage), layout, window: o.window, late: o.late,
    value: (c, expr) => {
      if (c.type !== 'json') return expr;
      const existing = o.targetTypes?.get(c.name.toUpperCase());
      return existing && existing !== 'VARIANT' ? expr : SNOWFLAKE_DIALECT.jsonFromText(expr);
    },
  });
}

/** Which way a commit fills the stage. */
export function loadPath(rows: number, insertMaxRows = DEFAULT_INSERT_MAX_ROWS): 'insert' | 'copy' {
  return rows <= insertMaxRows ? 'insert' : 'copy';
}

/** Rows per array-bound INSERT. */
export function rowsPerInsert(columns: number): number {
  return Math.max(1, Math.floor(MAX_BINDS / Math.max(1, columns)));
}

/** A record value as bound text: Snowflake casts it to the stage column's type. */
export function bindValue(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}
