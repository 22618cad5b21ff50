import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CliError, ExitCode } from '../../errors.js';
import type { TableColumn } from '../warehouse/layout.js';
import type { Connection, SnowflakeSession } from './connection.js';
import { sfTable, type SfTableRef } from './dialect.js';
import { bindValue, copySql, insertValuesSql, putSql, rowsPerInsert } from './stage-sql.js';

/** And the bound text of one INSERT stays far below Snowflake's request size limits. */
const MAX_BATCH_CHARS = 8 << 20;

export interface StagedFile { readonly path: string; readonly file: string }

/** Decodes the Parquet parts and sends them as array-bound INSERT batches into the stage. */
export async function insertParts(s: SnowflakeSession, c: Connection, stage: SfTableRef, columns: readonly TableColumn[], paths: readonly string[]): Promise<void> {
  const { parquetReadObjects } = await import('hyparquet');
  const sql = insertValuesSql(stage, columns);
  const perStmt = rowsPerInsert(columns.length);
  let batch: (string | null)[][] = [];
  let chars = 0;
  const flush = async () => {
    if (!batch.length) return;
    await s.exec(c, sql, batch);
    batch = [];
    chars = 0;
  };
  for (const path of paths) {
    const buf = await readFile(path);
    const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    const rows = await parquetReadObjects({
      file,
      compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gunzipSync(input)) },
    });
    for (const r of rows) {
      const row = columns.map((col) => bindValue((r as Record<string, unknown>)[col.name]));
      for (const v of row) chars += v?.length ?? 4;
      batch.push(row);
      if (batch.length >= perStmt || chars >= MAX_BATCH_CHARS) await flush();
    }
  }
  await flush();
}

/** PUTs the parts to the user stage (folder of this target and run) and COPYs them into the stage table. */
export async function putAndCopy(s: SnowflakeSession, c: Connection, o: { target: SfTableRef; stage: SfTableRef; runId: string; files: readonly StagedFile[]; step(name: string): void }): Promise<void> {
  o.step('PUT the parts to the table stage');
  for (const f of o.files) {
    const r = await s.exec<Record<string, unknown>>(c, putSql(f.path, o.target, o.runId));
    const status = String(r[0]?.status ?? r[0]?.STATUS ?? 'UPLOADED').toUpperCase();
    if (status !== 'UPLOADED') throw new CliError(`PUT ${basename(f.path)} (${s.where})`, `status ${status}`, { exitCode: ExitCode.unavailable });
  }
  o.step('COPY the parts into the stage');
  await s.exec(c, copySql(o.stage, o.target, o.runId, o.files.map((f) => f.file)));
}

/** The stage must hold exactly the parts' rows before the window moves. */
export async function checkStageRows(s: SnowflakeSession, c: Connection, stage: SfTableRef, rows: number): Promise<void> {
  const n = await s.exec<{ N: number | string }>(c, `SELECT COUNT(*) AS N FROM ${sfTable(stage)}`);
  const got = Number(n[0]?.N ?? NaN);
  if (got !== rows) throw new CliError(`load into snowflake (${s.where})`, `the stage holds ${got} rows, the parts ${rows}`, { exitCode: ExitCode.software });
}
