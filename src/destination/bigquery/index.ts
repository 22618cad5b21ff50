import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { BigQuery, type BigQueryOptions, type Job, type Table, type TableField, type TableMetadata } from '@google-cloud/bigquery';
import { CliError, ExitCode, configError, destinationError, scrubMessage, type ExitCodeValue } from '../../errors.js';
import type { FieldType, RecordSchema } from '../../record/fields.js';
import { withRetry } from '../../run/retry.js';
import { isoMs } from '../../util/time.js';
import { tableLayout, WINDOW_END, WINDOW_START, type TableColumn, type TableLayout } from '../sql-table.js';
import type { CommitInfo, Destination, DestinationEnv, DestinationFactory, PartInfo, PartUpload } from '../types.js';
import { readServiceAccountKey as readGoogleKey, type ServiceAccountKey } from '../google-key.js';
import { openSpool } from '../spool.js';
import { abortError } from '../object-store.js';
import type { BigQueryConfig } from './schema.js';

/**
 * BigQuery. Each part is spooled to a local file and loaded by a load job
 * (never streaming inserts) into a per-run staging table
 * `<table>__stage_<run id>` (WRITE_APPEND, expiring after a day should the
 * run die). `commit` is one multi-statement transaction: DELETE the window
 * from the target, INSERT … SELECT from the stage (late parts: only
 * request_ids not yet present), COMMIT; then the stage is dropped. The
 * target is created from the record schema when missing (raw records
 * partitioned by DAY on `timestamp`, aggregated rows on `window_start`), and
 * new fields are added as NULLABLE columns.
 *
 * JSON fields: NDJSON parts (the default) carry them as nested JSON, loaded
 * into JSON columns. Parquet parts carry them as UTF8 text, which is not always
 * JSON (a malformed cell is exported as its text), so with Parquet they are
 * STRING columns holding that text.
 */

type SaKey = ServiceAccountKey;

const STAGE_TTL_MS = 24 * 3_600_000;
const POLL_MIN_MS = 100;
const POLL_MAX_MS = 2_000;
/** A job that is not DONE by then is reported (and left to BigQuery, which finishes or fails it). */
const JOB_TIMEOUT_MS = 6 * 3_600_000;

const BQ_TYPES: Record<FieldType, string> = {
  timestamp: 'TIMESTAMP',
  string: 'STRING',
  int32: 'INT64',
  int64: 'INT64',
  double: 'FLOAT64',
  bool: 'BOOL',
  json: 'JSON',
};

/** The legacy names the API answers with, to the standard ones. */
const TYPE_ALIASES: Record<string, string> = { INTEGER: 'INT64', FLOAT: 'FLOAT64', BOOLEAN: 'BOOL' };
export const normalizeBqType = (t: string | undefined): string => {
  const u = String(t ?? '').toUpperCase();
  return TYPE_ALIASES[u] ?? u;
};

/**
 * The column type of a field in the target table. JSON fields are JSON
 * columns when loaded from NDJSON, which carries them as JSON. Parquet carries
 * them as text, and that text is not always JSON (a malformed cell is exported
 * as it is), so with Parquet they are STRING columns holding the text
 * (SAFE.PARSE_JSON reads them); an existing JSON column is filled by SAFE.PARSE_JSON,
 * text that is not JSON kept as a JSON string.
 */
export function bigqueryType(t: FieldType, format: 'jsonl' | 'parquet' = 'jsonl'): string {
  return t === 'json' && format === 'parquet' ? 'STRING' : BQ_TYPES[t];
}

/** The column type of a field in the staging table: what the load format carries. */
export function stageType(t: FieldType, format: 'jsonl' | 'parquet'): string {
  return bigqueryType(t, format);
}

