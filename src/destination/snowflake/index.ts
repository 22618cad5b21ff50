import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type * as SnowflakeSdk from 'snowflake-sdk';
import { CliError, ExitCode, configError, isUnreachable, scrubMessage, type ExitCodeValue } from '../../errors.js';
import type { FieldType } from '../../record/fields.js';
import { isoMs } from '../../util/time.js';
import { tableLayout, WINDOW_END, WINDOW_START, type TableColumn, type TableLayout } from '../sql-table.js';
import type { CommitInfo, Destination, DestinationEnv, DestinationFactory, PartInfo, PartUpload } from '../types.js';
import { openSpool } from '../spool.js';
import type { SnowflakeConfig } from './schema.js';

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
 * `BEGIN; DELETE window; INSERT INTO target SELECT … FROM stage; COMMIT`
 * moves the rows: JSON text becomes VARIANT by TRY_PARSE_JSON (neither a
 * VALUES list nor a plain COPY can do that; text that is not JSON, a malformed
 * cell, stays a VARIANT string), late rows skip request_ids already
 * present, aggregated rows get their window. Any failure rolls back: the
 * target is never half-loaded. DDL (CREATE TABLE, ADD COLUMN, the temporary
 * stage) runs before BEGIN, since Snowflake commits a transaction on DDL.
 */

const DEFAULT_INSERT_MAX_ROWS = 10_000;
/**
 * Bind values per INSERT: below the driver's array-binding threshold
 * (100,000), past which it would upload the binds to a stage of its own.
 */
const MAX_BINDS = 50_000;
/** And the bound text of one INSERT stays far below Snowflake's request size limits. */
const MAX_BATCH_CHARS = 8 << 20;
const STAGE_DIR = 'bifrost_logs';

const SF_TYPES: Record<FieldType, string> = {
  timestamp: 'TIMESTAMP_TZ',
  string: 'VARCHAR',
  int32: 'INTEGER',
  int64: 'INTEGER',
  double: 'FLOAT',
  bool: 'BOOLEAN',
  json: 'VARIANT',
};

export function snowflakeType(t: FieldType): string {
  return SF_TYPES[t];
}

/** The stage holds JSON as its text (parsed into VARIANT by the INSERT). */
export function snowflakeStageType(t: FieldType): string {
  return t === 'json' ? 'VARCHAR' : SF_TYPES[t];
}

/**
 * Columns are upper-cased and quoted: reserved words (`timestamp`) are safe,
 * and unquoted queries (`select request_id from …`) still find them.
 */
export function sfColumn(name: string): string {
  return `"${name.toUpperCase().replace(/"/g, '""')}"`;
}

export interface SfTableRef { readonly database: string; readonly schema: string; readonly table: string }

/** `DB.SCHEMA.TABLE`: config identifiers are plain (validated), so unquoted, as Snowflake users write them. */
export function sfTable(t: SfTableRef): string {
  return `${t.database}.${t.schema}.${t.table}`;
}

/**
 * The login user's stage (`@~`), in a folder of this target and run. A table stage needs the
 * table's OWNERSHIP; the user stage needs no grant (see README Decisions).
 */
export function sfTableStage(t: SfTableRef, runId: string): string {
  const folder = `${STAGE_DIR}_${t.database}_${t.schema}_${t.table}_${runId}`.replace(/[^\w.-]/g, '_');
  return `@~/${folder}/`;
}

export function createTableSql(t: SfTableRef, columns: readonly TableColumn[]): string {
  return `CREATE TABLE IF NOT EXISTS ${sfTable(t)} (${columns.map((c) => `${sfColumn(c.name)} ${snowflakeType(c.type)}`).join(', ')})`;
}

/** One ALTER per new column: Snowflake adds them only if missing. */
export function addColumnsSql(t: SfTableRef, columns: readonly TableColumn[]): string[] {
  return columns.map((c) => `ALTER TABLE ${sfTable(t)} ADD COLUMN IF NOT EXISTS ${sfColumn(c.name)} ${snowflakeType(c.type)}`);
}

export function createStageSql(stage: SfTableRef, columns: readonly TableColumn[]): string {
  return `CREATE OR REPLACE TEMPORARY TABLE ${sfTable(stage)} (${columns.map((c) => `${sfColumn(c.name)} ${snowflakeStageType(c.type)}`).join(', ')})`;
}

