import { randomBytes } from 'node:crypto';
import { configError } from '../../errors.js';
import { isoMs } from '../../util/time.js';
import { tableLayout, type TableLayout } from '../warehouse/layout.js';
import { addColumnsSql, countWindowSql, createTableSql, deleteWindowSql, supersedeSql } from '../warehouse/sql.js';
import { StagedParts, assertLoadFormat, evolveTable, removeSpooled, spoolPart } from '../warehouse/staging.js';
import { openSpool } from '../warehouse/spool.js';
import type { CommitInfo, Destination, DestinationEnv, DestinationFactory, PartInfo, PartUpload } from '../types.js';
import { SnowflakeSession, configureDriver, loadPrivateKey, type Connection, type Sdk } from './connection.js';
import { SNOWFLAKE_DIALECT, sfTable, type SfTableRef } from './dialect.js';
import { checkStageRows, insertParts, putAndCopy, type StagedFile } from './load.js';
import { COLUMNS_SQL, createStageSql, loadPath, moveStageSql, putSql, removeSql, sfTableStage } from './stage-sql.js';
import type { SnowflakeConfig } from './schema.js';

export { connectionOptions, loadPrivateKey } from './connection.js';
export { SNOWFLAKE_DIALECT, sfColumn, sfTable, snowflakeStageType, snowflakeType, type SfTableRef } from './dialect.js';
export { bindValue, copySql, createStageSql, insertValuesSql, loadPath, moveStageSql, putSql, removeSql, rowsPerInsert, sfTableStage } from './stage-sql.js';

const DEFAULT_INSERT_MAX_ROWS = 10_000;

/**
 * Snowflake (`snowflake-sdk`, one session per run). Parts are Parquet files
 * spooled under the state dir. `commit` fills a session TEMPORARY stage table
 * (invisible to everyone else) in one of two ways, chosen by the window's row
 * count:
 *
 *  - ≤ insert_max_rows (default 10,000): the parts are decoded and sent as
 *    array-bound `INSERT INTO stage VALUES (?, …)` batches;
 *  - more: `PUT file://… @~/bifrost_logs_<db>_<schema>_<table>_<run>/` (the
 *    user's stage) and `COPY INTO stage … FILE_FORMAT=(TYPE=PARQUET)
 *    MATCH_BY_COLUMN_NAME=CASE_INSENSITIVE`, the staged files REMOVEd after.
 *
 * The stage's row count is checked against the parts, then one transaction
 * `BEGIN; DELETE window; INSERT INTO target SELECT … FROM stage; DELETE the
 * window's request_ids from other windows; COMMIT` moves the rows: JSON text
 * becomes VARIANT by TRY_PARSE_JSON (neither a VALUES list nor a plain COPY
 * can do that; text that is not JSON, a malformed cell, stays a VARIANT
 * string), late rows skip request_ids already present, aggregated rows get
 * their window. Any failure rolls back: the target is never half-loaded. DDL
 * (CREATE TABLE, ADD COLUMN, the temporary stage) runs before BEGIN, since
 * Snowflake commits a transaction on DDL.
 */
class SnowflakeDestination implements Destination {
  readonly type = 'snowflake';
  readonly kind = 'table' as const;
  readonly loadFormat = 'parquet' as const;
  private readonly ref: SfTableRef;
  private readonly stage: SfTableRef;
  private readonly runId = randomBytes(4).toString('hex');
  private readonly staged: StagedParts<StagedFile>;
  private readonly s: SnowflakeSession;
  private partNo = 0;

  constructor(private readonly cfg: SnowflakeConfig, sdk: Sdk, privateKey: string | undefined, private readonly env: DestinationEnv) {
    this.ref = { database: cfg.database, schema: cfg.schema, table: cfg.table };
    this.stage = { ...this.ref, table: `${cfg.table}__STAGE_${this.runId.toUpperCase()}` };
    const where = `snowflake://${cfg.credentials.username}@${cfg.access_url ? cfg.access_url.replace(/^https?:\/\//, '').replace(/\/.*$/, '') : cfg.account} ${sfTable(this.ref)}`;
    this.s = new SnowflakeSession(cfg, sdk, privateKey, env, where);
    this.staged = new StagedParts('snowflake', () => where);
  }