/** `` `name` `` (field names are letters, digits and _; backticks are refused anyway). */
export function bqIdent(name: string): string {
  if (/[`\\\n]/.test(name)) throw configError('set up the BigQuery table', `"${name}" cannot be a column name`);
  return `\`${name}\``;
}

export interface BqTableRef { readonly projectId: string; readonly datasetId: string; readonly tableId: string }

/** `` `project.dataset.table` ``. */
export function bqTable(t: BqTableRef): string {
  return `\`${t.projectId}.${t.datasetId}.${t.tableId}\``;
}

/** The schema fields of a table's columns (all NULLABLE). */
export function tableFields(columns: readonly TableColumn[], typeOf: (c: TableColumn) => string): TableField[] {
  return columns.map((c) => ({ name: c.name, type: typeOf(c), mode: 'NULLABLE' }));
}

/** Creation metadata of the target: partitioned by DAY on its time column. */
export function targetTableMetadata(layout: TableLayout, format: 'jsonl' | 'parquet' = 'jsonl'): TableMetadata {
  return {
    schema: { fields: tableFields(layout.columns, (c) => bigqueryType(c.type, format)) },
    timePartitioning: { type: 'DAY', field: layout.mode === 'timestamp' ? 'timestamp' : WINDOW_START },
    labels: { created_by: 'bifrost-logs' },
  };
}

/** The @window_start/@window_end TIMESTAMP parameters. */
export function windowParams(w: { start: number; end: number }): Record<string, Date> {
  return { window_start: new Date(w.start), window_end: new Date(w.end) };
}

/** The window condition, with @window_start/@window_end TIMESTAMP parameters. */
function windowCondition(layout: Pick<TableLayout, 'mode'>): string {
  return layout.mode === 'timestamp'
    ? `${bqIdent('timestamp')} >= @window_start AND ${bqIdent('timestamp')} < @window_end`
    : `${bqIdent(WINDOW_START)} = @window_start AND ${bqIdent(WINDOW_END)} = @window_end`;
}

/** How a stage value becomes a target value of an (existing) column type. */
function convert(expr: string, from: string, to: string | undefined): string {
  if (!to || from === to) return expr;
  // Text that is not JSON (a malformed cell, exported as it is) is kept as a JSON string, never fails the load.
  if (to === 'JSON' && from === 'STRING') return `IF(${expr} IS NULL, NULL, COALESCE(SAFE.PARSE_JSON(${expr}), TO_JSON(${expr})))`;
  if (to === 'STRING' && from === 'JSON') return `TO_JSON_STRING(${expr})`;
  return expr;
}

export interface CommitSqlOptions {
  readonly late: boolean;
  /** Stage rows to insert: false when the commit has no parts (the window is only emptied). */
  readonly insert: boolean;
  readonly format: 'jsonl' | 'parquet';
  /** The target's column types as they are now (upper case, standard names). */
  readonly targetTypes?: ReadonlyMap<string, string>;
}

/**
 * The commit's one multi-statement transaction: the window emptied (not for
 * late parts), the stage's rows inserted (late ones only when their
 * request_id is new), all or nothing.
 */
export function commitSql(target: BqTableRef, stage: BqTableRef, layout: TableLayout, o: CommitSqlOptions): string {
  const stmts = ['BEGIN TRANSACTION;'];
  if (!o.late) stmts.push(`DELETE FROM ${bqTable(target)} WHERE ${windowCondition(layout)};`);
  if (o.insert) {
    const cols = layout.columns.map((c) => bqIdent(c.name));
    const select = layout.columns.map((c) => {
      if (c.window) return c.window === 'start' ? '@window_start' : '@window_end';
      return convert(`s.${bqIdent(c.name)}`, stageType(c.type, o.format), o.targetTypes?.get(c.name.toLowerCase()) ?? bigqueryType(c.type, o.format));
    });
    let sql = `INSERT INTO ${bqTable(target)} (${cols.join(', ')}) SELECT ${select.join(', ')} FROM ${bqTable(stage)} AS s`;
    if (o.late && layout.keyed) {
      sql += ` WHERE NOT EXISTS (SELECT 1 FROM ${bqTable(target)} AS t WHERE t.${bqIdent('request_id')} = s.${bqIdent('request_id')})`;
    }
    stmts.push(`${sql};`);
  }
  stmts.push('COMMIT TRANSACTION;');
  return stmts.join('\n');
}

/** `SELECT COUNT(*)` of a window: by timestamp, or the tagged windows inside it. */
export function countSql(target: BqTableRef, hasTimestamp: boolean): string {
  const cond = hasTimestamp
    ? `${bqIdent('timestamp')} >= @window_start AND ${bqIdent('timestamp')} < @window_end`
    : `${bqIdent(WINDOW_START)} >= @window_start AND ${bqIdent(WINDOW_END)} <= @window_end`;
  return `SELECT COUNT(*) AS n FROM ${bqTable(target)} WHERE ${cond}`;
}

/** `service_account_key` is the key's JSON text, or the path of a key file. */
export const readServiceAccountKey = (value: string): Promise<SaKey> => readGoogleKey(value, 'BigQuery');

/**
 * The client options from the config. `api_endpoint` (an emulator, a test
 * server, a private endpoint) replaces https://bigquery.googleapis.com. With a
 * service-account key, requests to a custom endpoint carry a self-signed JWT
 * (no token server is needed); without one, ADC is used when it is available
 * and requests go unauthenticated otherwise (what local emulators expect).
 */
export function bigqueryOptions(cfg: BigQueryConfig, key: SaKey | undefined): BigQueryOptions {
  // Retries are ours (withRetry, and whole jobs again): the SDK's own would multiply them.
  const o: BigQueryOptions = { projectId: cfg.project_id, autoRetry: false, maxRetries: 0, userAgent: 'bifrost-logs' };
  // The service's request deadline (passed through to every API request; not in the SDK's option type).
  (o as { timeout?: number }).timeout = requestTimeoutMs(cfg);
  if (cfg.location) o.location = cfg.location;
  if (key) o.credentials = { client_email: key.client_email, private_key: key.private_key };
  if (cfg.api_endpoint) o.apiEndpoint = cfg.api_endpoint.replace(/\/+$/, '');
  return o;
}

/** Every API request must be answered within request_timeout_secs (default 60). */
const requestTimeoutMs = (cfg: BigQueryConfig) => Math.round((cfg.request_timeout_secs ?? 60) * 1000);
/** An upload (a load job's file, sent whole) may take ten times as long before its answer. */
const uploadTimeoutMs = (cfg: BigQueryConfig) => 10 * requestTimeoutMs(cfg);

export function createBigQueryClient(cfg: BigQueryConfig, key: SaKey | undefined): BigQuery {
  const bq = new BigQuery(bigqueryOptions(cfg, key));
  if (key && cfg.api_endpoint) {
    const auth = (bq as unknown as { authClient?: { useJWTAccessWithScope?: boolean } }).authClient;
    if (auth) auth.useJWTAccessWithScope = true;
  }
  // The SDK's multipart upload (a load job from a file) sets Content-Type on the request's
  // headers, which only an authenticated request has: unauthenticated (an emulator, no ADC) it
  // would throw outside any promise and kill the process. Every request gets headers.
  // The SDK's multipart upload sets no timeout (0): it gets the upload deadline.
  const client = bq as unknown as { makeAuthenticatedRequest: (reqOpts: { headers?: unknown; timeout?: number }, opts?: unknown) => unknown };
  const make = client.makeAuthenticatedRequest;
  // The SDK's HTTP layer passes its `timeout` to a fetch that ignores it: an API request whose
  // answer does not come within request_timeout_secs is failed here (and aborted).
  client.makeAuthenticatedRequest = Object.assign((reqOpts: { headers?: unknown; timeout?: number }, opts?: unknown) => {
    reqOpts.headers ??= {};
    if (!reqOpts.timeout) reqOpts.timeout = uploadTimeoutMs(cfg);
    if (typeof opts !== 'function') return make(reqOpts, opts);
    const callback = opts as (err: unknown, ...rest: unknown[]) => void;
    let done = false;
    let handle: { abort?: () => void } | undefined;
    const ms = requestTimeoutMs(cfg);
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      try { handle?.abort?.(); } catch { /* already over */ }
      callback(Object.assign(new Error(`no answer from BigQuery within ${ms / 1000}s`), { name: 'TimeoutError', code: 'ETIMEDOUT' }));
    }, ms);
    timer.unref();
    handle = make(reqOpts, (err: unknown, ...rest: unknown[]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      callback(err, ...rest);
    }) as { abort?: () => void } | undefined;
    return handle;
  }, make);
  return bq;
}

