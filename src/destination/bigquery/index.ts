import { randomBytes } from 'node:crypto';
import type { TableMetadata } from '@google-cloud/bigquery';
import { CliError, ExitCode, scrubMessage } from '../../errors.js';
import type { RecordSchema } from '../../record/fields.js';
import { isoMs } from '../../util/time.js';
import { tableLayout } from '../warehouse/layout.js';
import { countWindowSql } from '../warehouse/sql.js';
import { StagedParts, assertLoadFormat, spoolPart } from '../warehouse/staging.js';
import type { CommitInfo, Destination, DestinationEnv, DestinationFactory, PartInfo, PartUpload } from '../types.js';
import { createBigQueryClient, readServiceAccountKey } from './client.js';
import { checkSql, commitSql } from './commit-sql.js';
import { bigqueryDialect, bqTable, stageType, tableFields, windowParams, type BqTableRef, type LoadFormat } from './dialect.js';
import { ensureTarget } from './target.js';
import { statusOf } from './errors.js';
import { BigQueryApi } from './jobs.js';
import type { BigQueryConfig } from './schema.js';

export { bigqueryOptions, createBigQueryClient, readServiceAccountKey } from './client.js';
export { commitSql, type CommitSqlOptions } from './commit-sql.js';
export { bigqueryType, bqIdent, bqTable, normalizeBqType, stageType, tableFields, targetTableMetadata, windowParams, type BqTableRef } from './dialect.js';
export { jobError } from './errors.js';

/**
 * BigQuery. Each part is spooled to a local file and loaded by a load job
 * (never streaming inserts) into a per-run staging table
 * `<table>__stage_<run id>` (WRITE_APPEND, expiring after a day should the
 * run die). `commit` is one multi-statement transaction: DELETE the window
 * from the target, INSERT … SELECT from the stage (late parts: only
 * request_ids not yet present), DELETE the window's request_ids from other
 * windows, COMMIT; then the stage is dropped. The target is created from the
 * record schema when missing (raw records partitioned by DAY on `timestamp`,
 * aggregated rows on `window_start`), and new fields are added as NULLABLE
 * columns.
 *
 * JSON fields: NDJSON parts (the default) carry them as nested JSON, loaded
 * into JSON columns. Parquet parts carry them as UTF8 text, which is not always
 * JSON (a malformed cell is exported as its text), so with Parquet they are
 * STRING columns holding that text.
 */

const STAGE_TTL_MS = 24 * 3_600_000;

interface StagedPart { readonly jobId: string; readonly outputRows?: number }

class BigQueryDestination implements Destination {
  readonly type = 'bigquery';
  readonly kind = 'table' as const;
  readonly loadFormat: LoadFormat;
  private readonly target: BqTableRef;
  private readonly stageRef: BqTableRef;
  private readonly where: string;
  private readonly api: BigQueryApi;
  /** Part key → its load job, for parts loaded into the stage since the last commit. */
  private readonly staged: StagedParts<StagedPart>;
  /** The stage exists (created by this run, dropped at each commit). */
  private stageReady: Promise<void> | null = null;
  private partNo = 0;

  constructor(private readonly cfg: BigQueryConfig, bq: ReturnType<typeof createBigQueryClient>, private readonly env: DestinationEnv) {
    const runId = randomBytes(4).toString('hex');
    this.loadFormat = cfg.load_format ?? 'jsonl';
    this.target = { projectId: cfg.project_id, datasetId: cfg.dataset, tableId: cfg.table };
    this.stageRef = { ...this.target, tableId: `${cfg.table}__stage_${runId}` };
    this.where = `${cfg.project_id}.${cfg.dataset}.${cfg.table}`;
    this.api = new BigQueryApi(bq, cfg, env, runId, this.where);
    this.staged = new StagedParts('bigquery', () => this.where);
  }