export const COLUMNS_SQL = (database: string) => `SELECT COLUMN_NAME, DATA_TYPE FROM ${database}.INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`;

export interface SfStatement { readonly sqlText: string; readonly binds: (string | null)[] }

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

/** The window condition on the target, bound to the window's bounds. */
export function windowCondition(layout: Pick<TableLayout, 'mode'>): string {
  return layout.mode === 'timestamp'
    ? `${sfColumn('timestamp')} >= TO_TIMESTAMP_TZ(?) AND ${sfColumn('timestamp')} < TO_TIMESTAMP_TZ(?)`
    : `${sfColumn(WINDOW_START)} = TO_TIMESTAMP_TZ(?) AND ${sfColumn(WINDOW_END)} = TO_TIMESTAMP_TZ(?)`;
}

export function deleteWindowSql(t: SfTableRef, layout: Pick<TableLayout, 'mode'>, w: { start: number; end: number }): SfStatement {
  return { sqlText: `DELETE FROM ${sfTable(t)} WHERE ${windowCondition(layout)}`, binds: [isoMs(w.start), isoMs(w.end)] };
}

/**
 * Moves the stage into the target: JSON text through TRY_PARSE_JSON into VARIANT
 * columns (kept as text where an existing column is not VARIANT), aggregated
 * rows tagged with their window, late rows only when their request_id is new.
 */
export function insertFromStageSql(
  t: SfTableRef, stage: SfTableRef, layout: TableLayout, o: { late: boolean; window: { start: number; end: number }; targetTypes?: ReadonlyMap<string, string> },
): SfStatement {
  const binds: string[] = [];
  const select = layout.columns.map((c) => {
    if (c.window) { binds.push(isoMs(c.window === 'start' ? o.window.start : o.window.end)); return 'TO_TIMESTAMP_TZ(?)'; }
    const col = `s.${sfColumn(c.name)}`;
    if (c.type !== 'json') return col;
    const existing = o.targetTypes?.get(c.name.toUpperCase());
    // A malformed cell is exported as its text: kept as a VARIANT string rather than failing the window.
    return existing && existing !== 'VARIANT' ? col : `COALESCE(TRY_PARSE_JSON(${col}), TO_VARIANT(${col}))`;
  });
  let sqlText = `INSERT INTO ${sfTable(t)} (${layout.columns.map((c) => sfColumn(c.name)).join(', ')}) SELECT ${select.join(', ')} FROM ${sfTable(stage)} s`;
  if (o.late && layout.keyed) {
    const rid = sfColumn('request_id');
    sqlText += ` WHERE NOT EXISTS (SELECT 1 FROM ${sfTable(t)} x WHERE x.${rid} = s.${rid})`;
  }
  return { sqlText, binds };
}