type ApiErr = Error & { code?: number | string; errors?: Array<{ message?: string; reason?: string }>; response?: { status?: number; statusCode?: number }; statusCode?: number };

function statusOf(err: unknown): number | undefined {
  const e = err as ApiErr;
  if (!e || typeof e !== 'object') return undefined;
  if (typeof e.code === 'number') return e.code;
  return e.response?.status ?? e.response?.statusCode ?? e.statusCode;
}

/** Exposes the HTTP status where withRetry()/destinationError() look for it. */
function normalize(err: unknown): unknown {
  const e = err as ApiErr;
  if (!e || typeof e !== 'object') return err;
  let status = statusOf(e);
  // BigQuery answers throttling with 403 rateLimitExceeded: retried like a 429.
  if (status === 403 && e.errors?.some((x) => x.reason === 'rateLimitExceeded')) status = 429;
  if (status !== undefined && e.statusCode === undefined) {
    try { e.statusCode = status; } catch { /* frozen */ }
  }
  return err;
}

/** Job failures worth running the job again for (a failed job changed nothing). */
const TRANSIENT_JOB_REASONS = new Set(['backendError', 'internalError', 'jobInternalError', 'rateLimitExceeded', 'jobBackendError']);
/** Attempts of one job (each with a new job id) when it fails for a transient reason. */
const JOB_ATTEMPTS = 3;