  async check(): Promise<void> {
    const ds = this.api.bq.dataset(this.cfg.dataset, { projectId: this.cfg.project_id });
    try {
      await this.api.call(() => ds.getMetadata(), { attempts: 3 });
    } catch (err) {
      throw this.api.fail('read the dataset', err);
    }
    let meta: TableMetadata | null;
    try {
      meta = await this.api.metadata(this.target);
    } catch (err) {
      throw this.api.fail('read the table', err);
    }
    // Every run creates its staging table in the dataset, loads it and drops it: a probe table made
    // the same way (it expires on its own) proves bigquery.tables.create, its removal
    // bigquery.tables.delete. Dry runs of the commit's DML prove bigquery.jobs.create (load jobs
    // need no more) and bigquery.tables.updateData, on the probe (where the stage and a new target
    // live) and on an existing target (there the commit's own window DELETE and request_id rule
    // too), without changing anything.
    const probe = { ...this.stageRef, tableId: `${this.stageRef.tableId}_check` };
    try {
      await this.api.createTable(probe, {
        schema: { fields: [{ name: 'probe', type: 'INTEGER' }] }, expirationTime: String(Date.now() + STAGE_TTL_MS), labels: { created_by: 'bifrost-logs', purpose: 'staging' },
      });
    } catch (err) {
      throw this.api.fail('create a staging table', err);
    }
    const statements = [`DELETE FROM ${bqTable(probe)} WHERE FALSE`, ...(meta ? checkSql(this.target, (meta.schema?.fields ?? []).map((f) => String(f.name).toLowerCase())) : [])];
    let dryErr: unknown;
    try {
      for (const sql of statements) await this.api.dryRun(sql, windowParams({ start: 0, end: 3_600_000 }));
    } catch (err) {
      dryErr = err;
    }
    try {
      await this.api.call(async () => {
        try { await this.api.table(probe).delete(); } catch (err) { if (statusOf(err) !== 404) throw err; }
      }, { attempts: 3 });
    } catch (err) {
      if (!dryErr) throw this.api.fail('drop a staging table', err);
    }
    if (dryErr) throw this.api.fail('dry-run a query', dryErr);
  }

  /** Creates this run's staging table (once per commit cycle); it expires on its own should the run die. */
  private ensureStage(schema: RecordSchema): Promise<void> {
    this.stageReady ??= (async () => {
      const columns = schema.map((f) => ({ name: f.name, type: f.type }));
      const meta: TableMetadata = {
        schema: { fields: tableFields(columns, (c) => stageType(c.type, this.loadFormat)) },
        expirationTime: String(Date.now() + STAGE_TTL_MS),
        labels: { created_by: 'bifrost-logs', purpose: 'staging' },
      };
      try {
        await this.api.createTable(this.stageRef, meta);
      } catch (err) {
        this.stageReady = null;
        throw this.api.fail('create the staging table', err);
      }
    })();
    return this.stageReady;
  }

  private async dropStage(): Promise<void> {
    if (!this.stageReady) return;
    this.stageReady = null;
    try {
      await this.api.call(async () => {
        try { await this.api.table(this.stageRef).delete(); } catch (err) { if (statusOf(err) !== 404) throw err; }
      }, { attempts: 3, signal: false });
    } catch (err) {
      this.env.log.warn(`could not drop the staging table ${this.stageRef.datasetId}.${this.stageRef.tableId} (it expires within a day): ${scrubMessage((err as Error).message ?? String(err))}`);
    }
  }

  async openPart(part: PartInfo): Promise<PartUpload> {
    assertLoadFormat(part, this.loadFormat, 'bigquery');
    this.staged.delete(part.key);
    return spoolPart(this.env, 'bigquery', `bigquery-${this.api.runId}-${++this.partNo}.${this.loadFormat === 'parquet' ? 'parquet' : 'jsonl'}`, {
      keep: false,
      done: async (spool) => {
        this.staged.set(part.key, spool.bytes > 0 ? await this.loadPart(part, spool.path) : { jobId: '', outputRows: 0 });
      },
      aborted: async () => {
        // The window's attempt is failing: the parts it already loaded must not meet the next attempt's.
        this.staged.clear();
        await this.dropStage();
      },
    });
  }