export function countWindowSql(t: SfTableRef, hasTimestamp: boolean, w: { start: number; end: number }): SfStatement {
  const cond = hasTimestamp
    ? `${sfColumn('timestamp')} >= TO_TIMESTAMP_TZ(?) AND ${sfColumn('timestamp')} < TO_TIMESTAMP_TZ(?)`
    : `${sfColumn(WINDOW_START)} >= TO_TIMESTAMP_TZ(?) AND ${sfColumn(WINDOW_END)} <= TO_TIMESTAMP_TZ(?)`;
  return { sqlText: `SELECT COUNT(*) AS N FROM ${sfTable(t)} WHERE ${cond}`, binds: [isoMs(w.start), isoMs(w.end)] };
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

type Sdk = typeof SnowflakeSdk;
type Connection = SnowflakeSdk.Connection;
type SfError = Error & { code?: number | string; sqlState?: string; isFatal?: boolean };

/** The private key as unencrypted PKCS#8 PEM (what the driver signs its JWT with). */
export async function loadPrivateKey(cfg: SnowflakeConfig['credentials']): Promise<string | undefined> {
  let pem = cfg.private_key;
  let from = 'credentials.private_key';
  if (!pem && cfg.private_key_path) {
    from = cfg.private_key_path;
    try {
      pem = await readFile(cfg.private_key_path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw configError('read the Snowflake private key', `${cfg.private_key_path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
    }
  }
  if (!pem) return undefined;
  try {
    const key = createPrivateKey({ key: pem.replace(/\\n/g, '\n'), format: 'pem', ...(cfg.private_key_passphrase ? { passphrase: cfg.private_key_passphrase } : {}) });
    return key.export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch (err) {
    // Never echo the key: only what is wrong with it.
    const why = /passphrase|decrypt|bad decrypt/i.test((err as Error).message) ? 'cannot be decrypted (check private_key_passphrase)' : 'is not a PEM private key';
    throw configError('read the Snowflake private key', `${from} ${why}`, 'a PKCS#8 PEM key, as made by `openssl genrsa 2048 | openssl pkcs8 -topk8 -nocrypt`');
  }
}

/** The driver's connection options from the config (`access_url` overrides the account's URL). */
export function connectionOptions(cfg: SnowflakeConfig, privateKey: string | undefined): SnowflakeSdk.ConnectionOptions {
  const o: SnowflakeSdk.ConnectionOptions = {
    account: cfg.account,
    username: cfg.credentials.username,
    database: cfg.database,
    schema: cfg.schema,
    application: 'bifrost_logs',
    sfRetryMaxLoginRetries: 3,
    // No answer within request_timeout_secs (default 60) fails the request.
    timeout: Math.round((cfg.request_timeout_secs ?? 60) * 1000),
    arrayBindingThreshold: 100_000,
  };
  if (cfg.access_url) o.accessUrl = cfg.access_url.replace(/\/+$/, '');
  if (cfg.warehouse) o.warehouse = cfg.warehouse;
  if (cfg.role) o.role = cfg.role;
  if (privateKey) {
    o.authenticator = 'SNOWFLAKE_JWT';
    o.privateKey = privateKey;
  } else {
    o.password = cfg.credentials.password;
  }
  return o;
}

interface Staged { readonly path: string; readonly file: string }

class SnowflakeDestination implements Destination {
  readonly type = 'snowflake';
  readonly kind = 'table' as const;
  readonly loadFormat = 'parquet' as const;
  private readonly ref: SfTableRef;
  private readonly stage: SfTableRef;
  private readonly runId = randomBytes(4).toString('hex');
  private readonly where: string;
  private readonly secrets: string[];
  private readonly staged = new Map<string, Staged>();
  private conn: Connection | null = null;
  private connecting: Promise<Connection> | null = null;
  private partNo = 0;

  constructor(private readonly cfg: SnowflakeConfig, private readonly sdk: Sdk, private readonly privateKey: string | undefined, private readonly env: DestinationEnv) {
    this.ref = { database: cfg.database, schema: cfg.schema, table: cfg.table };
    this.stage = { ...this.ref, table: `${cfg.table}__STAGE_${this.runId.toUpperCase()}` };
    this.where = `snowflake://${cfg.credentials.username}@${cfg.access_url ? cfg.access_url.replace(/^https?:\/\//, '').replace(/\/.*$/, '') : cfg.account} ${sfTable(this.ref)}`;
    this.secrets = [cfg.credentials.password, cfg.credentials.private_key, cfg.credentials.private_key_passphrase, privateKey]
      .filter((s): s is string => typeof s === 'string' && s.length >= 4);
  }

  /** A driver message without credentials, on one line. */
  private scrub(msg: string): string {
    // Snowflake's messages span lines ("SQL compilation error:\nTable … does not exist"): one line.
    let m = msg;
    for (const s of this.secrets) m = m.split(s).join('***');
    return scrubMessage(scrubMessage(m).trim().replace(/\s*\n\s*/g, ' '));
  }

  /** A driver error as "could not <action> (<where>): <why>", with its exit code. */
  fail(action: string, err: unknown): CliError {
    if (err instanceof CliError) return err;
    const e = err as SfError;
    const code = String(e?.code ?? '');
    const state = String(e?.sqlState ?? '');
    const why = this.scrub(String(e?.message ?? err) || 'unknown error');
    const full = `${action} (${this.where})`;
    const make = (exitCode: ExitCodeValue, hint?: string) => new CliError(full, why, { exitCode, hint, cause: err });
    if (['390100', '390101', '390102', '390144', '390318', '390422', '394304', '390190', '390432'].includes(code) || state === '28000' || /incorrect username or password|JWT token is invalid/i.test(why)) {
      return make(ExitCode.config, 'check credentials.username and the password or key pair (ALTER USER … SET RSA_PUBLIC_KEY)');
    }
    if (code === '000606' || /no active warehouse/i.test(why)) return make(ExitCode.config, 'set warehouse: (or a default warehouse for the user)');
    if (['002003', '002043', '003001', '002037', '390189', '390201'].includes(code) || state === '02000' || state === '42S02' || state === '42501' || /does not exist or not authorized|insufficient privileges/i.test(why)) {
      return make(ExitCode.config, 'check database, schema and table, and grant the role USAGE on them, CREATE TABLE on the schema and SELECT/INSERT/DELETE on the table');
    }
    if (state.startsWith('22') || ['100038', '100035', '100071', '100069'].includes(code)) {
      return make(ExitCode.dataErr, 'a value does not fit its column; run again with --verbose to see which, and report it (values are adapted to fit their columns)');
    }
    if (['401001', '402001', '401002', '402002', '401003', '405501', '405502', '405503'].includes(code) || isUnreachable(err) || /ECONN|ETIMEDOUT|ENOTFOUND|socket hang up|Network error/i.test(why)) {
      return make(ExitCode.unavailable, 'is the account URL (or access_url) reachable from this machine?');
    }
    if (/timeout|throttl|too many/i.test(why)) return make(ExitCode.tempFail);
    return make(ExitCode.unavailable);
  }

  private async connection(): Promise<Connection> {
    if (this.conn?.isUp()) return this.conn;
    if (this.connecting) return this.connecting;
    this.connecting = new Promise<Connection>((resolveConn, reject) => {
      let c: Connection;
      try {
        c = this.sdk.createConnection(connectionOptions(this.cfg, this.privateKey));
      } catch (err) {
        reject(this.fail('connect to snowflake', err));
        return;
      }
      c.connect((err) => (err ? reject(this.fail('connect to snowflake', err)) : resolveConn(c)));
    });
    try {
      this.conn = await this.connecting;
      return this.conn;
    } finally {
      this.connecting = null;
    }
  }

  /** One statement; rows as objects keyed by upper-cased column names. */
  private exec<R = Record<string, unknown>>(c: Connection, sqlText: string, binds?: SnowflakeSdk.Binds): Promise<R[]> {
    this.env.signal?.throwIfAborted();
    return new Promise<R[]>((res, rej) => {
      c.execute({
        sqlText,
        ...(binds && binds.length ? { binds } : {}),
        complete: (err, _stmt, rows) => (err ? rej(err) : res((rows ?? []) as R[])),
      });
    });
  }

  /** The target's columns (upper-cased name → data type), empty when it does not exist. */
  private async columns(c: Connection): Promise<Map<string, string>> {
    const rows = await this.exec<{ COLUMN_NAME: string; DATA_TYPE: string }>(c, COLUMNS_SQL(this.ref.database), [this.ref.schema.toUpperCase(), this.ref.table.toUpperCase()]);
    return new Map(rows.map((r) => [String(r.COLUMN_NAME).toUpperCase(), String(r.DATA_TYPE).toUpperCase()]));
  }

  async check(): Promise<void> {
    const c = await this.connection();
    try {
      // The large-window path: PUT a probe file to the stage, then REMOVE it.
      const probeFile = await openSpool(this.env.tmpDir, `snowflake_${this.runId}_check.parquet`, 'snowflake');
      await probeFile.write(Buffer.from('PAR1'));
      await probeFile.close();
      try {
        const r = await this.exec<Record<string, unknown>>(c, putSql(probeFile.path, this.ref, `${this.runId}_check`));
        const status = String(r[0]?.status ?? r[0]?.STATUS ?? '').toUpperCase();
        if (status !== 'UPLOADED' && status !== 'SKIPPED') throw new Error(`PUT of a probe file answered ${status || 'nothing'}`);
        await this.exec(c, removeSql(this.ref, `${this.runId}_check`));
      } finally {
        await probeFile.discard();
      }
      // Every run creates its stage table in the schema: a TEMPORARY table (visible to this session
      // only) proves CREATE TABLE there, and the target's creation when it is missing.
      const probe = { ...this.ref, table: `${this.cfg.table}__CHECK_${this.runId.toUpperCase()}` };
      await this.exec(c, `CREATE TEMPORARY TABLE ${sfTable(probe)} (PROBE INTEGER)`);
      await this.exec(c, `DROP TABLE IF EXISTS ${sfTable(probe)}`);
      if ((await this.columns(c)).size) {
        // The commit's DELETE and INSERT … SELECT on the target, on no rows and rolled back.
        const t = sfTable(this.ref);
        await this.exec(c, 'BEGIN');
        try {
          await this.exec(c, `DELETE FROM ${t} WHERE 1 = 0`);
          await this.exec(c, `INSERT INTO ${t} SELECT * FROM ${t} WHERE 1 = 0`);
        } finally {
          await this.exec(c, 'ROLLBACK').catch(() => {});
        }
      }
    } catch (err) {
      throw this.fail('check snowflake', err);
    }
  }

  async openPart(part: PartInfo): Promise<PartUpload> {
    if (part.format !== 'parquet' || part.contentEncoding) {
      throw new CliError('load into snowflake', `parts must be uncompressed parquet (got ${part.format}${part.contentEncoding ? `, ${part.contentEncoding}` : ''})`, { exitCode: ExitCode.software });
    }
    this.staged.delete(part.key);
    const file = `snowflake_${this.runId}_${++this.partNo}.parquet`;
    const spool = await openSpool(this.env.tmpDir, file, 'snowflake');
    return {
      write: (chunk) => spool.write(chunk),
      finish: async () => {
        await spool.close();
        this.staged.set(part.key, { path: spool.path, file });
      },
      abort: () => spool.discard(),
    };
  }

  /** CREATE TABLE IF NOT EXISTS, then the missing columns; returns the columns' types. */
  private async ensureTarget(c: Connection, layout: TableLayout): Promise<Map<string, string>> {
    let cols = await this.columns(c);
    if (!cols.size) {
      await this.exec(c, createTableSql(this.ref, layout.columns));
      cols = await this.columns(c);
    }
    const missing = layout.columns.filter((col) => !cols.has(col.name.toUpperCase()));
    if (missing.length) {
      for (const s of addColumnsSql(this.ref, missing)) await this.exec(c, s);
      this.env.log.verbose(`snowflake: added ${missing.map((m) => m.name).join(', ')} to ${sfTable(this.ref)}`);
      cols = await this.columns(c);
    }
    return cols;
  }

  async commit(c: CommitInfo): Promise<void> {
    const layout = tableLayout(c.schema, c.aggregated);
    const parts: { key: string; rows: number; staged: Staged }[] = [];
    let putDone = false;
    let conn: Connection | null = null;
    let stageCreated = false;
    try {
      for (const p of c.parts) {
        const s = this.staged.get(p.key);
        if (!s) throw new CliError(`load into snowflake (${this.where})`, `part ${p.key} was not staged by this run`, { exitCode: ExitCode.software });
        if (p.rows > 0) parts.push({ key: p.key, rows: p.rows, staged: s });
      }
      if (c.late && !parts.length) return;
      conn = await this.connection();
      const rows = parts.reduce((a, p) => a + p.rows, 0);
      let step = 'create or alter the table';
      try {
        const targetTypes = await this.ensureTarget(conn, layout);
        if (parts.length) {
          step = 'create the temporary stage table';
          await this.exec(conn, createStageSql(this.stage, layout.recordColumns));
          stageCreated = true;
          const path = loadPath(rows, this.cfg.insert_max_rows ?? DEFAULT_INSERT_MAX_ROWS);
          if (path === 'insert') {
            step = 'insert the rows into the stage';
            await this.insertParts(conn, layout.recordColumns, parts.map((p) => p.staged.path));
          } else {
            step = 'PUT the parts to the table stage';
            putDone = true;
            for (const p of parts) {
              const r = await this.exec<Record<string, unknown>>(conn, putSql(p.staged.path, this.ref, this.runId));
              const status = String(r[0]?.status ?? r[0]?.STATUS ?? 'UPLOADED').toUpperCase();
              if (status !== 'UPLOADED') throw new CliError(`PUT ${basename(p.staged.path)} (${this.where})`, `status ${status}`, { exitCode: ExitCode.unavailable });
            }
            step = 'COPY the parts into the stage';
            await this.exec(conn, copySql(this.stage, this.ref, this.runId, parts.map((p) => p.staged.file)));
          }
          const n = await this.exec<{ N: number | string }>(conn, `SELECT COUNT(*) AS N FROM ${sfTable(this.stage)}`);
          const got = Number(n[0]?.N ?? NaN);
          if (got !== rows) {
            throw new CliError(`load into snowflake (${this.where})`, `the stage holds ${got} rows, the parts ${rows}`, { exitCode: ExitCode.software });
          }
          this.env.log.verbose(`snowflake: ${rows} rows staged by ${path === 'insert' ? 'array-bound INSERT' : 'PUT + COPY'}`);
        }
        step = 'load the window into the table';
        await this.exec(conn, 'BEGIN');
        try {
          if (!c.late) {
            const del = deleteWindowSql(this.ref, layout, c.window);
            await this.exec(conn, del.sqlText, del.binds);
          }
          if (parts.length) {
            const ins = insertFromStageSql(this.ref, this.stage, layout, { late: c.late, window: c.window, targetTypes });
            await this.exec(conn, ins.sqlText, ins.binds);
          }
          await this.exec(conn, 'COMMIT');
        } catch (err) {
          await this.exec(conn, 'ROLLBACK').catch(() => {});
          throw err;
        }
        this.env.log.verbose(`snowflake: window ${isoMs(c.window.start)} → ${isoMs(c.window.end)} committed to ${sfTable(this.ref)}`);
      } catch (err) {
        throw this.fail(step, err);
      }
    } finally {
      if (conn && stageCreated) await this.exec(conn, `DROP TABLE IF EXISTS ${sfTable(this.stage)}`).catch(() => {});
      if (conn && putDone) {
        await this.exec(conn, removeSql(this.ref, this.runId)).catch((err: unknown) => this.env.log.warn(`could not REMOVE the staged files ${sfTableStage(this.ref, this.runId)}: ${this.scrub((err as Error).message ?? String(err))}`));
      }
      for (const p of c.parts) {
        const s = this.staged.get(p.key);
        this.staged.delete(p.key);
        if (s) await rm(s.path, { force: true }).catch(() => {});
      }
    }
  }

  /** Decodes the Parquet parts and sends them as array-bound INSERT batches into the stage. */
  private async insertParts(c: Connection, columns: readonly TableColumn[], paths: readonly string[]): Promise<void> {
    const { parquetReadObjects } = await import('hyparquet');
    const sql = insertValuesSql(this.stage, columns);
    const perStmt = rowsPerInsert(columns.length);
    let batch: (string | null)[][] = [];
    let chars = 0;
    const flush = async () => {
      if (!batch.length) return;
      await this.exec(c, sql, batch);
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

  async countWindow(w: { start: number; end: number }): Promise<number> {
    const c = await this.connection();
    try {
      const cols = await this.columns(c);
      if (!cols.size) return 0;
      const s = countWindowSql(this.ref, cols.has('TIMESTAMP'), w);
      const r = await this.exec<{ N: number | string }>(c, s.sqlText, s.binds);
      return Number(r[0]?.N ?? 0);
    } catch (err) {
      throw this.fail('count the window in snowflake', err);
    }
  }

  async close(): Promise<void> {
    for (const s of this.staged.values()) await rm(s.path, { force: true }).catch(() => {});
    this.staged.clear();
    const c = this.conn;
    this.conn = null;
    if (c) await new Promise<void>((r) => c.destroy(() => r()));
  }
}

let configured = false;

/** The driver logs to ./snowflake.log by default: its messages go to --verbose instead, scrubbed. */
function configureDriver(sdk: Sdk, env: DestinationEnv): void {
  if (configured) return;
  configured = true;
  const out = (m: string) => env.log.verbose(`snowflake-sdk: ${scrubMessage(String(m)).split('\n')[0]}`);
  sdk.configure({ logLevel: 'WARN', additionalLogToConsole: false, customLogger: { error: out, warn: out, info: out, debug: out, trace: out } });
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