  /** The target's columns (upper-cased name → data type), empty when it does not exist. */
  private async columns(c: Connection): Promise<Map<string, string>> {
    const rows = await this.s.exec<{ COLUMN_NAME: string; DATA_TYPE: string }>(c, COLUMNS_SQL(this.ref.database), [this.ref.schema.toUpperCase(), this.ref.table.toUpperCase()]);
    return new Map(rows.map((r) => [String(r.COLUMN_NAME).toUpperCase(), String(r.DATA_TYPE).toUpperCase()]));
  }

  async check(): Promise<void> {
    const c = await this.s.connection();
    try {
      // The large-window path: PUT a probe file to the stage, then REMOVE it.
      const probeFile = await openSpool(this.env.tmpDir, `snowflake_${this.runId}_check.parquet`, 'snowflake');
      await probeFile.write(Buffer.from('PAR1'));
      await probeFile.close();
      try {
        const r = await this.s.exec<Record<string, unknown>>(c, putSql(probeFile.path, this.ref, `${this.runId}_check`));
        const status = String(r[0]?.status ?? r[0]?.STATUS ?? '').toUpperCase();
        if (status !== 'UPLOADED' && status !== 'SKIPPED') throw new Error(`PUT of a probe file answered ${status || 'nothing'}`);
        await this.s.exec(c, removeSql(this.ref, `${this.runId}_check`));
      } finally {
        await probeFile.discard();
      }
      // Every run creates its stage table in the schema: a TEMPORARY table (visible to this session
      // only) proves CREATE TABLE there, and the target's creation when it is missing.
      const probe = { ...this.ref, table: `${this.cfg.table}__CHECK_${this.runId.toUpperCase()}` };
      await this.s.exec(c, `CREATE TEMPORARY TABLE ${sfTable(probe)} (PROBE INTEGER)`);
      await this.s.exec(c, `DROP TABLE IF EXISTS ${sfTable(probe)}`);
      if ((await this.columns(c)).size) {
        // The commit's DELETE and INSERT … SELECT on the target, on no rows and rolled back.
        const t = sfTable(this.ref);
        await this.s.exec(c, 'BEGIN');
        try {
          await this.s.exec(c, `DELETE FROM ${t} WHERE 1 = 0`);
          await this.s.exec(c, `INSERT INTO ${t} SELECT * FROM ${t} WHERE 1 = 0`);
        } finally {
          await this.s.exec(c, 'ROLLBACK').catch(() => {});
        }
      }
    } catch (err) {
      throw this.s.fail('check snowflake', err);
    }
  }

  async openPart(part: PartInfo): Promise<PartUpload> {
    assertLoadFormat(part, 'parquet', 'snowflake');
    this.staged.delete(part.key);
    const file = `snowflake_${this.runId}_${++this.partNo}.parquet`;
    return spoolPart(this.env, 'snowflake', file, { keep: true, done: async (spool) => { this.staged.set(part.key, { path: spool.path, file }); } });
  }

  /** CREATE TABLE IF NOT EXISTS, then the missing columns; returns the columns' types. */
  private ensureTarget(c: Connection, layout: TableLayout): Promise<Map<string, string>> {
    return evolveTable(layout, {
      columns: () => this.columns(c),
      create: async (cols) => { await this.s.exec(c, createTableSql(SNOWFLAKE_DIALECT, this.ref, cols)); },
      add: async (cols) => {
        for (const sql of addColumnsSql(SNOWFLAKE_DIALECT, this.ref, cols)) await this.s.exec(c, sql);
        this.env.log.verbose(`snowflake: added ${cols.map((m) => m.name).join(', ')} to ${sfTable(this.ref)}`);
      },
      fold: (n) => n.toUpperCase(),
    });
  }