class JobFailure extends Error {
  constructor(readonly reason: string, readonly error: CliError) { super(error.message); }
}

interface JobError { reason?: string; message?: string; location?: string }

/** A failed job as one line, with the exit code its reason calls for. */
export function jobError(action: string, errorResult: JobError, errors: readonly JobError[] = []): CliError {
  const reason = errorResult.reason ?? 'error';
  const details = errors.filter((x) => x.message && x.message !== errorResult.message).slice(0, 2).map((x) => x.message);
  const why = scrubMessage([`${errorResult.message ?? reason}`, ...details].join('; ').replace(/\s+/g, ' '));
  let exitCode: ExitCodeValue = ExitCode.unavailable;
  let hint: string | undefined;
  switch (reason) {
    case 'invalidQuery': exitCode = ExitCode.software; hint = 'the load query the product wrote is wrong: this is a bug; run again with --verbose and report the output'; break;
    case 'invalid': exitCode = ExitCode.dataErr; hint = 'a value does not fit its column; run again with --verbose to see which, and report it (values are adapted to fit their columns)'; break;
    case 'accessDenied': exitCode = ExitCode.config; hint = 'the service account needs BigQuery Data Editor on the dataset and Job User on the project'; break;
    case 'notFound': exitCode = ExitCode.config; hint = 'check project_id, dataset and location'; break;
    case 'quotaExceeded': case 'rateLimitExceeded': exitCode = ExitCode.tempFail; break;
    default: break;
  }
  return new CliError(action, `${why} (${reason})`, { exitCode, hint });
}


interface StagedPart { readonly jobId: string; readonly outputRows?: number }

class BigQueryDestination implements Destination {
  readonly type = 'bigquery';
  readonly kind = 'table' as const;
  readonly loadFormat: 'jsonl' | 'parquet';
  private readonly target: BqTableRef;
  private readonly stageRef: BqTableRef;
  private readonly runId = randomBytes(4).toString('hex');
  private readonly where: string;
  /** Part key → its load job, for parts loaded into the stage since the last commit. */
  private readonly staged = new Map<string, StagedPart>();
  /** The stage exists (created by this run, dropped at each commit). */
  private stageReady: Promise<void> | null = null;
  private jobSeq = 0;