  /** One load job from the spooled file into the stage, waited for. */
  private async loadPart(part: PartInfo, path: string): Promise<StagedPart> {
    await this.ensureStage(part.schema);
    const stage = this.api.table(this.stageRef);
    const action = `load ${part.key} into the staging table`;
    const { job, meta } = await this.api.runJob('load', action, async (jobId) => {
      const [job] = await stage.createLoadJob(path, {
        jobId,
        sourceFormat: this.loadFormat === 'parquet' ? 'PARQUET' : 'NEWLINE_DELIMITED_JSON',
        writeDisposition: 'WRITE_APPEND',
        createDisposition: 'CREATE_NEVER',
        ignoreUnknownValues: false,
        maxBadRecords: 0,
        schema: { fields: tableFields(part.schema.map((f) => ({ name: f.name, type: f.type })), (c) => stageType(c.type, this.loadFormat)) },
        ...(this.loadFormat === 'parquet' ? { parquetOptions: { enableListInference: true } } : {}),
      });
      return job;
    });
    const rows = Number(meta?.statistics?.load?.outputRows);
    this.env.log.verbose(`bigquery: job ${job.id} loaded ${Number.isFinite(rows) ? rows : '?'} rows of ${part.key} into ${this.stageRef.tableId}`);
    return { jobId: job.id ?? '', outputRows: Number.isFinite(rows) ? rows : undefined };
  }

  async commit(c: CommitInfo): Promise<void> {
    const layout = tableLayout(c.schema, c.aggregated);
    try {
      const staged = this.staged.take(c.parts);
      const stray = this.staged.keys().filter((k) => !c.parts.some((p) => p.key === k));
      if (stray.length) {
        // Rows of another attempt are in the stage: refuse rather than load them (the stage is dropped below).
        throw new CliError(`load into bigquery (${this.where})`, `the staging table also holds ${stray[0]}, which is not part of this window`, { exitCode: ExitCode.software, hint: 'run the export again: the window is re-delivered whole' });
      }
      const loaded = staged.some((s) => s.jobId !== '');
      if (c.late && !loaded) return;
      const targetTypes = await ensureTarget(this.api, this.target, layout, this.loadFormat, this.env.log);
      const sql = commitSql(this.target, this.stageRef, layout, { late: c.late, insert: loaded, format: this.loadFormat, targetTypes });
      await this.api.query('load the window into the table', sql, windowParams(c.window));
      this.env.log.verbose(`bigquery: window ${isoMs(c.window.start)} → ${isoMs(c.window.end)} committed to ${this.where}`);
    } finally {
      this.staged.clear();
      await this.dropStage();
    }
  }

  async countWindow(w: { start: number; end: number }): Promise<number> {
    let meta: TableMetadata | null;
    try {
      meta = await this.api.metadata(this.target);
    } catch (err) {
      throw this.api.fail('read the table', err);
    }
    if (!meta) return 0;
    const hasTs = (meta.schema?.fields ?? []).some((f) => f.name === 'timestamp');
    const job = await this.api.query('count the window', countWindowSql(bigqueryDialect(this.loadFormat), this.target, hasTs, w).text, windowParams(w));
    try {
      const [rows] = await this.api.call(() => job.getQueryResults({ maxResults: 1 }));
      return Number((rows[0] as { n?: unknown } | undefined)?.n ?? 0);
    } catch (err) {
      throw this.api.fail('count the window', err);
    }
  }

  async close(): Promise<void> {
    this.staged.clear();
    await this.dropStage();
  }
}

export const createBigQueryDestination: DestinationFactory = async (config: BigQueryConfig, env: DestinationEnv) => {
  const key = config.credentials ? await readServiceAccountKey(config.credentials.service_account_key) : undefined;
  return new BigQueryDestination(config, createBigQueryClient(config, key), env);
};