  async commit(c: CommitInfo): Promise<void> {
    const layout = tableLayout(c.schema, c.aggregated);
    const parts: { rows: number; staged: StagedFile }[] = [];
    let putDone = false;
    let conn: Connection | null = null;
    let stageCreated = false;
    try {
      const staged = this.staged.take(c.parts);
      c.parts.forEach((p, i) => { if (p.rows > 0) parts.push({ rows: p.rows, staged: staged[i]! }); });
      if (c.late && !parts.length) return;
      conn = await this.s.connection();
      const rows = parts.reduce((a, p) => a + p.rows, 0);
      let step = 'create or alter the table';
      try {
        const targetTypes = await this.ensureTarget(conn, layout);
        if (parts.length) {
          step = 'create the temporary stage table';
          await this.s.exec(conn, createStageSql(this.stage, layout.recordColumns));
          stageCreated = true;
          const path = loadPath(rows, this.cfg.insert_max_rows ?? DEFAULT_INSERT_MAX_ROWS);
          if (path === 'insert') {
            step = 'insert the rows into the stage';
            await insertParts(this.s, conn, this.stage, layout.recordColumns, parts.map((p) => p.staged.path));
          } else {
            putDone = true;
            await putAndCopy(this.s, conn, { target: this.ref, stage: this.stage, runId: this.runId, files: parts.map((p) => p.staged), step: (n) => { step = n; } });
          }
          await checkStageRows(this.s, conn, this.stage, rows);
          this.env.log.verbose(`snowflake: ${rows} rows staged by ${path === 'insert' ? 'array-bound INSERT' : 'PUT + COPY'}`);
        }
        step = 'load the window into the table';
        await this.moveWindow(conn, layout, c, parts.length > 0, targetTypes);
        this.env.log.verbose(`snowflake: window ${isoMs(c.window.start)} → ${isoMs(c.window.end)} committed to ${sfTable(this.ref)}`);
      } catch (err) {
        throw this.s.fail(step, err);
      }
    } finally {
      if (conn && stageCreated) await this.s.exec(conn, `DROP TABLE IF EXISTS ${sfTable(this.stage)}`).catch(() => {});
      if (conn && putDone) {
        await this.s.exec(conn, removeSql(this.ref, this.runId)).catch((err: unknown) => this.env.log.warn(`could not REMOVE the staged files ${sfTableStage(this.ref, this.runId)}: ${this.s.scrub((err as Error).message ?? String(err))}`));
      }
      const paths = c.parts.map((p) => this.staged.get(p.key)?.path);
      for (const p of c.parts) this.staged.delete(p.key);
      await removeSpooled(paths);
    }
  }

  /** The window's one transaction: DELETE the window, INSERT from the stage, the request_id rule. */
  private async moveWindow(conn: Connection, layout: TableLayout, c: CommitInfo, insert: boolean, targetTypes: Map<string, string>): Promise<void> {
    const stmts = [
      ...(c.late ? [] : [deleteWindowSql(SNOWFLAKE_DIALECT, this.ref, layout.mode, c.window)]),
      ...(insert ? [moveStageSql(this.ref, this.stage, layout, { late: c.late, window: c.window, targetTypes })] : []),
      ...(insert ? [supersedeSql(SNOWFLAKE_DIALECT, this.ref, layout, c.window, c.late)] : []),
    ];
    await this.s.exec(conn, 'BEGIN');
    try {
      for (const st of stmts) if (st) await this.s.exec(conn, st.text, st.values);
      await this.s.exec(conn, 'COMMIT');
    } catch (err) {
      await this.s.exec(conn, 'ROLLBACK').catch(() => {});
      throw err;
    }
  }

  async countWindow(w: { start: number; end: number }): Promise<number> {
    const c = await this.s.connection();
    try {
      const cols = await this.columns(c);
      if (!cols.size) return 0;
      const st = countWindowSql(SNOWFLAKE_DIALECT, this.ref, cols.has('TIMESTAMP'), w);
      const r = await this.s.exec<{ N: number | string }>(c, st.text, st.values);
      return Number(r[0]?.N ?? 0);
    } catch (err) {
      throw this.s.fail('count the window in snowflake', err);
    }
  }

  async close(): Promise<void> {
    await removeSpooled(this.staged.values().map((s) => s.path));
    this.staged.clear();
    await this.s.close();
  }
}

export const createSnowflakeDestination: DestinationFactory = async (config: SnowflakeConfig, env: DestinationEnv) => {
  const creds = config.credentials;
  if (!creds.password && !creds.private_key && !creds.private_key_path) {
    throw configError('set up snowflake', 'credentials need a password, private_key or private_key_path', 'credentials: { username: env.SNOWFLAKE_USER, password: env.SNOWFLAKE_PASSWORD }');
  }
  const privateKey = await loadPrivateKey(creds);
  // At load, the driver would probe cloud metadata endpoints and call AWS STS with whatever AWS
  // credentials are around (telemetry only), and the AWS SDK it brings prints a Node 20 notice to stderr.
  process.env.SNOWFLAKE_DISABLE_PLATFORM_DETECTION ??= 'true';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const sdk = ((await import('snowflake-sdk')) as unknown as { default: Sdk }).default;
  configureDriver(sdk, env);
  return new SnowflakeDestination(config, sdk, privateKey, env);
};