  constructor(private readonly cfg: BigQueryConfig, private readonly bq: BigQuery, private readonly env: DestinationEnv) {
    this.loadFormat = cfg.load_format ?? 'jsonl';
    this.target = { projectId: cfg.project_id, datasetId: cfg.dataset, tableId: cfg.table };
    this.stageRef = { ...this.target, tableId: `${cfg.table}__stage_${this.runId}` };
    this.where = `${cfg.project_id}.${cfg.dataset}.${cfg.table}`;
  }

  private table(ref: BqTableRef): Table {
    return this.bq.dataset(ref.datasetId, { projectId: ref.projectId }).table(ref.tableId);
  }

  private fail(action: string, err: unknown): CliError {
    if (err instanceof CliError) return err;
    const e = err as ApiErr;
    const msg = e?.message ?? '';
    if (/Could not load the default credentials|Could not refresh access token|Unable to detect a Project Id|invalid_grant/i.test(msg)) {
      return new CliError(action, msg.split('\n')[0]!, { exitCode: ExitCode.config, cause: err, hint: 'set credentials.service_account_key, or GOOGLE_APPLICATION_CREDENTIALS / gcloud auth application-default login' });
    }
    let n = normalize(err) as ApiErr;
    // ApiError's message for several errors says only "see the errors array": show the first instead.
    const first = n?.errors?.find((x) => x.message)?.message;
    if (first && /^Multiple errors occurred/i.test(n.message ?? '')) n = Object.assign(new Error(first, { cause: err }), { statusCode: statusOf(err), code: n.code });
    return destinationError(`${action} (${this.where})`, n, statusOf(err) === 404 ? 'check project_id, dataset (it must exist) and location' : undefined);
  }

  private nextJobId(kind: string): string {
    return `bifrost_logs_${kind}_${this.runId}_${++this.jobSeq}_${randomBytes(3).toString('hex')}`;
  }

  /** Table metadata, or null when the table does not exist. */
  private async metadata(ref: BqTableRef): Promise<TableMetadata | null> {
    try {
      return await withRetry(async () => {
        try {
          const [m] = await this.table(ref).getMetadata();
          return m as TableMetadata;
        } catch (err) { throw normalize(err); }
      }, { signal: this.env.signal, attempts: 4 });
    } catch (err) {
      // "Not found: Table p:d.t" means no table yet; "Not found: Dataset p:d" is a config error.
      if (statusOf(err) === 404 && !/Not found: Dataset/i.test((err as Error).message ?? '')) return null;
      throw err;
    }
  }

  /** Waits for a job to be DONE; a failed job throws its error. */
  private async waitJob(job: Job, action: string): Promise<Record<string, any>> {
    let delay = POLL_MIN_MS;
    const deadline = Date.now() + JOB_TIMEOUT_MS;
    let meta = job.metadata as Record<string, any> | undefined;
    for (;;) {
      if (meta?.status?.state === 'DONE') {
        const er = meta.status.errorResult as JobError | undefined;
        if (er) throw new JobFailure(er.reason ?? 'error', jobError(`${action} (${this.where})`, er, meta.status.errors ?? []));
        return meta;
      }
      if (this.env.signal?.aborted) throw abortError('the load was aborted');
      if (Date.now() > deadline) throw new CliError(`${action} (${this.where})`, `job ${job.id} is still running after ${JOB_TIMEOUT_MS / 3_600_000} h`, { exitCode: ExitCode.tempFail });
      await sleep(delay, undefined, { signal: this.env.signal });
      delay = Math.min(POLL_MAX_MS, delay * 2);
      meta = await withRetry(async () => {
        try { const [m] = await job.getMetadata(); return m as Record<string, any>; } catch (err) { throw normalize(err); }
      }, { signal: this.env.signal });
    }
  }

  /**
   * Inserts a job with a fixed id, retried on transient failures: an attempt
   * that reached BigQuery but lost its answer comes back as 409 and the
   * existing job is used, so a job never runs twice.
   */
  private async insertJob(jobId: string, create: () => Promise<Job>): Promise<Job> {
    return withRetry(async () => {
      try {
        return await create();
      } catch (err) {
        if (statusOf(err) === 409) {
          const job = this.bq.job(jobId, this.cfg.location ? { location: this.cfg.location } : undefined);
          const [m] = await job.getMetadata();
          job.metadata = m;
          return job;
        }
        throw normalize(err);
      }
    }, { signal: this.env.signal });
  }

  /**
   * Runs a job to completion: inserted with a fixed id (see insertJob), polled
   * until DONE, and run again under a new id when it failed for a transient
   * reason (a failed job changed nothing: a load appends nothing, a script's
   * transaction is rolled back).
   */
  private async runJob(kind: string, action: string, create: (jobId: string) => Promise<Job>): Promise<{ job: Job; meta: Record<string, any> }> {
    for (let attempt = 1; ; attempt++) {
      const jobId = this.nextJobId(kind);
      try {
        const job = await this.insertJob(jobId, () => create(jobId));
        return { job, meta: await this.waitJob(job, action) };
      } catch (err) {
        if (err instanceof JobFailure) {
          if (attempt < JOB_ATTEMPTS && TRANSIENT_JOB_REASONS.has(err.reason) && !this.env.signal?.aborted) {
            this.env.log.verbose(`bigquery: job ${jobId} failed (${err.reason}), running it again`);
            await sleep(1000 * attempt, undefined, { signal: this.env.signal });
            continue;
          }
          throw err.error;
        }
        throw this.fail(action, err);
      }
    }
  }

  /**
   * Runs a query job to completion. Parameters are Dates, which the SDK sends
   * as TIMESTAMP values (an ISO string typed TIMESTAMP would be sent as NULL).
   */
  private async query(action: string, sql: string, params: Record<string, Date> = {}): Promise<Job> {
    const { job } = await this.runJob('query', action, async (jobId) => {
      const [job] = await this.bq.createQueryJob({
        query: sql, useLegacySql: false, jobId, labels: { tool: 'bifrost-logs' },
        ...(Object.keys(params).length ? { params } : {}),
        ...(this.cfg.location ? { location: this.cfg.location } : {}),
      });
      return job;
    });
    return job;
  }

  async check(): Promise<void> {
    const ds = this.bq.dataset(this.cfg.dataset, { projectId: this.cfg.project_id });
    try {
      await withRetry(async () => { try { await ds.getMetadata(); } catch (err) { throw normalize(err); } }, { attempts: 3, signal: this.env.signal });
    } catch (err) {
      throw this.fail('read the dataset', err);
    }
    let exists: boolean;
    try {
      exists = !!(await this.metadata(this.target));
    } catch (err) {
      throw this.fail('read the table', err);
    }
    // Every run creates its staging table in the dataset, loads it and drops it: a probe table made
    // the same way (it expires on its own) proves bigquery.tables.create, its removal
    // bigquery.tables.delete. Dry runs of the commit's DML prove bigquery.jobs.create (load jobs
    // need no more) and bigquery.tables.updateData, on the probe (where the stage and a new target
    // live) and on an existing target, without changing anything.
    const probe = { ...this.stageRef, tableId: `${this.stageRef.tableId}_check` };
    const retried = (f: () => Promise<unknown>) => withRetry(async () => { try { await f(); } catch (err) { throw normalize(err); } }, { attempts: 3, signal: this.env.signal });
    try {
      await retried(() => this.bq.dataset(probe.datasetId, { projectId: probe.projectId }).createTable(probe.tableId, {
        schema: { fields: [{ name: 'probe', type: 'INTEGER' }] }, expirationTime: String(Date.now() + STAGE_TTL_MS), labels: { created_by: 'bifrost-logs', purpose: 'staging' },
      }).catch((err: unknown) => { if (statusOf(err) !== 409) throw err; }));
    } catch (err) {
      throw this.fail('create a staging table', err);
    }
    let dryErr: unknown;
    try {
      for (const t of exists ? [probe, this.target] : [probe]) {
        await retried(() => this.bq.createQueryJob({ query: `DELETE FROM ${bqTable(t)} WHERE FALSE`, useLegacySql: false, dryRun: true, ...(this.cfg.location ? { location: this.cfg.location } : {}) }));
      }
    } catch (err) {
      dryErr = err;
    }
    try {
      await retried(() => this.table(probe).delete().catch((err: unknown) => { if (statusOf(err) !== 404) throw err; }));
    } catch (err) {
      if (!dryErr) throw this.fail('drop a staging table', err);
    }
    if (dryErr) throw this.fail('dry-run a query', dryErr);
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
        await withRetry(async () => {
          try {
            await this.bq.dataset(this.stageRef.datasetId, { projectId: this.stageRef.projectId }).createTable(this.stageRef.tableId, meta);
          } catch (err) {
            if (statusOf(err) === 409) return; // created by an attempt whose answer was lost
            throw normalize(err);
          }
        }, { signal: this.env.signal });
      } catch (err) {
        this.stageReady = null;
        throw this.fail('create the staging table', err);
      }
    })();
    return this.stageReady;
  }

  private async dropStage(): Promise<void> {
    if (!this.stageReady) return;
    this.stageReady = null;
    try {
      await withRetry(async () => {
        try { await this.table(this.stageRef).delete(); } catch (err) { if (statusOf(err) !== 404) throw normalize(err); }
      }, { attempts: 3 });
    } catch (err) {
      this.env.log.warn(`could not drop the staging table ${this.stageRef.datasetId}.${this.stageRef.tableId} (it expires within a day): ${scrubMessage((err as Error).message ?? String(err))}`);
    }
  }

  async openPart(part: PartInfo): Promise<PartUpload> {
    if (part.format !== this.loadFormat || part.contentEncoding) {
      throw new CliError('load into bigquery', `parts must be uncompressed ${this.loadFormat} (got ${part.format}${part.contentEncoding ? `, ${part.contentEncoding}` : ''})`, { exitCode: ExitCode.software });
    }
    this.staged.delete(part.key);
    const spool = await openSpool(this.env.tmpDir, `bigquery-${this.runId}-${++this.jobSeq}.${this.loadFormat === 'parquet' ? 'parquet' : 'jsonl'}`, 'bigquery');
    return {
      write: (chunk) => spool.write(chunk),
      finish: async () => {
        await spool.close();
        try {
          if (spool.bytes > 0) this.staged.set(part.key, await this.loadPart(part, spool.path));
          else this.staged.set(part.key, { jobId: '', outputRows: 0 });
        } finally {
          await rm(spool.path, { force: true }).catch(() => {});
        }
      },
      abort: async () => {
        await spool.discard();
        // The window's attempt is failing: the parts it already loaded must not meet the next attempt's.
        this.staged.clear();
        await this.dropStage();
      },
    };
  }

  /** One load job from the spooled file into the stage, waited for. */
  private async loadPart(part: PartInfo, path: string): Promise<StagedPart> {
    await this.ensureStage(part.schema);
    const stage = this.table(this.stageRef);
    const action = `load ${part.key} into the staging table`;
    const { job, meta } = await this.runJob('load', action, async (jobId) => {
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

  /**
   * Creates the target when missing, or adds the layout's new columns as
   * NULLABLE (a metadata patch; nothing is dropped or retyped). Returns the
   * target's column types.
   */
  private async ensureTarget(layout: TableLayout): Promise<Map<string, string>> {
    const types = (m: TableMetadata) => new Map((m.schema?.fields ?? []).map((f) => [String(f.name).toLowerCase(), normalizeBqType(f.type)]));
    let meta: TableMetadata | null;
    try {
      meta = await this.metadata(this.target);
    } catch (err) {
      throw this.fail('read the table', err);
    }
    if (!meta) {
      const create = targetTableMetadata(layout, this.loadFormat);
      try {
        await withRetry(async () => {
          try {
            await this.bq.dataset(this.cfg.dataset, { projectId: this.cfg.project_id }).createTable(this.cfg.table, create);
          } catch (err) {
            if (statusOf(err) === 409) return; // created meanwhile (or by a lost attempt): patched below
            throw normalize(err);
          }
        }, { signal: this.env.signal });
        meta = await this.metadata(this.target);
      } catch (err) {
        throw this.fail('create the table', err);
      }
      if (!meta) throw new CliError(`create the table (${this.where})`, 'the table is missing right after its creation', { exitCode: ExitCode.unavailable });
      this.env.log.verbose(`bigquery: created ${this.where}`);
    }
    const have = types(meta);
    const missing = layout.columns.filter((c) => !have.has(c.name.toLowerCase()));
    if (missing.length) {
      const fields = [...(meta.schema?.fields ?? []), ...tableFields(missing, (c) => bigqueryType(c.type, this.loadFormat))];
      try {
        await withRetry(async () => {
          try { await this.table(this.target).setMetadata({ schema: { fields } }); } catch (err) { throw normalize(err); }
        }, { signal: this.env.signal, attempts: 3 });
      } catch (err) {
        throw this.fail(`add the columns ${missing.map((c) => c.name).join(', ')}`, err);
      }
      this.env.log.verbose(`bigquery: added ${missing.map((c) => c.name).join(', ')} to ${this.where}`);
      for (const c of missing) have.set(c.name.toLowerCase(), bigqueryType(c.type, this.loadFormat));
    }
    return have;
  }

  async commit(c: CommitInfo): Promise<void> {
    const layout = tableLayout(c.schema, c.aggregated);
    try {
      for (const p of c.parts) {
        if (!this.staged.has(p.key)) throw new CliError(`load into bigquery (${this.where})`, `part ${p.key} was not staged by this run`, { exitCode: ExitCode.software });
      }
      const stray = [...this.staged.keys()].filter((k) => !c.parts.some((p) => p.key === k));
      if (stray.length) {
        // Rows of another attempt are in the stage: refuse rather than load them (the stage is dropped below).
        throw new CliError(`load into bigquery (${this.where})`, `the staging table also holds ${stray[0]}, which is not part of this window`, { exitCode: ExitCode.software, hint: 'run the export again: the window is re-delivered whole' });
      }
      const loaded = c.parts.some((p) => this.staged.get(p.key)!.jobId !== '');
      if (c.late && !loaded) return;
      const targetTypes = await this.ensureTarget(layout);
      const sql = commitSql(this.target, this.stageRef, layout, { late: c.late, insert: loaded, format: this.loadFormat, targetTypes });
      await this.query('load the window into the table', sql, windowParams(c.window));
      this.env.log.verbose(`bigquery: window ${isoMs(c.window.start)} → ${isoMs(c.window.end)} committed to ${this.where}`);
    } finally {
      this.staged.clear();
      await this.dropStage();
    }
  }

  async countWindow(w: { start: number; end: number }): Promise<number> {
    let meta: TableMetadata | null;
    try {
      meta = await this.metadata(this.target);
    } catch (err) {
      throw this.fail('read the table', err);
    }
    if (!meta) return 0;
    const hasTs = (meta.schema?.fields ?? []).some((f) => f.name === 'timestamp');
    const job = await this.query('count the window', countSql(this.target, hasTs), windowParams(w));
    try {
      const [rows] = await job.getQueryResults({ maxResults: 1 });
      return Number((rows[0] as { n?: unknown } | undefined)?.n ?? 0);
    } catch (err) {
      throw this.fail('count the window', err);
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
